"""What ctguard's change journal says about the kernel values it changed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ctguard.errors import CtguardError


def last_max_change(state_dir: Path) -> tuple[datetime, int] | None:
    """When ctguard last changed nf_conntrack_max, and its value before, from
    the change journal (an apply sets it, a rollback puts it back)."""
    from ctguard.effects.journal import Journal
    from ctguard.plan.actions import SetSysctl
    from ctguard.plan.conntrack_settings import MAX_SYSCTLS

    try:
        changes = Journal(state_dir).all()
    except CtguardError:
        return None
    latest: tuple[float, int] | None = None
    for change in changes:
        for step in change.steps:
            action = step.action
            if not (isinstance(action, SetSysctl) and action.name in MAX_SYSCTLS):
                continue
            if action.netns is not None or step.original is None:
                continue
            for when, status in change.history:
                before = {"applied": step.original, "rolled-back": action.value}.get(status)
                if before is None or (latest is not None and when <= latest[0]):
                    continue
                try:
                    latest = (when, int(before.split()[0]))
                except (ValueError, IndexError):
                    continue
    if latest is None:
        return None
    return datetime.fromtimestamp(latest[0], tz=UTC), latest[1]
