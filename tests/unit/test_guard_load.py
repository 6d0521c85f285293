"""How the guard puts a ban in: the block first, then the source's entries deleted
in a plan of its own, so a deletion that fails never takes the block away."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from ctguard.errors import CtguardError
from ctguard.guard import service
from ctguard.guard.policy import Policy
from ctguard.guard.service import Guard, Watch
from ctguard.plan.actions import DeleteEntries, LoadNftables, Plan
from ctguard.rules.model import Block


def guard(tmp_path: Path) -> tuple[Guard, io.StringIO]:
    log = io.StringIO()
    made = Guard(
        config=tmp_path / "guard.toml",
        policy=Policy(),
        state_dir=tmp_path / "state",
        environ={},
        log=log,
    )
    made.nft = True
    return made, log


def test_a_failed_deletion_leaves_the_block_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[Plan] = []

    def apply_plan(plan: Plan, *args: object, **kwargs: object) -> None:
        if any(isinstance(a, DeleteEntries) for a in plan.actions):
            raise CtguardError("conntrack -D timed out after 30 s")
        applied.append(plan)

    monkeypatch.setattr(service, "apply_plan", apply_plan)
    made, log = guard(tmp_path)
    block = Block("198.51.100.9/32", 1000.0, 1600.0, "ctguard-guard source 5000")
    made._load(Watch("host", None, None), [block], 1000.0, "guard: block", ("198.51.100.9/32",))
    (plan,) = applied  # the block went in, alone
    assert any(isinstance(a, LoadNftables) for a in plan.actions)
    assert not any(isinstance(a, DeleteEntries) for a in plan.actions)
    assert "event=delete-failed" in log.getvalue() and "timed out" in log.getvalue()


def test_the_entries_are_deleted_after_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[Plan] = []
    monkeypatch.setattr(service, "apply_plan", lambda plan, *a, **k: applied.append(plan))
    made, log = guard(tmp_path)
    block = Block("198.51.100.9/32", 1000.0, 1600.0, "ctguard-guard source 5000")
    made._load(Watch("host", None, None), [block], 1000.0, "guard: block", ("198.51.100.9/32",))
    first, second = applied
    assert any(isinstance(a, LoadNftables) for a in first.actions)
    assert [type(a) for a in second.actions] == [DeleteEntries]
    assert second.actions[0].networks == ("198.51.100.9/32",)  # type: ignore[union-attr]
    assert "delete-failed" not in log.getvalue()


def test_a_samples_write_that_fails_does_not_stop_the_guard(tmp_path: Path) -> None:
    """The history is not worth the protection: a full disk is logged, the tick goes on."""
    made, log = guard(tmp_path)

    def full(at: float, samples: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    made.collector = SimpleNamespace(collect=lambda: SimpleNamespace(samples=()))  # type: ignore[assignment]
    made.db.record_samples = full  # type: ignore[method-assign]
    made.tick()
    assert "event=samples-failed" in log.getvalue() and "disk is full" in log.getvalue()
