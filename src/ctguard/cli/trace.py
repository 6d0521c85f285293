"""`ctguard trace`: log new connections (rate-limited) for a while, to find the source."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    current_state,
    firewall_plan,
    parse_duration,
    run_firewall_plan,
)
from ctguard.errors import UsageError
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import TRACE_PREFIX, Trace, parse_network


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "trace",
        help="LOG new connections for a while (rate-limited, expires by itself)",
        description=f"Log new connections with the prefix {TRACE_PREFIX!r}, rate-limited, "
        "until --ttl passes (the rule stops matching by itself). Then rank the sources with "
        "`ctguard logs --trace`.",
    )
    parser.add_argument("--src", metavar="CIDR", help="only from this network")
    parser.add_argument("--dport", type=int, help="only to this port")
    parser.add_argument("--proto", choices=("tcp", "udp", "any"), default="any")
    parser.add_argument("--ttl", default="10m", help="how long (default 10m)")
    parser.add_argument("--rate", type=int, default=10, help="log lines per second (default 10)")
    parser.add_argument("--remove", action="store_true", help="stop tracing now")
    add_firewall_options(parser)


def logs_from_namespaces() -> bool:
    """net.netfilter.nf_log_all_netns of the host (read in this, the caller's, namespace)."""
    try:
        return Path("/proc/sys/net/netfilter/nf_log_all_netns").read_text().strip() == "1"
    except OSError:
        return False


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    ttl = parse_duration(args.ttl, "--ttl")
    if ttl is None:
        raise UsageError("a trace must expire", hint="use e.g. --ttl 10m (at most a day)")
    if ttl > 86400:
        raise UsageError("--ttl longer than a day floods the log; trace again instead")
    if args.dport is not None and not 1 <= args.dport <= 65535:
        raise UsageError(f"--dport {args.dport} is out of range")
    if not 1 <= args.rate <= 1000:
        raise UsageError("--rate must be 1..1000 lines per second")
    src = str(parse_network(args.src)) if args.src else None

    def build(target: FirewallTarget, now: float) -> Plan:
        state = current_state(target, args)
        if args.remove:
            return firewall_plan(target, replace(state, trace=None), now, title="stop tracing")
        trace = Trace(now + ttl, src, args.dport, args.proto, args.rate)
        notes = [
            "rank what it logs with: ctguard logs --trace   (reads dmesg or journalctl -k)",
        ]
        if target.netns is not None and not logs_from_namespaces():
            notes.append(
                "the kernel drops LOG lines from network namespaces while the host's "
                "net.netfilter.nf_log_all_netns is 0: the rule still counts matches "
                "(`nft list chain inet ctguard trace`), but nothing reaches the log until "
                "the host sets it to 1"
            )
        return firewall_plan(
            target,
            replace(state, trace=trace),
            now,
            title=f"trace new connections in {target.label} for {args.ttl}",
            notes=tuple(notes),
        )

    return run_firewall_plan(args, env, "trace", build)
