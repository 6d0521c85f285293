"""What ctguard's change journal says about the nf_conntrack_max it changed.

Every apply, rollback and crash recovery that touched the global max is an
event with its time; together they say which max was in force when each
'table full' line was logged (see ``gather.kernel_log.max_periods``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ctguard.errors import CtguardError


@dataclass(frozen=True)
class MaxEvent:
    """At ``when`` (epoch seconds) ctguard changed the global max ``before`` -> ``after``."""

    when: float
    before: int
    after: int


# journal status -> (which value was in force before, which after) of a step
_DIRECTION = {
    "applied": ("original", "value"),
    "rolled-back": ("value", "original"),
    "recovered": ("value", "original"),
}


def max_events(state_dir: Path) -> list[MaxEvent]:
    """Every change of the global nf_conntrack_max in the journal, oldest first."""
    from ctguard.plan.conntrack_settings import MAX_SYSCTLS

    return sysctl_events(state_dir, MAX_SYSCTLS)


def sysctl_events(state_dir: Path, names: frozenset[str]) -> list[MaxEvent]:
    """Every change of the global sysctls ``names`` in the journal, oldest first
    (the same rules as for the max: e.g. a neighbour table's gc_thresh3)."""
    from ctguard.effects.journal import Journal
    from ctguard.plan.actions import SetSysctl

    try:
        changes = Journal(state_dir).all()
    except CtguardError:
        return []
    events: list[MaxEvent] = []
    for change in changes:
        for step in change.steps:
            action = step.action
            if not (isinstance(action, SetSysctl) and action.name in names):
                continue
            if action.netns is not None or step.original is None:
                continue
            values = {"original": _int(step.original), "value": _int(action.value)}
            for when, status in change.history:
                direction = _DIRECTION.get(status)
                if direction is None:
                    continue
                before, after = values[direction[0]], values[direction[1]]
                if before is not None and after is not None and before != after:
                    events.append(MaxEvent(when, before, after))
    return sorted(events, key=lambda event: event.when)


def last_max_change(state_dir: Path) -> tuple[datetime, int] | None:
    """When ctguard last changed nf_conntrack_max, and its value before."""
    events = max_events(state_dir)
    if not events:
        return None
    return datetime.fromtimestamp(events[-1].when, tz=UTC), events[-1].before


def _int(text: str) -> int | None:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None
