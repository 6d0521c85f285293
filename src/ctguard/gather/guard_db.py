"""The guard's database: its schema and the queries that only read it.

The guard (``guard/state.py``) writes the file; `ctguard report` and
`ctguard capture` read it and must not depend on the guard's code, so the
schema (numbered migrations), the row types and the read-only queries live
here, below both.  A reader opens the file with ``mode=ro``: it never
creates, migrates or locks it for writing, even when the guard is running
(SQLite may still create the ``-wal``/``-shm`` index files of a WAL database).

Tables (migration 1): ``decisions`` (every decision with its evidence) and
``bans``; (migration 2): ``samples``, the fill and drop counters of every
guarded namespace, one row per namespace per tick, kept at full resolution
for :data:`SAMPLES_RAW_KEEP` seconds, then folded into one row per minute
(``span`` = 60: the last count, the peak count, the counters at the minute's
end) kept for :data:`SAMPLES_KEEP` seconds.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DB_NAME = "guard.sqlite3"
STATUS_PENDING = "pending"
STATUS_APPLIED = "applied"
STATUS_LIFTED = "lifted"

SAMPLES_RAW_KEEP = 6 * 3600.0  # one row per tick and namespace for the last 6 hours
SAMPLES_MINUTE = 60.0  # then one row per minute and namespace
SAMPLES_KEEP = 7 * 86400.0  # for 7 days; older rows are deleted

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
    (
        2,
        """
        CREATE TABLE samples (
            at REAL NOT NULL,
            netns TEXT NOT NULL,
            span REAL NOT NULL,
            count INTEGER,
            peak INTEGER,
            max INTEGER,
            drops INTEGER,
            early_drop INTEGER,
            insert_failed INTEGER,
            PRIMARY KEY (at, netns)
        ) WITHOUT ROWID
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


def open_read_only(path: Path) -> sqlite3.Connection:
    """The database at ``path``, read-only (raises sqlite3 errors and OSError)."""
    if not path.exists():
        raise FileNotFoundError(path)
    with open(path, "rb"):  # a clear PermissionError rather than sqlite's "unable to open"
        pass
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)


def schema_version(db: sqlite3.Connection) -> int:
    exists = db.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def query_bans(db: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[BanRow]:
    rows = db.execute(
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


def active_bans(db: sqlite3.Connection, now: float) -> list[BanRow]:
    """Bans not expired and not lifted by hand (pending ones included)."""
    return query_bans(db, "b.expires > ? AND b.status != ?", (now, STATUS_LIFTED))


def decision_rows(
    db: sqlite3.Connection, where: str, params: tuple[Any, ...], limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` decisions matching ``where``, oldest first."""
    rows = db.execute(
        "SELECT id, at, netns, target, signal, seen, threshold, action, duration, repeat,"
        " evidence, why_not FROM decisions WHERE " + where + " ORDER BY at DESC, id DESC LIMIT ?",
        (*params, limit),
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
