"""The guard's SQLite state: schema versions, decisions, bans that survive a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ctguard.errors import CtguardError
from ctguard.guard.detect import ACTION_BLOCK, SIGNAL_SOURCE, Decision
from ctguard.guard.state import (
    SCHEMA_VERSION,
    STATUS_APPLIED,
    STATUS_LIFTED,
    STATUS_PENDING,
    GuardDb,
)


def decision(target: str = "10.1.0.7/32") -> Decision:
    return Decision(
        "srv", target, SIGNAL_SOURCE, 1500.0, 1000, ACTION_BLOCK, 600.0, 0, {"events": 1500}
    )


def test_bans_and_decisions_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    db = GuardDb(path)
    assert db.version() == SCHEMA_VERSION
    did = db.record(decision(), 100.0)
    ban = db.add_ban("srv", "/run/netns/srv", "10.1.0.7/32", 100.0, 700.0, did)
    old = db.add_ban("srv", None, "10.2.0.7/32", 10.0, 50.0, None)
    db.close()  # as if killed: every write was committed
    db = GuardDb(path)
    active = db.active_bans(now=200.0)
    assert [(b.id, b.status, b.target) for b in active] == [(ban, STATUS_PENDING, "10.1.0.7/32")]
    assert active[0].reason == "guard: new-flows-source 1500"
    assert old not in [b.id for b in active]  # expired: not active
    db.set_status(ban, STATUS_APPLIED, 101.0)
    db.set_verified(ban)
    assert db.active_bans(200.0)[0].verified
    db.set_status(ban, STATUS_LIFTED, 150.0, "unblocked by hand")
    assert db.active_bans(200.0) == []
    assert db.repeats("srv", since=0.0) == {"10.1.0.7/32": 1, "10.2.0.7/32": 1}
    assert db.repeats("srv", since=60.0) == {"10.1.0.7/32": 1}
    (row,) = db.history()
    assert row["target"] == "10.1.0.7/32" and row["until"] == 700.0
    assert row["evidence"] == {"events": 1500}


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    GuardDb(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(CtguardError, match="schema"):
        GuardDb(path)


def test_a_damaged_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(CtguardError, match="unusable"):
        GuardDb(path)
