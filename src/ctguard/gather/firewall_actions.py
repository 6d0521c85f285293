"""The plans of `block`, `notrack` and `trace`, and how one is applied.

Shared by the commands and the live view, so that what `ctguard watch`
offers on a key is exactly the plan `ctguard block ...` prints, and applying
it goes the same way: the journal locked, interrupted changes recovered
first, the plan rebuilt against the state of that moment, the executor.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from ctguard.effects.commands import ipset_save, nft_list_table, run_tool
from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import Journal
from ctguard.effects.session import live_system, recover_first
from ctguard.errors import UsageError
from ctguard.kernel.host_addresses import read_protected
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import (
    FirewallTarget,
    conntrack_match,
    load_firewall_state,
    plan_firewall,
    with_backend,
)
from ctguard.rules.backends.nft import TABLE
from ctguard.rules.model import (
    Block,
    FirewallState,
    NotrackRule,
    Trace,
    match_label,
    merge_blocks,
)
from ctguard.rules.safety import check_block_targets, protected_networks


@dataclass(frozen=True)
class RulesReader:
    """The rules in place, read with the tools (empty when a tool is missing)."""

    netns: NetnsRef | None

    def nft_table_exists(self) -> bool:
        return shutil.which("nft") is not None and nft_list_table(TABLE, self.netns) is not None

    def iptables_save(self, tool: str, table: str) -> str:
        if shutil.which(f"{tool}-save") is None:
            return ""
        done = run_tool([f"{tool}-save", "-t", table], self.netns)
        return done.stdout if done.returncode == 0 else ""

    def ipset_exists(self, name: str) -> bool:
        return shutil.which("ipset") is not None and ipset_save(name, self.netns) is not None


def current_state(target: FirewallTarget, backend: str) -> FirewallState:
    """The recorded state, live, with the backend a change should use."""
    state = load_firewall_state(target)
    return with_backend(state, backend, shutil.which("nft") is not None)


def firewall_plan(target: FirewallTarget, state: FirewallState, now: float, **details: Any) -> Plan:
    return plan_firewall(target, state, now, reader=RulesReader(target.netns), **details)


def blocks_in_force(target: FirewallTarget, now: float) -> tuple[Block, ...]:
    """The blocks ctguard recorded for ``target`` that have not expired."""
    return load_firewall_state(target).live(now).blocks


Network = IPv4Network | IPv6Network


def block_plan(
    target: FirewallTarget,
    now: float,
    networks: list[Network],
    *,
    ttl: int | None,
    reason: str,
    environ: dict[str, str],
    backend: str = "auto",
    force: bool = False,
    keep_entries: bool = False,
    match: tuple[str | None, int | None, int | None] = (None, None, None),
) -> Plan:
    """`ctguard block NETWORKS --ttl ... --reason ... [--proto --sport --dport]`'s plan.

    ``match`` (proto, sport, dport) must have passed rules.model.check_match.
    """
    protected = protected_networks(read_protected(target.netns, environ), environ)
    check_block_targets(networks, protected, force=force)
    state = current_state(target, backend).live(now)
    wanted = {str(n) for n in networks}
    expires = None if ttl is None else now + ttl
    added = tuple(Block(str(n), now, expires, reason, *match) for n in networks)
    blocks, overlap_notes = merge_blocks(state.blocks, added)
    notes = [*overlap_notes, "blocks are runtime state: they are gone after a reboot"]
    deletion = conntrack_match(*match)
    if deletion is None and not keep_entries:
        notes.append(
            f"conntrack cannot select {match[0]} entries: their existing entries stay "
            "(they time out; new packets are dropped)"
        )
    qualifier = match_label(*match)
    what = ", ".join(sorted(wanted)) + (f" ({qualifier})" if qualifier else "")
    return firewall_plan(
        target,
        replace(state, blocks=blocks),
        now,
        title=f"block {what} in {target.label}",
        delete_sources=() if keep_entries or deletion is None else tuple(sorted(wanted)),
        delete_match=deletion or (),
        notes=tuple(notes),
    )


def stateful_drop_chains(netns: NetnsRef | None) -> list[str]:
    """Base chains outside ctguard's table that drop by policy (and so drop untracked)."""
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


def notrack_plan(
    target: FirewallTarget,
    now: float,
    rule: NotrackRule,
    *,
    backend: str = "auto",
    remove: bool = False,
    is_root: bool = False,
) -> Plan:
    """`ctguard notrack --port ...`'s plan (``remove``: `--remove`)."""
    state = current_state(target, backend)
    others = tuple(r for r in state.notrack if r != rule)
    if remove:
        if len(others) == len(state.notrack):
            raise UsageError(
                f"no such NOTRACK rule: {rule.label()}", hint="see `ctguard notrack --list`"
            )
        return firewall_plan(
            target, replace(state, notrack=others), now, title=f"remove notrack {rule.label()}"
        )
    notes = []
    if is_root:
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


def logs_from_namespaces() -> bool:
    """net.netfilter.nf_log_all_netns of the host (read in this, the caller's, namespace)."""
    from pathlib import Path

    try:
        return Path("/proc/sys/net/netfilter/nf_log_all_netns").read_text().strip() == "1"
    except OSError:
        return False


def trace_plan(
    target: FirewallTarget,
    now: float,
    *,
    ttl: int,
    ttl_text: str,
    src: str | None = None,
    dport: int | None = None,
    proto: str = "any",
    rate: int = 10,
    dst: str | None = None,
    sport: int | None = None,
    backend: str = "auto",
    remove: bool = False,
) -> Plan:
    """`ctguard trace ...`'s plan (``remove``: `--remove`)."""
    state = current_state(target, backend)
    if remove:
        return firewall_plan(target, replace(state, trace=None), now, title="stop tracing")
    trace = Trace(now + ttl, src, dport, proto, rate, dst, sport)
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
        title=f"trace new connections in {target.label} for {ttl_text}",
        notes=tuple(notes),
    )


def apply_firewall_plan(
    root: KernelRoot, journal: Journal, build: Callable[[float], Plan], clock: Callable[[], float]
) -> tuple[Plan, str | None]:
    """Under the journal's lock: recover interrupted changes, build the plan
    against the state of now, run it.  The plan and its change id (None when
    there was nothing to do)."""
    with journal.locked():
        recover_first(journal, root)
        plan = build(clock())
        if plan.empty:
            return plan, None
        return plan, apply_plan(plan, journal, live_system(root)).id
