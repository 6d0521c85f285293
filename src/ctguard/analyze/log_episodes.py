"""Turn kernel-log records into "table full" episodes.

An episode is a run of table-full lines of one namespace (netns inum, or
OpenVZ VPS id, or none) without a silence longer than ``gap`` seconds.

Rate limiting (FACTS §4): at most 10 lines per 5 s get through; the next
message that passes is preceded by ``net_ratelimit: N callbacks
suppressed``.  That N counts every net_ratelimit user, so it is attributed
to an episode only when the message it precedes is itself a table-full
line, and it is an upper bound.  Each logged line is one dropped packet,
so an episode dropped at least ``lines`` and at most ``lines +
suppressed`` packets as far as the log can tell; the drop counter is the
truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ctguard.model.kernlog import LogKind, LogRecord
from ctguard.parse.kernlog import lab_marker

DEFAULT_GAP = 60.0
ATTRIBUTION_WINDOW = 1.0  # seconds between a suppression line and the line it precedes


@dataclass(frozen=True)
class TimeAxis:
    """How record times are compared and shown.

    basis: "wall" (dates in the log), "boot" (seconds since boot, with a
    known boot time: shown as wall clock), "relative" (seconds since boot,
    boot time unknown) or "order" (no timestamps: line order only).
    """

    basis: str
    boot_time: datetime | None = None

    def seconds(self, record: LogRecord) -> float | None:
        if self.basis == "wall" and record.wall is not None:
            wall = record.wall if record.wall.tzinfo else record.wall.replace(tzinfo=UTC)
            return wall.timestamp()
        if record.mono is not None and self.basis in ("boot", "relative"):
            return record.mono
        if self.basis == "wall" and record.mono is not None and self.boot_time is not None:
            return self.boot_time.timestamp() + record.mono
        return None

    def show(self, value: float | None) -> str | None:
        if value is None:
            return None
        if self.basis == "wall":
            return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")
        if self.basis == "boot" and self.boot_time is not None:
            return (self.boot_time + timedelta(seconds=value)).isoformat(timespec="seconds")
        return f"boot+{value:.3f}s"

    def to_wall(self, value: float) -> datetime | None:
        if self.basis == "wall":
            return datetime.fromtimestamp(value, tz=UTC)
        if self.basis == "boot" and self.boot_time is not None:
            return self.boot_time + timedelta(seconds=value)
        return None


def choose_axis(records: list[LogRecord], boot_time: datetime | None) -> TimeAxis:
    relevant = [r for r in records if r.kind is not LogKind.OTHER] or records
    if any(r.wall is not None for r in relevant):
        return TimeAxis("wall", boot_time)
    if any(r.mono is not None for r in relevant):
        return TimeAxis("boot" if boot_time else "relative", boot_time)
    return TimeAxis("order")


@dataclass
class Episode:
    netns: int | None
    vps: str | None
    start: float | None
    end: float | None
    first_line: int
    last_line: int
    lines: int = 0
    suppressed: int = 0
    minutes: dict[int, int] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    def add(self, record: LogRecord, when: float | None, repeat: int = 1) -> None:
        self.lines += repeat
        self.last_line = record.line_no
        if when is not None:
            self.end = when
            minute = int(when // 60)
            self.minutes[minute] = self.minutes.get(minute, 0) + repeat


def episode_namespace(episode: Episode, names: dict[int, str], *, live: bool) -> str:
    """'VPS 101', 'netns 4026532246 (web1)', 'netns ... (gone)' (live only) or 'host'.

    ``names`` holds the namespaces that exist now; offline nothing can be said
    about an inode that is not in it."""
    if episode.vps:
        return f"VPS {episode.vps}"
    if episode.netns is None:
        return "host"
    name = names.get(episode.netns)
    if name:
        return f"netns {episode.netns} ({name})"
    return f"netns {episode.netns} (gone)" if live else f"netns {episode.netns}"


@dataclass
class LogReport:
    axis: TimeAxis
    episodes: list[Episode]
    table_full_lines: int
    suppressed: int
    suppressed_unattributed: int
    expectation_full_lines: int
    vmalloc_lines: int
    records: int
    notes: list[str]
    # table-full lines of namespaces `ctguard lab` made (rehearsals), left out
    # of the episodes and of every count above
    lab_lines: int = 0


def build_log_report(
    records: list[LogRecord],
    *,
    boot_time: datetime | None = None,
    gap: float = DEFAULT_GAP,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LogReport:
    axis = choose_axis(records, boot_time)
    notes: list[str] = []
    if axis.basis == "relative":
        notes.append("times are seconds since boot: the boot time of this log is unknown")
    if axis.basis == "order":
        notes.append("the log has no timestamps: episodes are per namespace, in line order")
    if any(
        r.wall is not None and not r.year_known and r.kind is not LogKind.OTHER for r in records
    ):
        notes.append("syslog lines carry no year: the most recent past year was assumed")
    records = _filter_time(list(mark_lab_lines(records)), axis, since, until, notes)

    episodes: list[Episode] = []
    open_by_key: dict[tuple[int | None, str | None], Episode] = {}
    suppressed_unattributed = 0
    expect = vmalloc = lab_lines = 0
    last_relevant: LogRecord | None = None
    last_episode: Episode | None = None
    pending_suppressed: list[LogRecord] = []

    for record in records:
        when = axis.seconds(record)
        if record.kind is LogKind.TABLE_FULL:
            key = (record.netns, record.vps)
            episode = open_by_key.get(key)
            if episode is None or _gap_exceeded(episode, when, gap):
                episode = Episode(
                    record.netns, record.vps, when, when, record.line_no, record.line_no
                )
                episodes.append(episode)
                open_by_key[key] = episode
            for marker in pending_suppressed:
                marker_when = axis.seconds(marker)
                if when is None or marker_when is None or when - marker_when <= ATTRIBUTION_WINDOW:
                    episode.suppressed += marker.count
                else:
                    suppressed_unattributed += marker.count
            pending_suppressed.clear()
            episode.add(record, when)
            last_episode = episode
        elif record.kind is LogKind.LAB_TABLE_FULL:
            lab_lines += 1
            pending_suppressed.clear()  # the lab's, like the line they precede
        elif record.kind is LogKind.RATELIMIT:
            pending_suppressed.append(record)
            continue  # does not break the "next message" relation
        elif record.kind is LogKind.REPEATED:
            repeated = last_relevant.kind if last_relevant is not None else None
            if repeated is LogKind.TABLE_FULL and last_episode:
                last_episode.add(record, when, repeat=record.count)
            elif repeated is LogKind.LAB_TABLE_FULL:
                lab_lines += record.count
        else:
            if record.kind is LogKind.EXPECT_FULL:
                expect += 1
            elif record.kind is LogKind.VMALLOC:
                vmalloc += 1
            suppressed_unattributed += sum(m.count for m in pending_suppressed)
            pending_suppressed.clear()
        last_relevant = record
    suppressed_unattributed += sum(m.count for m in pending_suppressed)

    return LogReport(
        axis=axis,
        episodes=episodes,
        table_full_lines=sum(e.lines for e in episodes),
        suppressed=sum(e.suppressed for e in episodes),
        suppressed_unattributed=suppressed_unattributed,
        expectation_full_lines=expect,
        vmalloc_lines=vmalloc,
        records=len(records),
        notes=notes,
        lab_lines=lab_lines,
    )


def note_lab_marker(lab_netns: dict[int, str], record: LogRecord) -> None:
    """Update ``lab_netns`` (netns inode -> lab run) with a lab marker record."""
    marker = lab_marker(record.message)
    if marker is None:
        return
    run, inode = marker
    if inode is not None:
        lab_netns[inode] = run
    else:
        for closed in [i for i, r in lab_netns.items() if r == run]:
            del lab_netns[closed]


def mark_lab_lines(records: Iterable[LogRecord]) -> Iterator[LogRecord]:
    """The records, each table-full line of a namespace that a `ctguard lab`
    run marked (and had not closed yet) turned into LAB_TABLE_FULL.

    The marks are read in log order, before any --since/--until: a line
    after the run's "closed" mark, or naming a namespace no run marked, is
    the host's own, even when a later namespace reuses a lab namespace's
    inode number.
    """
    lab_netns: dict[int, str] = {}
    for record in records:
        if record.kind is LogKind.LAB_NETNS or record.kind is LogKind.LAB_CLOSED:
            note_lab_marker(lab_netns, record)
        elif record.kind is LogKind.TABLE_FULL and record.netns in lab_netns:
            record = replace(record, kind=LogKind.LAB_TABLE_FULL)
        yield record


def _gap_exceeded(episode: Episode, when: float | None, gap: float) -> bool:
    return when is not None and episode.end is not None and when - episode.end > gap


def _filter_time(
    records: list[LogRecord],
    axis: TimeAxis,
    since: datetime | None,
    until: datetime | None,
    notes: list[str],
) -> list[LogRecord]:
    if since is None and until is None:
        return records
    if axis.basis in ("relative", "order"):
        notes.append("--since/--until ignored: this log has no wall-clock times")
        return records
    kept = []
    for record in records:
        when = axis.seconds(record)
        wall = axis.to_wall(when) if when is not None else None
        if wall is None:
            continue
        if since is not None and wall < since:
            continue
        if until is not None and wall > until:
            continue
        kept.append(record)
    return kept


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(counts: list[int]) -> str:
    if not counts:
        return ""
    top = max(counts) or 1
    return "".join(
        " " if c == 0 else SPARK[min(len(SPARK) - 1, (c * len(SPARK) - 1) // top)] for c in counts
    )


def _lines_per_minute(episodes: list[Episode]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for episode in episodes:
        for minute, count in episode.minutes.items():
            merged[minute] = merged.get(minute, 0) + count
    return merged


def timeline(episodes: list[Episode], limit: int = 120) -> list[tuple[int, int]]:
    """(minute, lines) for every minute from the first to the last line (at most ``limit``)."""
    merged = _lines_per_minute(episodes)
    if not merged:
        return []
    first, last = min(merged), max(merged)
    first = max(first, last - limit + 1)
    return [(minute, merged.get(minute, 0)) for minute in range(first, last + 1)]


@dataclass(frozen=True)
class BinnedTimeline:
    """Lines per bin of ``minutes_per_bin`` minutes, the first bin starting
    at ``first_minute``: the whole span of the episodes in a given width."""

    first_minute: int
    minutes_per_bin: int
    counts: list[int]

    @property
    def end_minute(self) -> int:
        """The minute after the last bin."""
        return self.first_minute + self.minutes_per_bin * len(self.counts)


def binned_timeline(episodes: list[Episode], width: int) -> BinnedTimeline | None:
    """Every minute from the first line to the last, in at most ``width``
    bins of equal length (a whole number of minutes each); None when the
    lines carry no times."""
    merged = _lines_per_minute(episodes)
    if not merged:
        return None
    first, last = min(merged), max(merged)
    per_bin = -(-(last - first + 1) // max(1, width))
    counts = [0] * ((last - first) // per_bin + 1)
    for minute, count in merged.items():
        counts[(minute - first) // per_bin] += count
    return BinnedTimeline(first, per_bin, counts)
