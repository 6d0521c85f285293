"""`ctguard trace`: log new connections (rate-limited) for a while, to find the source."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import add_firewall_options, parse_duration, run_firewall_plan
from ctguard.errors import UsageError
from ctguard.gather.firewall_actions import trace_plan
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import (
    MATCH_PROTOCOLS,
    TRACE_PREFIX,
    check_match,
    parse_network,
    parse_port,
)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "trace",
        help="LOG new connections for a while (rate-limited, expires by itself)",
        description=f"Log new connections with the prefix {TRACE_PREFIX!r}, rate-limited, "
        "until --ttl passes (the rule stops matching by itself). Then rank the sources with "
        "`ctguard logs --trace`.",
    )
    parser.add_argument("--src", metavar="CIDR", help="only from this network")
    parser.add_argument("--dst", metavar="CIDR", help="only to this network")
    parser.add_argument(
        "--proto",
        choices=("any", *MATCH_PROTOCOLS),
        default="any",
        help="only this protocol (default any; with a port: tcp and udp)",
    )
    parser.add_argument("--sport", metavar="PORT", help="only from this port (tcp/udp/sctp/dccp)")
    parser.add_argument("--dport", metavar="PORT", help="only to this port (tcp/udp/sctp/dccp)")
    parser.add_argument("--ttl", default="10m", help="how long (default 10m)")
    parser.add_argument("--rate", type=int, default=10, help="log lines per second (default 10)")
    parser.add_argument("--remove", action="store_true", help="stop tracing now")
    add_firewall_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    ttl = parse_duration(args.ttl, "--ttl")
    if ttl is None:
        raise UsageError("a trace must expire", hint="use e.g. --ttl 10m (at most a day)")
    if ttl > 86400:
        raise UsageError("--ttl longer than a day floods the log; trace again instead")
    sport = parse_port(args.sport, "--sport")
    dport = parse_port(args.dport, "--dport")
    if not 1 <= args.rate <= 1000:
        raise UsageError("--rate must be 1..1000 lines per second")
    src = str(parse_network(args.src)) if args.src else None
    dst = str(parse_network(args.dst)) if args.dst else None
    versions: set[int] = {parse_network(a).version for a in (src, dst) if a}
    if len(versions) > 1:
        raise UsageError(
            "--src and --dst are of different IP versions", hint="trace IPv4 or IPv6, not both"
        )
    # "any" with a port traces TCP and UDP: check the ports as for one of them.
    check_match("tcp" if args.proto == "any" else args.proto, sport, dport, versions)

    def build(target: FirewallTarget, now: float) -> Plan:
        return trace_plan(
            target,
            now,
            ttl=ttl,
            ttl_text=args.ttl,
            src=src,
            dst=dst,
            sport=sport,
            dport=dport,
            proto=args.proto,
            rate=args.rate,
            backend=args.backend,
            remove=args.remove,
        )

    return run_firewall_plan(args, env, "trace", build)
