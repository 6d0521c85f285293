"""`ctguard audit`: which rules make conntrack necessary, and could it go."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ctguard.cli.common import add_read_options, make_console, open_root, resolve_netns_option
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import CtguardError
from ctguard.kernel.root import KernelRoot, list_dir_or_empty
from ctguard.model.netns_ref import NetnsRef
from ctguard.parse.ruleset_audit import (
    TrackingRule,
    audit_iptables,
    audit_nft,
    iptables_nft_tables,
    unload_sequence,
)

BUNDLE_FILES = (
    ("cmd/nft_list_ruleset.txt", "nftables"),
    ("cmd/iptables-save.txt", "iptables"),
    ("cmd/ip6tables-save.txt", "ip6tables"),
)
LIVE_TOOLS = (
    (["nft", "list", "ruleset"], "nftables"),
    (["iptables-save"], "iptables"),
    (["ip6tables-save"], "ip6tables"),
)


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


def read_rulesets(root: KernelRoot, netns: NetnsRef | None) -> tuple[dict[str, str], list[str]]:
    texts: dict[str, str] = {}
    notes: list[str] = []
    if not root.is_live:
        for rel, backend in BUNDLE_FILES:
            text = root.read_bundle(rel)
            if text is not None:
                texts[backend] = text
        if not texts:
            notes.append("the bundle holds no ruleset (cmd/nft_list_ruleset.txt, iptables-save)")
        return texts, notes
    from ctguard.effects.commands import run_tool

    for argv, backend in LIVE_TOOLS:
        try:
            done = run_tool(argv, netns)
        except CtguardError as err:
            notes.append(f"{backend}: {err.what}")
            continue
        if done.returncode == 0:
            texts[backend] = done.stdout
        else:
            notes.append(f"{backend}: {done.stderr.strip() or 'failed'} (root needed?)")
    return texts, notes


def audit_texts(texts: dict[str, str]) -> list[TrackingRule]:
    skip = iptables_nft_tables(texts.get("iptables", ""), "ip") | iptables_nft_tables(
        texts.get("ip6tables", ""), "ip6"
    )
    rules: list[TrackingRule] = []
    for backend, text in texts.items():
        rules += audit_nft(text, skip) if backend == "nftables" else audit_iptables(text, backend)
    return rules


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    texts, notes = read_rulesets(root, netns)
    rules = audit_texts(texts)
    needed = [r for r in rules if r.stateless == "no"]
    holders = list_dir_or_empty(root.sys_path("module/nf_conntrack/holders"))
    module_dir = root.sys_path("module/nf_conntrack")
    built_in = module_dir.is_dir() and not (module_dir / "initstate").exists()
    plan = [] if needed or built_in else unload_sequence(holders)
    if built_in and not needed:
        notes.append(
            "nf_conntrack is built into this kernel: it cannot be unloaded, but with no rule "
            "needing it its hooks stay unregistered (the count stays 0)"
        )
    if args.json:
        from ctguard.cli.common import write_json

        write_json(
            env,
            {
                "read": sorted(texts),
                "rules": [asdict(r) for r in rules],
                "tracking_needed": bool(needed),
                "unload_plan": plan,
                "built_in": built_in,
                "notes": notes,
            },
        )
        return ExitStatus.OK
    console = make_console(env)
    if not rules:
        console.print(
            "no rule in the ruleset makes conntrack active"
            + ("" if texts else " (no ruleset could be read)")
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
