"""`ctguard notrack --port ...`: exempt ports from connection tracking, both directions."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.common import make_console, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    current_state,
    firewall_target,
    run_firewall_plan,
)
from ctguard.errors import UsageError
from ctguard.gather.firewall_actions import notrack_plan
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import NotrackRule, parse_network


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "notrack",
        help="exempt ports from conntrack (raw-priority NOTRACK, both directions)",
        description="Add NOTRACK rules at priority raw (the only place notrack works) for "
        "traffic to and from the ports, in prerouting and local output. Untracked packets "
        "match `ct state untracked` and cannot be NATed.",
    )
    parser.add_argument("--port", help="ports, e.g. 80,443")
    parser.add_argument("--proto", choices=("tcp", "udp", "any"), default="any")
    parser.add_argument("--iface", help="only on this interface")
    parser.add_argument("--src", metavar="CIDR", help="only with peers in this network")
    parser.add_argument("--remove", action="store_true", help="remove the matching rule")
    parser.add_argument("--list", action="store_true", help="list ctguard's NOTRACK rules")
    add_firewall_options(parser)


def parse_ports(text: str | None) -> tuple[int, ...]:
    if not text:
        raise UsageError("--port is required", hint="e.g. ctguard notrack --port 80,443")
    ports = []
    for part in text.split(","):
        try:
            port = int(part)
        except ValueError as err:
            raise UsageError(f"--port: {part!r} is not a port number") from err
        if not 1 <= port <= 65535:
            raise UsageError(f"--port: {port} is out of range (1-65535)")
        ports.append(port)
    return tuple(sorted(set(ports)))


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.list:
        target = firewall_target(args, env)
        rules = current_state(target, args).notrack
        if args.json:
            write_json(env, {"netns": target.label, "notrack": [r.to_dict() for r in rules]})
        else:
            console = make_console(env)
            for rule in rules:
                console.print(rule.label())
            if not rules:
                console.print(f"no NOTRACK rules by ctguard in {target.label}")
        return ExitStatus.OK
    if args.src:
        args.src = str(parse_network(args.src))
    rule = NotrackRule(args.proto, parse_ports(args.port), args.iface, args.src)

    def build(target: FirewallTarget, now: float) -> Plan:
        return notrack_plan(
            target, now, rule, backend=args.backend, remove=args.remove, is_root=env.is_root
        )

    return run_firewall_plan(args, env, "notrack", build)
