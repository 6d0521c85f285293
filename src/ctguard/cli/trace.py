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
from ctguard.rules.model import TRACE_PREFIX, parse_network


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
        return trace_plan(
            target,
            now,
            ttl=ttl,
            ttl_text=args.ttl,
            src=src,
            dport=args.dport,
            proto=args.proto,
            rate=args.rate,
            backend=args.backend,
            remove=args.remove,
        )

    return run_firewall_plan(args, env, "trace", build)
