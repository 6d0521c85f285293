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
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctguard.errors import AccessDenied, CtguardError, ParseError
from ctguard.guard.detect import Decision

DB_NAME = "guard.sqlite3"
STATUS_PENDING = "pending"
STATUS_APPLIED = "applied"
STATUS_LIFTED = "lifted"

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            netns TEXT NOT NULL,
            target TEXT NOT NULL,
            signal TEXT NOT NULL,
            seen REAL NOT NULL,
            threshold REAL NOT NULL,
            action TEXT NOT NULL,
            duration REAL,
            repeat INTEGER NOT NULL,
            evidence TEXT NOT NULL,
            why_not TEXT NOT NULL
        );
        CREATE INDEX decisions_at ON decisions (at);
        CREATE TABLE bans (
            id INTEGER PRIMARY KEY,
            netns TEXT NOT NULL,
            netns_path TEXT,
            target TEXT NOT NULL,
            added REAL NOT NULL,
            expires REAL NOT NULL,
            decision_id INTEGER REFERENCES decisions (id),
            status TEXT NOT NULL,
            verified INTEGER NOT NULL DEFAULT 0,
            changed REAL NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX bans_expires ON bans (expires);
        CREATE INDEX bans_target ON bans (netns, target);
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


@dataclass(frozen=True)
class BanRow:
    id: int
    netns: str
    netns_path: str | None
    target: str
    added: float
    expires: float
    decision_id: int | None
    status: str
    verified: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "netns": self.netns,
            "target": self.target,
            "added": self.added,
            "expires": self.expires,
            "status": self.status,
            "verified": self.verified,
            "reason": self.reason,
        }


def db_path(state_dir: Path) -> Path:
    return state_dir / DB_NAME


class GuardDb:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
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
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def version(self) -> int:
        exists = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        ).fetchone()
        if not exists:
            return 0
        row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

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

    def _bans(self, where: str, params: tuple[Any, ...]) -> list[BanRow]:
        rows = self._db.execute(
            "SELECT b.id, b.netns, b.netns_path, b.target, b.added, b.expires, b.decision_id,"
            " b.status, b.verified, d.signal, d.seen FROM bans b"
            " LEFT JOIN decisions d ON d.id = b.decision_id WHERE " + where + " ORDER BY b.added",
            params,
        ).fetchall()
        return [
            BanRow(
                int(r[0]),
                str(r[1]),
                r[2],
                str(r[3]),
                float(r[4]),
                float(r[5]),
                r[6],
                str(r[7]),
                bool(r[8]),
                f"guard: {r[9]} {r[10]:g}" if r[9] is not None else "guard",
            )
            for r in rows
        ]

    def active_bans(self, now: float) -> list[BanRow]:
        """Bans not expired and not lifted by hand (pending ones included)."""
        return self._bans("b.expires > ? AND b.status != ?", (now, STATUS_LIFTED))

    def repeats(self, netns: str, since: float) -> dict[str, int]:
        """Bans per target in ``netns`` added after ``since`` (escalation's count)."""
        rows = self._db.execute(
            "SELECT target, COUNT(*) FROM bans WHERE netns = ? AND added > ? GROUP BY target",
            (netns, since),
        ).fetchall()
        return {str(t): int(n) for t, n in rows}

    def history(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT id, at, netns, target, signal, seen, threshold, action, duration, repeat,"
            " evidence, why_not FROM decisions ORDER BY at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        result = []
        for r in reversed(rows):
            duration = r[8]
            result.append(
                {
                    "id": r[0],
                    "at": r[1],
                    "netns": r[2],
                    "target": r[3],
                    "signal": r[4],
                    "seen": r[5],
                    "threshold": r[6],
                    "action": r[7],
                    "duration": duration,
                    "until": None if duration is None else r[1] + duration,
                    "repeat": r[9],
                    "evidence": json.loads(r[10]),
                    "why_not": r[11],
                }
            )
        return result
