"""`ctguard audit`: which rules make conntrack necessary, and could it go."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ctguard.cli.common import add_read_options, make_console, open_root, resolve_netns_option
from ctguard.cli.env import Environment, ExitStatus
from ctguard.gather.audit import gather_audit


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "audit",
        help="list the firewall rules that make conntrack active, and whether they could go",
        description="Read the ruleset (nft, iptables-save, ip6tables-save) and list every rule "
        "that makes connection tracking active, what it is for and whether it could be "
        "stateless; for a host that needs no tracking, the module unload sequence (a plan "
        "only: audit never changes anything).",
    )
    add_read_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    audit = gather_audit(root, netns)
    rules, needed, plan, notes = audit.rules, audit.needed, audit.unload_plan, audit.notes
    if args.json:
        from ctguard.cli.common import write_json

        write_json(
            env,
            {
                "read": audit.read,
                "rules": [asdict(r) for r in rules],
                "tracking_needed": bool(needed),
                "unload_plan": plan,
                "built_in": audit.built_in,
                "notes": notes,
            },
        )
        return ExitStatus.OK
    console = make_console(env)
    if not rules:
        console.print(
            "no rule in the ruleset makes conntrack active"
            + ("" if audit.read else " (no ruleset could be read)")
        )
    for rule in rules:
        console.print(f"[{rule.stateless:>5}] {rule.backend} {rule.location}: {rule.rule}")
        console.print(f"         {rule.feature}: {rule.purpose}")
        console.print(f"         without tracking: {rule.alternative}")
    if needed:
        console.print(
            f"tracking is needed here: {len(needed)} rule(s) cannot work without it "
            "(marked [   no])"
        )
    else:
        console.print(
            (
                "no rule needs tracking for good: once the rules above are made stateless, this "
                if rules
                else "nothing in the ruleset needs tracking: this "
            )
            + "host could run without conntrack (check every namespace: `--netns`)"
            + (". Plan (NOT run by ctguard):" if plan else "")
        )
        for step in plan:
            console.print(f"  {step}")
        if plan:
            console.print(
                "  and keep it unloaded: remove those rules from the boot ruleset and add "
                "`blacklist nf_conntrack` only if nothing else needs it"
            )
    for note in notes:
        console.print(f"note: {note}")
    return ExitStatus.OK
