"""What `ctguard watch` shows, apart from the screen: a header from successive
snapshots and top talkers from a table read within a budget.

The header (fill, drop rates, verdict, 'table full' lines) comes from the
snapshot alone, which reads a few small procfs files: it never reads the
table.  The table is read by :class:`TableReader`, one pass per refresh
with every grouping's tally and ``analyze``'s at once (switching the
grouping costs nothing), sampled above ``FULL_READ_ENTRIES`` as doctor
does, and never more often than :class:`ReadBudget` allows: a view must not
become the load on a host that is already in trouble.

Everything here is pure except :class:`TableReader` and :func:`read_header`
(they read the kernel); the face only renders.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ctguard.analyze.status_checks import Thresholds
from ctguard.analyze.status_report import build_status_report
from ctguard.analyze.table_analysis import ANALYZE_SPEC, build_profile, check_table
from ctguard.analyze.table_query import TableFilter, parse_dimensions
from ctguard.analyze.table_top import build_top, top_scan_spec
from ctguard.gather.kmsg_follow import KmsgTally
from ctguard.gather.table import BYTES_PER_ENTRY, FULL_READ_ENTRIES, SAMPLE_ENTRIES
from ctguard.model.findings import Finding, Severity
from ctguard.model.kernlog import LogKind
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot
from ctguard.parse.kernlog import classify_message
from ctguard.parse.table_scan import ScanResult, ScanSpec

RATE_COUNTERS = ("drop", "early_drop", "insert_failed")
HISTORY = 120  # samples kept per sparkline (2 minutes at the default interval)
LOG_LINES = 50  # 'table full' lines kept

# The groupings a key cycles through (``ctguard top --by`` spellings).
GROUPINGS = ("src", "src/24", "dst", "dport", "state")
GROUPING_TITLES = {
    "src": "source",
    "src/24": "source /24 (/64)",
    "dst": "destination",
    "dport": "destination port",
    "state": "state",
}


# --- the header: from snapshots only -------------------------------------------


@dataclass(frozen=True)
class Header:
    """One refresh of the header."""

    label: str
    count: int | None
    max: int | None
    fill: float | None
    rates: dict[str, float | None]  # per second since the previous snapshot
    history: dict[str, tuple[float, ...]]  # oldest first, for sparklines
    verdict: Severity
    findings: tuple[Finding, ...]
    table_full: tuple[str, ...]  # the 'table full' lines seen since start, newest last
    table_full_total: int


class HeaderModel:
    """Rates, history and verdict from successive snapshots (pure)."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        history: int = HISTORY,
        log_lines: int = LOG_LINES,
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self._previous: Snapshot | None = None
        self._history: dict[str, deque[float]] = {
            name: deque(maxlen=history) for name in RATE_COUNTERS
        }
        self._lines: deque[str] = deque(maxlen=log_lines)
        self._lines_total = 0
        self._lock = threading.Lock()

    def add_log_line(self, message: str) -> bool:
        """A kernel message; kept when it is a 'table full' line (True then)."""
        kind, _count, _inode, _vps = classify_message(message)
        if kind is not LogKind.TABLE_FULL:
            return False
        with self._lock:
            self._lines.append(message.strip())
            self._lines_total += 1
        return True

    def update(self, snapshot: Snapshot) -> Header:
        report = build_status_report(snapshot, self.thresholds)
        rates = rates_between(self._previous, snapshot)
        if self._previous is not None:
            for name in RATE_COUNTERS:
                rate = rates[name]
                self._history[name].append(rate if rate is not None else 0.0)
        self._previous = snapshot
        with self._lock:
            lines, total = tuple(self._lines), self._lines_total
        return Header(
            label=snapshot.source if snapshot.netns is None else snapshot.netns.label,
            count=snapshot.count,
            max=snapshot.max,
            fill=report.metrics.fill,
            rates=rates,
            history={name: tuple(values) for name, values in self._history.items()},
            verdict=report.verdict,
            findings=report.findings,
            table_full=lines,
            table_full_total=total,
        )


def rates_between(before: Snapshot | None, after: Snapshot) -> dict[str, float | None]:
    """Per-second rates of the lost-packet counters; None when unknown (first
    snapshot, no counters, no clock, or a counter that went back: a reload)."""
    rates: dict[str, float | None] = dict.fromkeys(RATE_COUNTERS)
    if before is None or before.counters is None or after.counters is None:
        return rates
    if before.taken_monotonic is None or after.taken_monotonic is None:
        return rates
    seconds = after.taken_monotonic - before.taken_monotonic
    if seconds <= 0:
        return rates
    for name in RATE_COUNTERS:
        old, new = before.counters.get(name), after.counters.get(name)
        if old is None or new is None or new < old:
            continue
        rates[name] = (new - old) / seconds
    return rates


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters, scaled to their maximum
    (all zero: the lowest block, so an idle line is still visible)."""
    shown = list(values)[-width:] if width > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return SPARK[0] * len(shown)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in shown)


class LogLineTally(KmsgTally):
    """A kernel-log tally that also hands each message to the header."""

    def __init__(self, header: HeaderModel) -> None:
        super().__init__()
        self._header = header

    def feed(self, message: str, *, count: bool = True) -> None:
        super().feed(message, count=count)
        if count:
            self._header.add_log_line(message)


# --- the body: top talkers -----------------------------------------------------


def watch_scan_spec() -> ScanSpec:
    """``analyze``'s tallies plus one per grouping and the totals: one pass
    answers every grouping and the findings."""
    extra: list[tuple[str, ...]] = []
    for grouping in GROUPINGS:
        extra.extend(top_scan_spec(parse_dimensions(grouping), TableFilter()).tallies)
    tallies = list(ANALYZE_SPEC.tallies)
    for tally in extra:
        if tally not in tallies:
            tallies.append(tally)
    return replace(ANALYZE_SPEC, tallies=tuple(tallies))


WATCH_SPEC = watch_scan_spec()


@dataclass(frozen=True)
class TopRow:
    key: tuple[Any, ...]
    label: str
    count: int
    share: float  # of the entries read
    change: int | None  # since the previous read (None: not shown then)


@dataclass(frozen=True)
class TopView:
    grouping: str
    rows: tuple[TopRow, ...]
    entries: int  # entries read
    table_count: int | None  # the table's count when it was read
    group_count: int
    sampled: bool
    approximate: bool
    findings: tuple[Finding, ...]
    read_at: float  # epoch
    read_seconds: float

    @property
    def note(self) -> str:
        if self.sampled:
            return (
                f"sample: {self.entries:,} of {self.table_count or 0:,} entries read "
                "(the table's start, hash order)"
            )
        if self.approximate:
            return f"{self.entries:,} entries read; counts of rare keys are approximate"
        return f"{self.entries:,} entries read"


@dataclass
class TableRead:
    """One pass over the table, every grouping answerable from it."""

    label: str
    scan: ScanResult
    table_count: int | None
    sampled: bool
    findings: tuple[Finding, ...]
    read_at: float
    read_seconds: float


def group_label(grouping: str, key: tuple[Any, ...]) -> str:
    value = key[0] if key else None
    if value is None:
        return "-"
    return str(value)


class TopModel:
    """Top groups of successive reads, with the change of each since the last."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._previous: dict[str, dict[tuple[Any, ...], int]] = {}
        self._last: TableRead | None = None

    @property
    def last(self) -> TableRead | None:
        return self._last

    def update(self, read: TableRead) -> None:
        """A new read: what was shown becomes the base of the changes."""
        if self._last is not None:
            for grouping in GROUPINGS:
                self._previous[grouping] = self._counts(self._last, grouping)
        self._last = read

    def _counts(self, read: TableRead, grouping: str) -> dict[tuple[Any, ...], int]:
        dims = parse_dimensions(grouping)
        spec = top_scan_spec(dims, TableFilter())
        result = build_top(read.label, replace(read.scan, spec=spec), dims, TableFilter(), 0)
        return dict(result.groups)

    def view(self, grouping: str) -> TopView | None:
        read = self._last
        if read is None:
            return None
        dims = parse_dimensions(grouping)
        spec = top_scan_spec(dims, TableFilter())
        result = build_top(
            read.label, replace(read.scan, spec=spec), dims, TableFilter(), self.limit
        )
        before = self._previous.get(grouping)
        entries = result.entries
        rows = tuple(
            TopRow(
                key=key,
                label=group_label(grouping, key),
                count=count,
                share=count / entries if entries else 0.0,
                change=None if before is None else count - before.get(key, 0),
            )
            for key, count in result.groups
        )
        return TopView(
            grouping=grouping,
            rows=rows,
            entries=entries,
            table_count=read.table_count,
            group_count=result.group_count,
            sampled=read.sampled,
            approximate=result.approximate,
            findings=read.findings,
            read_at=read.read_at,
            read_seconds=read.read_seconds,
        )


def table_read_from(
    label: str,
    scan: ScanResult,
    *,
    table_count: int | None,
    sampled: bool,
    established_timeout: int | None,
    read_at: float,
    read_seconds: float,
) -> TableRead:
    """A scan of ``WATCH_SPEC`` with ``analyze``'s findings for it (pure)."""
    profile = build_profile(label, scan, established_timeout)
    return TableRead(
        label, scan, table_count, sampled, tuple(check_table(profile)), read_at, read_seconds
    )


# --- when to read the table ------------------------------------------------------


@dataclass
class ReadBudget:
    """Reading the table at most ``share`` of the wall clock, and not more
    often than every ``interval`` seconds.

    A read that took ``c`` seconds is followed by at least ``c / share``
    seconds without one: with the default 5%, a table that takes 0.5 s to
    read is read every 10 s, a small one every interval.
    """

    interval: float
    share: float = 0.05
    _next: float = field(default=0.0, init=False)

    def due(self, now: float) -> bool:
        return now >= self._next

    def spent(self, finished: float, seconds: float) -> None:
        self._next = finished + max(self.interval, seconds / self.share)

    def next_read_in(self, now: float) -> float:
        return max(0.0, self._next - now)


def sample_bytes_for(count: int | None, live: bool) -> int | None:
    """Bytes to read from the table's start, or None for all (doctor's rule)."""
    if live and (count or 0) > FULL_READ_ENTRIES:
        return SAMPLE_ENTRIES * BYTES_PER_ENTRY
    return None


class TableReader:
    """Reads the table of one namespace as ``ctguard top`` does (a ``cat``
    child, this process parsing; never forking workers: the view has threads)."""

    def __init__(self, root: Any, netns: NetnsRef | None) -> None:
        self.root = root
        self.netns = netns

    def read(self, snapshot: Snapshot, clock: Callable[[], float] = time.monotonic) -> TableRead:
        from ctguard.kernel.table_source import reading_started, resolve_table_source, scan_table

        started = clock()
        sample = sample_bytes_for(snapshot.count, self.root.is_live)
        source = resolve_table_source(None, self.root, self.netns)
        with reading_started(source) as live:
            scan = scan_table(live, WATCH_SPEC, workers=1, sample_bytes=sample)
        established = snapshot.timeout("tcp_timeout_established")
        return table_read_from(
            source.label,
            scan,
            table_count=snapshot.count,
            sampled=sample is not None and scan.entries < (snapshot.count or 0),
            established_timeout=established.seconds if established else None,
            read_at=time.time(),
            read_seconds=clock() - started,
        )
