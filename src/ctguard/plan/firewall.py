"""Plan firewall changes: the new state file, the rules that render it, entry deletion.

ctguard's firewall state (NOTRACK rules, blocks, trace) is kept per network
namespace in the state directory and rendered whole on every change: into
ctguard's own nftables table, or into its own iptables/ip6tables chains and
ipsets.  The state file and the rules change in one journaled plan, so
`ctguard rollback` restores both.  Switching backend removes what the other
backend held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ctguard.errors import AccessDenied, ParseError
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import (
    Action,
    DeleteEntries,
    LoadIpset,
    LoadIptables,
    LoadNftables,
    Plan,
    WriteFile,
)
from ctguard.rules.backends.iptables import (
    CHAINS,
    FAMILY,
    merge_save,
    render_ipset,
    render_iptables_part,
    set_name,
)
from ctguard.rules.backends.nft import TABLE, render_nft
from ctguard.rules.model import FirewallState

BACKENDS = ("nft", "iptables")
# The protocols `conntrack -D -p` can filter on (others it refuses).
CONNTRACK_PROTOCOLS = ("tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "gre")


def conntrack_match(
    proto: str | None, sport: int | None, dport: int | None
) -> tuple[str, ...] | None:
    """conntrack's filter for the entries a (qualified) block covers; None: it has none.

    The ports are those of the original direction (the blocked source's own).
    """
    if proto is None:
        return ()
    if proto not in CONNTRACK_PROTOCOLS:
        return None
    words = ["-p", proto]
    for option, port in (("--sport", sport), ("--dport", dport)):
        if port:
            words += [option, str(port)]
    return tuple(words)


class FirewallReader(Protocol):
    """What the planner needs to know of the rules in place (live: the tools)."""

    def nft_table_exists(self) -> bool: ...

    def iptables_save(self, tool: str, table: str) -> str: ...

    def ipset_exists(self, name: str) -> bool: ...


@dataclass(frozen=True)
class FirewallTarget:
    netns: NetnsRef | None
    state_dir: Path

    @property
    def state_path(self) -> Path:
        key = "host" if self.netns is None else f"netns-{self.netns.inode}"
        return self.state_dir / "firewall" / f"{key}.json"

    @property
    def label(self) -> str:
        return "this host" if self.netns is None else self.netns.label


def load_firewall_state(target: FirewallTarget) -> FirewallState:
    path = target.state_path
    try:
        text = path.read_text()
    except FileNotFoundError:
        return FirewallState()
    except PermissionError as err:
        raise AccessDenied(
            "cannot read ctguard's firewall state", where=str(path), hint="run as root (sudo)"
        ) from err
    try:
        return FirewallState.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as err:
        raise ParseError(
            f"damaged firewall state ({err})",
            where=str(path),
            hint="inspect it; `ctguard rollback` or removing it (then `nft delete table inet "
            "ctguard`) starts clean",
        ) from err


def iptables_actions(
    state: FirewallState, now: float, netns: NetnsRef | None, reader: FirewallReader
) -> list[Action]:
    """ipsets first when created (rules refer to them), last when destroyed."""
    before: list[Action] = []
    tables: list[Action] = []
    after: list[Action] = []
    live = state.live(now)
    for version, (tool, _) in FAMILY.items():
        name = set_name(version)
        if any(b.version == version and not b.qualified for b in live.blocks):
            before.append(
                LoadIpset(name, render_ipset(live, now, version), netns, "blocked addresses")
            )
        elif reader.ipset_exists(name):
            after.append(LoadIpset(name, None, netns, "no blocks of this family left"))
        for table in CHAINS:
            current = reader.iptables_save(tool, table)
            part = render_iptables_part(live, now, version, table)
            if part or ":CTGUARD-" in current:
                tables.append(
                    LoadIptables(
                        tool,
                        table,
                        merge_save(current, table, part),
                        netns,
                        "ctguard's chains replaced; the rest of the table as saved",
                    )
                )
    return before + tables + after


def plan_firewall(
    target: FirewallTarget,
    state: FirewallState,
    now: float,
    *,
    title: str,
    reader: FirewallReader,
    delete_sources: tuple[str, ...] = (),
    delete_match: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Plan:
    state = state.live(now)
    actions: list[Action] = [
        WriteFile(
            str(target.state_path),
            json.dumps(state.to_dict(), indent=1) + "\n",
            0o600,
            "ctguard's firewall state (what the rules are rendered from)",
        )
    ]
    if state.backend == "nft":
        actions.append(
            LoadNftables(
                TABLE,
                render_nft(state, now),
                target.netns,
                "remove ctguard's table: nothing of ctguard's is left"
                if state.empty
                else "ctguard's own table, replaced in one transaction",
            )
        )
        actions += iptables_actions(FirewallState(), now, target.netns, reader)
    else:
        actions += iptables_actions(state, now, target.netns, reader)
        if reader.nft_table_exists():
            actions.append(
                LoadNftables(TABLE, render_nft(FirewallState(), now), target.netns, "other backend")
            )
    if delete_sources:
        actions.append(
            DeleteEntries(
                delete_sources,
                target.netns,
                "their existing entries, so the table frees now (nothing to delete is fine)",
                delete_match,
            )
        )
    return Plan(title, tuple(actions), warnings, notes)


def with_backend(state: FirewallState, requested: str, nft_installed: bool) -> FirewallState:
    """``auto`` keeps the backend of a non-empty state, else prefers nftables."""
    if requested == "auto":
        if not state.empty:
            return state
        requested = "nft" if nft_installed else "iptables"
    return replace(state, backend=requested)
