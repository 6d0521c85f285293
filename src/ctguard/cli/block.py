"""`ctguard block ADDR|CIDR ... [--proto P] [--sport P] [--dport P]`: drop before conntrack."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    add_match_options,
    parse_duration,
    parse_match,
    run_firewall_plan,
)
from ctguard.gather.firewall_actions import block_plan
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.safety import parse_targets


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "block",
        help="drop sources at raw priority (before conntrack), with expiry; delete their entries",
        description="Block addresses or networks in ctguard's own nftables table at priority "
        "raw, before conntrack allocates an entry, through a set whose elements expire; then "
        "delete their existing conntrack entries. With --proto (and --sport/--dport) only "
        "those packets of the source are dropped (e.g. a resolver's UDP replies: --proto udp "
        "--sport 53). Never blocks loopback, this host's addresses, its default gateway, its "
        "DNS resolvers, the SSH client, current SSH peers or the allowlist "
        "(/etc/ctguard/allowlist). Blocks are runtime state: they do not survive a reboot.",
    )
    parser.add_argument("targets", nargs="+", metavar="ADDR|CIDR", help="what to block")
    add_match_options(parser, "block")
    parser.add_argument(
        "--ttl", default="1h", help="how long (90s, 10m, 1h, 2d; 'never' = until unblocked)"
    )
    parser.add_argument("--reason", default="", help="kept with the block, shown by `blocked`")
    parser.add_argument(
        "--force", action="store_true", help="allow ranges wider than /8 (IPv4) or /32 (IPv6)"
    )
    parser.add_argument(
        "--keep-entries", action="store_true", help="do not delete their existing entries"
    )
    add_firewall_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    ttl = parse_duration(args.ttl, "--ttl")
    networks = parse_targets(args.targets)
    match = parse_match(args, {n.version for n in networks})

    def build(target: FirewallTarget, now: float) -> Plan:
        return block_plan(
            target,
            now,
            networks,
            ttl=ttl,
            reason=args.reason,
            environ=env.environ,
            backend=args.backend,
            force=args.force,
            keep_entries=args.keep_entries,
            match=match,
        )

    return run_firewall_plan(args, env, "block", build)
