"""`ctguard unblock ADDR|CIDR ... [--proto P --sport P --dport P]` (or `--all`)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    add_match_options,
    current_state,
    firewall_plan,
    parse_match,
    run_firewall_plan,
)
from ctguard.errors import UsageError
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import Block
from ctguard.rules.safety import parse_targets


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "unblock",
        help="remove blocks added by `ctguard block`",
        description="Remove blocks exactly as `ctguard blocked` lists them: an address alone "
        "removes its block of every packet; with --proto/--sport/--dport it removes only the "
        "block of that protocol and ports.",
    )
    parser.add_argument("targets", nargs="*", metavar="ADDR|CIDR", help="blocks to remove")
    add_match_options(parser, "unblock")
    parser.add_argument("--all", action="store_true", help="remove every block")
    add_firewall_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if not args.all and not args.targets:
        raise UsageError("name what to unblock, or --all", hint="see `ctguard blocked`")
    networks = [] if args.all else parse_targets(args.targets)
    match = parse_match(args, {n.version for n in networks})
    wanted = {Block(str(n), 0, None, "", *match).label(): str(n) for n in networks}

    def build(target: FirewallTarget, now: float) -> Plan:
        state = current_state(target, args).live(now)

        def chosen(block: Block) -> bool:
            return args.all or (block.network in wanted.values() and block.match == match)

        present = {b.label() for b in state.blocks if chosen(b)}
        missing = sorted(set(wanted) - present)
        if missing and not present:
            others = sorted(b.label() for b in state.blocks if b.network in wanted.values())
            raise UsageError(
                f"not blocked by ctguard in {target.label}: {', '.join(missing)}",
                hint=f"blocked are: {', '.join(others)} (unblock exactly one of those)"
                if others
                else "see `ctguard blocked`",
            )
        kept = tuple(b for b in state.blocks if not chosen(b))
        notes = (f"not blocked (nothing to do): {', '.join(missing)}",) if missing else ()
        return firewall_plan(
            target,
            replace(state, blocks=kept),
            now,
            title=f"unblock {'everything' if args.all else ', '.join(sorted(wanted))}",
            notes=notes,
        )

    return run_firewall_plan(args, env, "unblock", build)
