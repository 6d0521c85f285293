"""The guard's SQLite state: schema versions, decisions, bans that survive a reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ctguard.errors import CtguardError
from ctguard.gather.guard_db import (
    MIGRATIONS,
    SAMPLES_KEEP,
    SAMPLES_RAW_KEEP,
    open_read_only,
    schema_version,
)
from ctguard.guard.detect import ACTION_BLOCK, SIGNAL_SOURCE, Decision
from ctguard.guard.state import (
    SCHEMA_VERSION,
    STATUS_APPLIED,
    STATUS_LIFTED,
    STATUS_PENDING,
    GuardDb,
)
from ctguard.model.collection import NetnsSample


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


def sample(label: str, count: int, drop: int, maximum: int | None = 1000) -> NetnsSample:
    return NetnsSample(
        label,
        None,
        True,
        0.0,
        count,
        maximum,
        None,
        {"drop": drop, "early_drop": 1},
        None,
        None,
        (),
    )


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as raw:
        return raw.execute(
            "SELECT at, netns, span, count, peak, max, drops FROM samples ORDER BY at, netns"
        ).fetchall()


def test_a_schema_1_file_is_upgraded_and_keeps_its_bans(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    with sqlite3.connect(path) as raw:  # the file as the first release wrote it
        raw.executescript(MIGRATIONS[0][1])
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO schema_version (version) VALUES (1)")
        raw.execute(
            "INSERT INTO bans (netns, target, added, expires, status, changed)"
            " VALUES ('srv', '10.1.0.7/32', 1, 1000, 'applied', 1)"
        )
    db = GuardDb(path)
    assert db.version() == SCHEMA_VERSION == 2
    assert [b.target for b in db.active_bans(10.0)] == ["10.1.0.7/32"]
    db.record_samples(5.0, (sample("srv", 10, 0),))
    assert rows(path) == [(5.0, "srv", 0.0, 10, 10, 1000, 0)]


def test_samples_one_row_per_namespace_per_tick_folded_then_pruned(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    db = GuardDb(path)
    start = 1_000_040.0  # 20 s into a minute
    for i in range(100):  # 100 ticks: the minute of `start` and the next one
        db.record_samples(
            start + i,
            (sample("a", 100 + i, i // 10), sample("b", 5, 0), sample("gone", 0, 0, None)),
        )
    raw = rows(path)
    assert len(raw) == 200 and {r[1] for r in raw} == {"a", "b"}  # no max: not guarded
    # six hours later the two minutes are folded: the last count, the peak, the last counters
    later = start + SAMPLES_RAW_KEEP + 200
    db.record_samples(later, (sample("a", 7, 9),))
    folded = [r for r in rows(path) if r[2] == 60.0 and r[1] == "a"]
    minute = (start // 60) * 60
    assert folded == [
        (minute, "a", 60.0, 139, 139, 1000, 3),  # ticks 0..39 (the rest of the first minute)
        (minute + 60, "a", 60.0, 199, 199, 1000, 9),  # ticks 40..99
    ]
    assert [r for r in rows(path) if r[2] == 0.0] == [(later, "a", 0.0, 7, 7, 1000, 9)]
    # seven days on, what is older than that is gone (the first two minutes)
    end = start + SAMPLES_KEEP + 3600
    db.record_samples(end, (sample("a", 1, 9),))
    assert [(r[0], r[2]) for r in rows(path)] == [(later // 60 * 60, 60.0), (end, 0.0)]


def test_the_read_only_reader_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite3"
    db = GuardDb(path)
    db.record(decision(), 100.0)
    db.close()
    before = path.read_bytes()
    reader = open_read_only(path)
    assert schema_version(reader) == SCHEMA_VERSION
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("DELETE FROM decisions")
    reader.close()
    assert path.read_bytes() == before
    with pytest.raises(FileNotFoundError):
        open_read_only(tmp_path / "absent.sqlite3")
    assert not (tmp_path / "absent.sqlite3").exists()


def test_a_full_disk_says_so_and_the_database_stays_usable(tmp_path: Path) -> None:
    """SQLITE_FULL rolls the transaction back itself: the error raised must be the
    disk's, not a failed second ROLLBACK; once there is room, writes go on."""
    db = GuardDb(tmp_path / "guard.sqlite3")
    pages = db._db.execute("PRAGMA page_count").fetchone()[0]
    db._db.execute(f"PRAGMA max_page_count = {pages + 1}")
    many = tuple(sample(f"netns-{i:04}", i, 0) for i in range(2000))
    with pytest.raises(sqlite3.OperationalError, match="full"):
        for tick in range(50):
            db.record_samples(1_000_000.0 + tick, many)
    db._db.execute("PRAGMA max_page_count = 1073741823")
    db.record_samples(1_000_100.0, (sample("a", 1, 0),))
    assert (1_000_100.0, "a") in {(r[0], r[1]) for r in rows(tmp_path / "guard.sqlite3")}
