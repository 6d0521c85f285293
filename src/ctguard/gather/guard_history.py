"""What the guard recorded in a time window, for `ctguard report`.

Read from the guard's database (the state directory's ``guard.sqlite3`` on
this host, ``ctguard/guard.sqlite3`` in a bundle), opened read-only.  Every
list is bounded whatever the database holds: the samples are binned into at
most :data:`HISTORY_BINS` bins per namespace, for at most
:data:`NETNS_SHOWN` namespaces (the fullest), and the decisions and bans
are the newest :data:`ROWS_SHOWN`, with their totals.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctguard.gather.guard_db import (
    SCHEMA_VERSION,
    STATUS_LIFTED,
    BanRow,
    decision_rows,
    open_read_only,
    query_bans,
    schema_version,
)

HISTORY_BINS = 120
NETNS_SHOWN = 6
ROWS_SHOWN = 50
NICE_SECONDS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


@dataclass(frozen=True)
class SampleBin:
    start: float
    peak: int | None  # the highest count seen in the bin
    max: int | None
    drops: int | None  # drop counter increase during the bin
    early_drops: int | None
    insert_failed: int | None


@dataclass(frozen=True)
class NetnsHistory:
    netns: str
    peak_fill: float | None
    drops: int  # over the window
    bins: tuple[SampleBin | None, ...]  # None: no sample (the guard did not run)


@dataclass
class GuardHistory:
    """``state``: "absent" (no database), "unreadable", "empty" (nothing in the
    window) or "recorded"."""

    state: str
    where: str
    why: str = ""
    schema: int | None = None
    window: tuple[float, float] | None = None
    bin_seconds: int = 0
    bin_starts: tuple[float, ...] = ()
    runs: tuple[tuple[float, float], ...] = ()  # (first, last) bin start with samples
    netns: tuple[NetnsHistory, ...] = ()
    netns_left_out: int = 0
    decision_bins: dict[str, tuple[int, ...]] = field(default_factory=dict)  # action -> counts
    decision_totals: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    decisions_total: int = 0
    bans_at: float | None = None
    bans: list[BanRow] = field(default_factory=list)
    bans_total: int = 0
    notes: list[str] = field(default_factory=list)


def _bin_seconds(span: float) -> int:
    wanted = max(1.0, span / HISTORY_BINS)
    for nice in NICE_SECONDS:
        if nice >= wanted:
            return nice
    return int(math.ceil(wanted / 86400) * 86400)


@dataclass(frozen=True)
class Scope:
    """The namespaces asked for (``report --netns``), as a SQL condition on a
    table's ``netns`` column; every namespace when ``labels`` is None."""

    labels: tuple[str, ...] | None = None

    def where(self, column: str = "netns") -> tuple[str, tuple[str, ...]]:
        if self.labels is None:
            return "1", ()
        return f"{column} IN ({', '.join('?' * len(self.labels))})", self.labels


def _has_samples(db: sqlite3.Connection) -> bool:
    return bool(
        db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='samples'").fetchone()
    )


def _window(
    db: sqlite3.Connection, since: float | None, until: float | None, samples: bool, scope: Scope
) -> tuple[float, float] | None:
    low, high = since if since is not None else -1e18, until if until is not None else 1e18
    scoped, names = scope.where()
    tables = ("decisions", "samples") if samples else ("decisions",)
    spans = [
        db.execute(
            f"SELECT MIN(at), MAX(at) FROM {table} WHERE at >= ? AND at <= ? AND {scoped}",
            (low, high, *names),
        ).fetchone()
        for table in tables
    ]
    firsts = [float(s[0]) for s in spans if s[0] is not None]
    lasts = [float(s[1]) for s in spans if s[1] is not None]
    if not firsts:
        return None
    return (since if since is not None else min(firsts), until if until is not None else max(lasts))


def _delta(value: int | None, before: int | None) -> int | None:
    if value is None:
        return None
    if before is None or value < before:  # the first, or the counter was reset
        return 0 if before is None else value
    return value - before


def _netns_history(
    db: sqlite3.Connection, window: tuple[float, float], width: int, bins: int, scope: Scope
) -> tuple[list[NetnsHistory], int]:
    low, high = window
    scoped, names = scope.where()
    ranked = db.execute(
        "SELECT netns, MAX(CAST(peak AS REAL) / max), MAX(drops) - MIN(drops) FROM samples"
        f" WHERE at >= ? AND at <= ? AND {scoped} GROUP BY netns"
        " ORDER BY 2 DESC NULLS LAST, 3 DESC, netns",
        (low, high, *names),
    ).fetchall()
    shown = ranked[:NETNS_SHOWN]
    result = []
    for name, peak_fill, _ in shown:
        baseline = db.execute(
            "SELECT drops, early_drop, insert_failed FROM samples WHERE netns = ? AND at < ?"
            " ORDER BY at DESC LIMIT 1",
            (name, low),
        ).fetchone()
        rows = db.execute(
            "SELECT CAST((at - ?) / ? AS INTEGER), MAX(peak), MAX(max), MIN(drops), MAX(drops),"
            " MIN(early_drop), MAX(early_drop), MIN(insert_failed), MAX(insert_failed)"
            " FROM samples WHERE netns = ? AND at >= ? AND at <= ? GROUP BY 1 ORDER BY 1",
            (low, width, name, low, high),
        ).fetchall()
        out: list[SampleBin | None] = [None] * bins
        last: list[int | None] = list(baseline) if baseline else [None, None, None]
        total = 0
        for r in rows:
            index = min(int(r[0]), bins - 1)
            counters: list[int | None] = []
            for k, (first, top) in enumerate(((r[3], r[4]), (r[5], r[6]), (r[7], r[8]))):
                before = last[k] if last[k] is not None else first
                counters.append(_delta(top, before))
                if top is not None:
                    last[k] = top
            total += counters[0] or 0
            out[index] = SampleBin(
                low + index * width, r[1], r[2], counters[0], counters[1], counters[2]
            )
        result.append(
            NetnsHistory(
                str(name), None if peak_fill is None else float(peak_fill), total, tuple(out)
            )
        )
    return result, max(0, len(ranked) - len(shown))


def _runs(histories: list[NetnsHistory], starts: list[float]) -> tuple[tuple[float, float], ...]:
    seen = [any(h.bins[i] is not None for h in histories) for i in range(len(starts))]
    runs: list[tuple[float, float]] = []
    begin: int | None = None
    for i, present in enumerate([*seen, False]):
        if present and begin is None:
            begin = i
        elif not present and begin is not None:
            runs.append((starts[begin], starts[i - 1]))
            begin = None
    return tuple(runs)


def _decisions(
    history: GuardHistory, db: sqlite3.Connection, width: int, bins: int, scope: Scope
) -> None:
    assert history.window is not None
    low, high = history.window
    scoped, names = scope.where()
    in_window = f"at >= ? AND at <= ? AND {scoped}"
    window = (low, high, *names)
    per_bin: dict[str, list[int]] = {}
    for index, action, n in db.execute(
        "SELECT CAST((at - ?) / ? AS INTEGER), action, COUNT(*) FROM decisions"
        f" WHERE {in_window} GROUP BY 1, 2",
        (low, width, *window),
    ):
        per_bin.setdefault(str(action), [0] * bins)[min(int(index), bins - 1)] += int(n)
    history.decision_bins = {action: tuple(counts) for action, counts in sorted(per_bin.items())}
    history.decision_totals = [
        {
            "netns": r[0],
            "signal": r[1],
            "action": r[2],
            "decisions": r[3],
            "sources": r[4],
            "first": r[5],
            "last": r[6],
        }
        for r in db.execute(
            "SELECT netns, signal, action, COUNT(*), COUNT(DISTINCT target), MIN(at), MAX(at)"
            f" FROM decisions WHERE {in_window} GROUP BY 1, 2, 3"
            " ORDER BY 4 DESC, 1, 2, 3 LIMIT ?",
            (*window, ROWS_SHOWN),
        )
    ]
    history.decisions_total = int(
        db.execute(f"SELECT COUNT(*) FROM decisions WHERE {in_window}", window).fetchone()[0]
    )
    history.decisions = decision_rows(db, in_window, window, ROWS_SHOWN)


def gather_guard_history(
    path: Path | None,
    *,
    since: float | None,
    until: float | None,
    now: float,
    where: str,
    netns: tuple[str, ...] | None = None,
) -> GuardHistory:
    """The guard's history between ``since`` and ``until`` (None: all it kept);
    bans active at ``until`` (or ``now``: the capture's time for a bundle).
    ``netns``: the names the guard may have labelled the namespace asked for
    (None: every namespace it guarded)."""
    if path is None or not path.exists():
        return GuardHistory("absent", where)
    try:
        db = open_read_only(path)
    except PermissionError:
        return GuardHistory("unreadable", where, "permission denied (run as root)")
    except (OSError, sqlite3.Error) as err:
        return GuardHistory("unreadable", where, str(err))
    try:
        return _read(db, since=since, until=until, now=now, where=where, scope=Scope(netns))
    except sqlite3.Error as err:
        return GuardHistory("unreadable", where, f"not a guard database: {err}")
    finally:
        db.close()


def _read(
    db: sqlite3.Connection,
    *,
    since: float | None,
    until: float | None,
    now: float,
    where: str,
    scope: Scope,
) -> GuardHistory:
    schema = schema_version(db)
    if schema > SCHEMA_VERSION:
        return GuardHistory(
            "unreadable",
            where,
            f"schema {schema}, newer than this ctguard knows ({SCHEMA_VERSION}): "
            "report with the ctguard that wrote it",
            schema,
        )
    if schema < 1:
        return GuardHistory("unreadable", where, "not a guard database (no schema)", schema)
    samples = _has_samples(db)
    bans_at = until if until is not None else now
    history = GuardHistory("empty", where, schema=schema, bans_at=bans_at)
    if not samples:
        history.notes.append(
            f"the guard's database has schema {schema}, from a ctguard that did not record the "
            "table's fill: decisions and bans only"
        )
    scoped, names = scope.where("b.netns")
    banned = f"b.expires > ? AND b.added <= ? AND b.status != ? AND {scoped}"
    params = (bans_at, bans_at, STATUS_LIFTED, *names)
    history.bans_total = int(
        db.execute(f"SELECT COUNT(*) FROM bans b WHERE {banned}", params).fetchone()[0]
    )
    history.bans = query_bans(db, banned, params)[-ROWS_SHOWN:]
    window = _window(db, since, until, samples, scope)
    if window is None:
        if scope.labels is not None:
            history.notes.append(_nothing_for(db, scope.labels))
        return history
    history.state = "recorded"
    history.window = window
    width = _bin_seconds(window[1] - window[0])
    bins = max(1, min(HISTORY_BINS + 1, int((window[1] - window[0]) // width) + 1))
    history.bin_seconds = width
    starts = [window[0] + i * width for i in range(bins)]
    history.bin_starts = tuple(starts)
    if samples:
        histories, left_out = _netns_history(db, window, width, bins, scope)
        history.netns, history.netns_left_out = tuple(histories), left_out
        history.runs = _runs(histories, starts)
    _decisions(history, db, width, bins, scope)
    return history


def _nothing_for(db: sqlite3.Connection, labels: tuple[str, ...]) -> str:
    """Why a --netns report's guard section is empty, naming what the guard did watch."""
    guarded = sorted(
        str(row[0])
        for row in db.execute(
            "SELECT netns FROM decisions UNION SELECT netns FROM bans"
            + (" UNION SELECT netns FROM samples" if _has_samples(db) else "")
        )
    )
    seen = ", ".join(guarded[:NETNS_SHOWN]) + (" ..." if len(guarded) > NETNS_SHOWN else "")
    return f"the guard recorded nothing for namespace {' / '.join(labels)} in the window" + (
        f"; it recorded: {seen}" if guarded else ""
    )
