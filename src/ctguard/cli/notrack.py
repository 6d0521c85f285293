"""`ctguard notrack --port ...`: exempt ports from connection tracking, both directions."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from ctguard.cli.common import make_console, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    current_state,
    firewall_plan,
    firewall_target,
    run_firewall_plan,
)
from ctguard.errors import UsageError
from ctguard.model.netns_ref import NetnsRef
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


def stateful_drop_chains(netns: NetnsRef | None) -> list[str]:
    """Base chains outside ctguard's table that drop by policy (and so drop untracked)."""
    from ctguard.effects.commands import run_tool

    done = run_tool(["nft", "-j", "list", "ruleset"], netns)
    if done.returncode != 0:
        return []
    found = []
    for item in json.loads(done.stdout).get("nftables", []):
        chain = item.get("chain")
        if not chain or chain.get("table") == "ctguard":
            continue
        if chain.get("hook") in ("input", "forward") and chain.get("policy") == "drop":
            found.append(f"{chain['family']} {chain['table']} {chain['name']}")
    return found


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
        state = current_state(target, args)
        others = tuple(r for r in state.notrack if r != rule)
        if args.remove:
            if len(others) == len(state.notrack):
                raise UsageError(
                    f"no such NOTRACK rule: {rule.label()}", hint="see `ctguard notrack --list`"
                )
            return firewall_plan(
                target, replace(state, notrack=others), now, title=f"remove notrack {rule.label()}"
            )
        notes = []
        if env.is_root:
            for chain in stateful_drop_chains(target.netns):
                notes.append(
                    f"chain {chain} drops by policy: untracked packets are neither ESTABLISHED "
                    "nor NEW and would be dropped there; add in front of its rules: "
                    f"nft insert rule {chain} ct state untracked accept"
                )
        return firewall_plan(
            target,
            replace(state, notrack=(*others, rule)),
            now,
            title=f"notrack {rule.label()} in {target.label}",
            notes=tuple(notes),
        )

    return run_firewall_plan(args, env, "notrack", build)
