"""Crash a real process in the middle of a change, for journal-recovery tests."""

from __future__ import annotations

import os

import pytest

from ctguard.effects import executor, slots
from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.plan.actions import Plan

CRASH_STATUS = 9


def apply_then_die(
    plan: Plan, journal: Journal, system: System, monkeypatch: pytest.MonkeyPatch, writes: int
) -> int:
    """Fork; the child applies ``plan`` and dies (no cleanup) after ``writes`` writes.

    Returns the child's exit code (CRASH_STATUS when it died where intended).
    """
    pid = os.fork()
    if pid == 0:
        real_write = slots.write_slot
        calls = []

        def dying_write(system: System, action: object, text: str | None) -> None:
            real_write(system, action, text)  # type: ignore[arg-type]
            calls.append(action)
            if len(calls) == writes:
                os._exit(CRASH_STATUS)

        monkeypatch.setattr(executor, "write_slot", dying_write)
        try:
            apply_plan(plan, journal, system)
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
