"""`ctguard unblock ADDR|CIDR ...` (or `--all`): remove blocks ctguard added."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import (
    add_firewall_options,
    current_state,
    firewall_plan,
    run_firewall_plan,
)
from ctguard.errors import UsageError
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.safety import parse_targets


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("unblock", help="remove blocks added by `ctguard block`")
    parser.add_argument("targets", nargs="*", metavar="ADDR|CIDR", help="blocks to remove")
    parser.add_argument("--all", action="store_true", help="remove every block")
    add_firewall_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if not args.all and not args.targets:
        raise UsageError("name what to unblock, or --all", hint="see `ctguard blocked`")
    wanted = set() if args.all else {str(n) for n in parse_targets(args.targets)}

    def build(target: FirewallTarget, now: float) -> Plan:
        state = current_state(target, args).live(now)
        present = {b.network for b in state.blocks}
        missing = sorted(wanted - present)
        if missing and not (wanted & present):
            raise UsageError(
                f"not blocked by ctguard in {target.label}: {', '.join(missing)}",
                hint="see `ctguard blocked`",
            )
        kept = tuple(b for b in state.blocks if not args.all and b.network not in wanted)
        notes = (f"not blocked (nothing to do): {', '.join(missing)}",) if missing else ()
        return firewall_plan(
            target,
            replace(state, blocks=kept),
            now,
            title=f"unblock {'everything' if args.all else ', '.join(sorted(wanted))}",
            notes=notes,
        )

    return run_firewall_plan(args, env, "unblock", build)
