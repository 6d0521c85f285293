"""Plan firewall changes: the new state file, the table that renders it, entry deletion.

ctguard's firewall state (NOTRACK rules, blocks, trace) is kept per network
namespace in the state directory and rendered whole into ctguard's own
nftables table on every change.  The state file and the table change in one
journaled plan, so `ctguard rollback` restores both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ctguard.errors import AccessDenied, ParseError
from ctguard.model.snapshot import NetnsRef
from ctguard.plan.actions import Action, DeleteEntries, LoadNftables, Plan, WriteFile
from ctguard.rules.backends.nft import TABLE, render_nft
from ctguard.rules.model import FirewallState


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
            "damaged firewall state",
            where=str(path),
            hint="inspect it; `ctguard rollback` or removing it (then `nft delete table inet "
            "ctguard`) starts clean",
        ) from err


def plan_firewall(
    target: FirewallTarget,
    state: FirewallState,
    now: float,
    *,
    title: str,
    delete_sources: tuple[str, ...] = (),
    warnings: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> Plan:
    state = state.live(now)
    script = render_nft(state, now)
    actions: list[Action] = [
        WriteFile(
            str(target.state_path),
            json.dumps(state.to_dict(), indent=1) + "\n",
            0o600,
            "ctguard's firewall state (what the table is rendered from)",
        ),
        LoadNftables(
            TABLE,
            script,
            target.netns,
            "remove ctguard's table: nothing of ctguard's is left"
            if state.empty
            else "ctguard's own table, replaced in one transaction",
        ),
    ]
    if delete_sources:
        actions.append(
            DeleteEntries(
                delete_sources,
                target.netns,
                "their existing entries, so the table frees now (nothing to delete is fine)",
            )
        )
    return Plan(title, tuple(actions), warnings, notes)
