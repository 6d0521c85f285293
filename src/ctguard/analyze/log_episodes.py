"""Turn kernel-log records into "table full" episodes.

An episode is a run of table-full lines of one namespace (netns inum, or
OpenVZ VPS id, or none) without a silence longer than ``gap`` seconds.

Rate limiting (FACTS §4, docs/commands.md "Counting right"): conntrack
prints "table full" through net_ratelimit() (10 lines per 5 s).  The calls
it turned away are summed up, by the first call let through after the
interval, in a line ``net_ratelimit: N callbacks suppressed`` (older
kernels: ``__ratelimit:``, ``printk: N messages suppressed.``, ``NET: N
messages suppressed.``).  So N counts calls made since the limiter's
previous messages, printed just before its next one, and it counts every
user of that limiter, not only conntrack.  One rule: a summary belongs to
conntrack when the nearest message of the same limiter before it, or the
nearest after it, within ``RATELIMIT_WINDOW`` seconds, is a "table full"
line (the one before wins when both are); its N then goes to that line's
episode, as an upper bound.  Each logged line is one dropped packet, so an
episode dropped at least ``lines`` and at most ``lines + suppressed``
packets as far as the log can tell; the drop counter is the truth.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ctguard.model.kernlog import LogKind, LogRecord
from ctguard.parse.kernlog import NET_RATELIMIT, lab_marker

DEFAULT_GAP = 60.0
# Seconds between a summary line and the limiter's message it belongs to:
# net_ratelimit's interval is 5 s (net.core.message_cost), and the summary is
# printed by the first call after the interval that began with the previous
# burst, so under continuing drops it comes at most one interval after that
# burst's last line and right before the next one; twice the interval leaves
# room for a burst spread over its interval and for syslog's whole seconds.
RATELIMIT_WINDOW = 10.0
# The names summary lines give the network limiter in each era; "printk" was
# the network limiter's only while net_ratelimit() went through
# __printk_ratelimit() (2.6.x): a log that also has "NET:" lines is older,
# and its "printk:" lines belong to printk_ratelimit() alone.
NET_LIMITER_NAMES = frozenset({"net_ratelimit", "NET", "__ratelimit", "printk"})


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
    # a neighbour-table overflow episode: the table named (arp_cache,
    # ndisc_cache, or "" when the line names none); None for conntrack's
    table: str | None = None

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
    # summaries of other rate limiters ("kauditd_printk_skb: N callbacks
    # suppressed"): never conntrack's
    suppressed_other_limiters: int = 0
    # "neighbour table overflow" episodes, per table (their own, never conntrack's)
    neighbour_episodes: list[Episode] = field(default_factory=list)


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
    expect = vmalloc = lab_lines = 0
    last_relevant: LogRecord | None = None
    last_episode: Episode | None = None
    printk_is_net = not any(r.kind is LogKind.RATELIMIT and r.limiter == "NET" for r in records)
    neighbour_episodes: list[Episode] = []
    open_neighbour: dict[str, Episode] = {}
    summaries: list[_Summary] = []
    waiting: list[_Summary] = []  # summaries whose next network-limiter message is not seen yet
    last_member: _Member | None = None

    for record in records:
        when = axis.seconds(record)
        member: _Member | None = None
        if record.kind is LogKind.TABLE_FULL:
            key = (record.netns, record.vps)
            episode = open_by_key.get(key)
            if episode is None or _gap_exceeded(episode, when, gap):
                episode = Episode(
                    record.netns, record.vps, when, when, record.line_no, record.line_no
                )
                episodes.append(episode)
                open_by_key[key] = episode
            episode.add(record, when)
            last_episode = episode
            member = _Member(when, episode=episode)
        elif record.kind is LogKind.LAB_TABLE_FULL:
            lab_lines += 1
            member = _Member(when, lab=True)
        elif record.kind is LogKind.NEIGH_OVERFLOW:
            table = record.table or ""
            episode = open_neighbour.get(table)
            if episode is None or _gap_exceeded(episode, when, gap):
                episode = Episode(None, None, when, when, record.line_no, record.line_no)
                episode.table = table
                neighbour_episodes.append(episode)
                open_neighbour[table] = episode
            episode.add(record, when)
            last_episode = episode
            member = _Member(when, episode=episode)
        elif record.kind is LogKind.RATELIMIT:
            summary = _Summary(record.count, when, is_net_limiter(record.limiter, printk_is_net))
            summary.before = last_member
            summaries.append(summary)
            waiting.append(summary)
            continue  # a repeat after it repeats the message before it
        elif record.kind is LogKind.REPEATED:
            repeated = last_relevant.kind if last_relevant is not None else None
            if repeated in (LogKind.TABLE_FULL, LogKind.NEIGH_OVERFLOW) and last_episode:
                last_episode.add(record, when, repeat=record.count)
            elif repeated is LogKind.LAB_TABLE_FULL:
                lab_lines += record.count
        else:
            if record.kind is LogKind.EXPECT_FULL:
                expect += 1
            elif record.kind is LogKind.VMALLOC:
                vmalloc += 1
            if record.limiter == NET_RATELIMIT:
                member = _Member(when)
        if member is not None:
            for summary in waiting:
                summary.after = member
            waiting.clear()
            last_member = member
        last_relevant = record

    suppressed_unattributed = suppressed_other = 0
    for summary in summaries:
        if not summary.net:
            suppressed_other += summary.count
            continue
        owner = summary.owner()
        if owner is None:
            suppressed_unattributed += summary.count
        elif owner.episode is not None:
            owner.episode.suppressed += summary.count
        # else: a lab rehearsal's, left out like its lines

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
        suppressed_other_limiters=suppressed_other,
        neighbour_episodes=neighbour_episodes,
    )


@dataclass
class _Member:
    """A message of the network rate limiter: a table-full or neighbour
    overflow line (with its episode), a lab rehearsal's table-full line, or
    another user's line."""

    when: float | None
    episode: Episode | None = None
    lab: bool = False

    @property
    def table_full(self) -> bool:
        return self.episode is not None or self.lab


@dataclass
class _Summary:
    """An "N callbacks suppressed" line and the network limiter's messages
    nearest to it on either side."""

    count: int
    when: float | None
    net: bool  # printed by the network limiter (or one that may be it)
    before: _Member | None = None
    after: _Member | None = None

    def owner(self) -> _Member | None:
        """The table-full line it belongs to (the rule in the module docstring);
        a neighbour overflow line takes it the same way, for its own episode."""
        for member in (self.before, self.after):
            if member is not None and member.table_full and self._near(member):
                return member
        return None

    def _near(self, member: _Member) -> bool:
        if self.when is None or member.when is None:
            return True  # no times: the nearest in line order
        return abs(self.when - member.when) <= RATELIMIT_WINDOW


def is_net_limiter(name: str | None, printk_is_net: bool = True) -> bool:
    """Whether a summary may be the network limiter's (NET_LIMITER_NAMES)."""
    if name == "printk":
        return printk_is_net
    return name in NET_LIMITER_NAMES


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
