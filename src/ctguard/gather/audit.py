"""The firewall audit's evidence: the rulesets, the rules that make conntrack
active, and (for a host that needs none) the module unload sequence."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Audit:
    read: list[str]  # the backends whose ruleset was read
    rules: list[TrackingRule]
    unload_plan: list[str]
    built_in: bool
    notes: list[str] = field(default_factory=list)

    @property
    def needed(self) -> list[TrackingRule]:
        """The rules that cannot work without tracking."""
        return [rule for rule in self.rules if rule.stateless == "no"]


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


def gather_audit(root: KernelRoot, netns: NetnsRef | None) -> Audit:
    texts, notes = read_rulesets(root, netns)
    rules = audit_texts(texts)
    needed = any(rule.stateless == "no" for rule in rules)
    holders = list_dir_or_empty(root.sys_path("module/nf_conntrack/holders"))
    module_dir = root.sys_path("module/nf_conntrack")
    built_in = module_dir.is_dir() and not (module_dir / "initstate").exists()
    plan = [] if needed or built_in else unload_sequence(holders)
    if built_in and not needed:
        notes.append(
            "nf_conntrack is built into this kernel: it cannot be unloaded, but with no rule "
            "needing it its hooks stay unregistered (the count stays 0)"
        )
    return Audit(sorted(texts), rules, plan, built_in, notes)
