"""The guard's database: every decision with its evidence, every ban with its expiry.

SQLite (stdlib), one file in the state directory (``guard.sqlite3``), with a
``schema_version`` table and numbered migrations applied in one transaction
each, so a newer ctguard upgrades an older file and an older ctguard refuses
a newer one instead of misreading it.

Every write commits at once (synchronous=FULL): a ban is recorded before it
is loaded into the kernel (status ``pending``), marked ``applied`` after,
and ``lifted`` when the operator removed it by hand.  So a guard killed at
any point (SIGKILL included) finds on start every ban it meant to have and
puts back those the kernel lost; expiry is absolute time, so an expired ban
is simply not active any more.

Each tick also writes the fill and drop counters of every guarded namespace
(``samples``, one transaction per tick for all of them; see
:meth:`GuardDb.record_samples` for its retention).  The schema and the
read-only queries live in ``gather/guard_db.py``, where `ctguard report`
reads them without the guard's code.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctguard.errors import AccessDenied, CtguardError, ParseError
from ctguard.gather.guard_db import (
    MIGRATIONS,
    SAMPLES_KEEP,
    SAMPLES_MINUTE,
    SAMPLES_RAW_KEEP,
    SCHEMA_VERSION,
    STATUS_APPLIED,
    STATUS_LIFTED,
    STATUS_PENDING,
    BanRow,
    active_bans,
    db_path,
    decision_rows,
    schema_version,
)
from ctguard.guard.detect import Decision
from ctguard.model.collection import NetnsSample

__all__ = [
    "SCHEMA_VERSION",
    "STATUS_APPLIED",
    "STATUS_LIFTED",
    "STATUS_PENDING",
    "BanRow",
    "GuardDb",
    "db_path",
]


class GuardDb:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
            self._last_fold = -1e18
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except PermissionError as err:
            raise AccessDenied(
                "cannot open the guard's database", where=str(path), hint="run as root"
            ) from err
        except sqlite3.DatabaseError as err:
            raise ParseError(
                f"the guard's database is unusable: {err}",
                where=str(path),
                hint="move it aside to start with an empty history (bans in the kernel expire "
                "by themselves)",
            ) from err

    @classmethod
    def open_existing(cls, path: Path) -> GuardDb | None:
        """The database if it exists (readers never create one)."""
        return cls(path) if path.exists() else None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL): a
            # second ROLLBACK would fail and hide the error that matters
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def version(self) -> int:
        return schema_version(self._db)

    def _migrate(self) -> None:
        current = self.version()
        if current > SCHEMA_VERSION:
            raise CtguardError(
                f"the guard's database has schema {current}; this ctguard knows up to "
                f"{SCHEMA_VERSION}",
                where=str(self.path),
                hint="run the newer ctguard that wrote it",
            )
        for version, script in MIGRATIONS:
            if version <= current:
                continue
            with self._transaction() as db:
                db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def record(self, decision: Decision, at: float) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO decisions (at, netns, target, signal, seen, threshold, action,"
                " duration, repeat, evidence, why_not) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    at,
                    decision.netns,
                    decision.target,
                    decision.signal,
                    decision.seen,
                    decision.threshold,
                    decision.action,
                    decision.duration,
                    decision.repeat,
                    json.dumps(decision.evidence, sort_keys=True),
                    decision.why_not,
                ),
            )
            return int(cursor.lastrowid or 0)

    def record_samples(self, at: float, samples: tuple[NetnsSample, ...]) -> None:
        """One row per guarded namespace for this tick, in one transaction.

        Committed with synchronous=NORMAL: in WAL mode that skips the fsync
        (a power cut may lose the last seconds of samples, never the file's
        consistency); decisions and bans keep FULL.  Once a minute the rows
        older than SAMPLES_RAW_KEEP are folded into per-minute rows and rows
        older than SAMPLES_KEEP deleted, in the same transaction.
        """
        rows = [
            (
                at,
                s.label,
                s.count,
                s.count,
                s.max,
                *((s.counters or {}).get(k) for k in ("drop", "early_drop", "insert_failed")),
            )
            for s in samples
            if s.max is not None
        ]
        fold = at - self._last_fold >= SAMPLES_MINUTE
        if not rows and not fold:
            return
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO samples (at, netns, span, count, peak, max, drops,"
                    " early_drop, insert_failed) VALUES (?,?,0,?,?,?,?,?,?)",
                    rows,
                )
                if fold:
                    self._fold(db, at)
            if fold:
                self._last_fold = at  # committed: a failed fold is tried again next tick
        finally:
            self._db.execute("PRAGMA synchronous=FULL")

    @staticmethod
    def _fold(db: sqlite3.Connection, now: float) -> None:
        """Per-tick rows older than SAMPLES_RAW_KEEP become one row per minute."""
        cutoff = (now - SAMPLES_RAW_KEEP) // SAMPLES_MINUTE * SAMPLES_MINUTE
        db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS folded (at REAL, netns TEXT, count INTEGER,"
            " peak INTEGER, max INTEGER, drops INTEGER, early_drop INTEGER, insert_failed INTEGER)"
        )
        db.execute("DELETE FROM folded")
        db.execute(
            "INSERT INTO folded SELECT g.minute, g.netns, s.count, g.peak, s.max, s.drops,"
            " s.early_drop, s.insert_failed FROM (SELECT CAST(at / ? AS INTEGER) * ? AS minute,"
            " netns, MAX(at) AS last, MAX(peak) AS peak FROM samples WHERE span < ? AND at < ?"
            " GROUP BY 1, 2) g JOIN samples s ON s.at = g.last AND s.netns = g.netns",
            (SAMPLES_MINUTE, SAMPLES_MINUTE, SAMPLES_MINUTE, cutoff),
        )
        db.execute("DELETE FROM samples WHERE span < ? AND at < ?", (SAMPLES_MINUTE, cutoff))
        db.execute(
            "INSERT OR REPLACE INTO samples (at, netns, span, count, peak, max, drops, early_drop,"
            " insert_failed) SELECT at, netns, ?, count, peak, max, drops, early_drop,"
            " insert_failed FROM folded",
            (SAMPLES_MINUTE,),
        )
        db.execute("DELETE FROM samples WHERE at < ?", (now - SAMPLES_KEEP,))

    def add_ban(
        self,
        netns: str,
        netns_path: str | None,
        target: str,
        added: float,
        expires: float,
        decision_id: int | None,
    ) -> int:
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO bans (netns, netns_path, target, added, expires, decision_id,"
                " status, changed) VALUES (?,?,?,?,?,?,?,?)",
                (netns, netns_path, target, added, expires, decision_id, STATUS_PENDING, added),
            )
            return int(cursor.lastrowid or 0)

    def set_status(self, ban_id: int, status: str, at: float, note: str = "") -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE bans SET status = ?, changed = ?, note = ? WHERE id = ?",
                (status, at, note, ban_id),
            )

    def set_verified(self, ban_id: int) -> None:
        with self._transaction() as db:
            db.execute("UPDATE bans SET verified = 1 WHERE id = ?", (ban_id,))

    def active_bans(self, now: float) -> list[BanRow]:
        """Bans not expired and not lifted by hand (pending ones included)."""
        return active_bans(self._db, now)

    def repeats(self, netns: str, since: float) -> dict[str, int]:
        """Bans per target in ``netns`` added after ``since`` (escalation's count)."""
        rows = self._db.execute(
            "SELECT target, COUNT(*) FROM bans WHERE netns = ? AND added > ? GROUP BY target",
            (netns, since),
        ).fetchall()
        return {str(t): int(n) for t, n in rows}

    def history(self, limit: int = 200) -> list[dict[str, Any]]:
        return decision_rows(self._db, "1", (), limit)
