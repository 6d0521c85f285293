"""This boot's kernel log, read once and judged against the drop counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ctguard.analyze.status_report import StatusReport
from ctguard.errors import CtguardError
from ctguard.gather.journal_history import MaxEvent
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding

if TYPE_CHECKING:
    from ctguard.advise.neighbours import NeighbourEvidence
    from ctguard.advise.sizing import MaxPeriod
    from ctguard.analyze.log_checks import MaxRaise
    from ctguard.analyze.log_episodes import LogReport
    from ctguard.model.kernlog import LogRecord


def live_netns_names() -> dict[int, str]:
    """inode -> label of the namespaces that exist now (inodes are reused later),
    with the processes and containers in each other than ctguard's own."""
    try:
        from ctguard.kernel.netns import current_netns_inode, list_netns

        own = current_netns_inode()
        return {
            ref.inode: f"{ref.label}: {ref.owners}"
            if ref.owners and ref.inode != own
            else ref.label
            for ref in list_netns()
        }
    except OSError:
        return {}


@dataclass
class LogSection:
    """The kernel log as doctor shows it; ``report`` is None when it was not read."""

    report: LogReport | None = None
    source_label: str = ""
    names: dict[int, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    note: str = ""


def kernel_log_section(
    root: KernelRoot,
    reports: list[StatusReport],
    state_dir: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> LogSection:
    """Episodes of this boot's kernel log (or of ``since``..``until``), and how
    they compare to the drop counters."""
    from ctguard.analyze.log_checks import check_log
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return LogSection(note=f"kernel log not checked: {err.what}")
    records = parse_log(source.lines, source.reference)
    report = build_log_report(
        records, boot_time=source.boot_time, since=since or source.boot_time, until=until
    )
    names = live_netns_names() if root.is_live else {}
    counters = [r.snapshot.counters for r in reports if r.snapshot.counters is not None]
    drops = sum(c.get("drop", 0) for c in counters) if counters else None
    raised = max_raise(state_dir, reports[0].snapshot.max) if root.is_live else None
    findings = check_log(report, drops, names, source.reference, raised)
    return LogSection(report, source.label, names, findings)


def max_raise(state_dir: Path, current_max: int | None) -> MaxRaise | None:
    """The last change ctguard made to nf_conntrack_max, when it raised it to today's value."""
    from ctguard.analyze.log_checks import MaxRaise
    from ctguard.gather.journal_history import last_max_change

    change = last_max_change(state_dir)
    if change is None or current_max is None or change[1] >= current_max:
        return None
    return MaxRaise(change[0], change[1], current_max)


@dataclass(frozen=True)
class BootLog:
    """This boot's kernel log, parsed once for everything advise judges by it."""

    records: list[LogRecord]
    boot: datetime | None
    report: LogReport  # since boot


def read_boot_log(root: KernelRoot) -> tuple[BootLog | None, str]:
    """(the log, "") or (None, why it was not read)."""
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return None, f"kernel log not read: {err.what}"
    records = parse_log(source.lines, source.reference)
    boot = source.boot_time
    return BootLog(records, boot, build_log_report(records, boot_time=boot, since=boot)), ""


def max_periods(
    root: KernelRoot,
    events: list[MaxEvent],
    current_max: int | None,
    *,
    log: BootLog | None = None,
) -> tuple[int, tuple[MaxPeriod, ...], str]:
    """This boot's 'table full' lines, each counted at the max in force when it
    was logged, and a note when the log was not read.

    ``events`` (see :func:`gather.journal_history.max_events`) split this
    boot into periods; without events of this boot, or without wall-clock
    times to place the lines, there is one period: today's max.  ``log``:
    the log already read (else it is read here).
    """
    from ctguard.advise.sizing import MaxPeriod
    from ctguard.analyze.log_episodes import build_log_report

    if log is None:
        log, note = read_boot_log(root)
        if log is None:
            return 0, (), note
    records, boot, report = log.records, log.boot, log.report
    total = report.table_full_lines
    this_boot = [e for e in events if boot is not None and e.when > boot.timestamp()]
    if not this_boot or current_max is None or report.axis.basis in ("relative", "order"):
        return total, (), ""

    def lines_since(when: float) -> int:
        since = datetime.fromtimestamp(when, tz=UTC)
        return build_log_report(records, boot_time=boot, since=since).table_full_lines

    # period i runs from the event before it (or boot) to event i; the last to now
    starts = [lines_since(e.when) for e in this_boot]
    periods = [
        MaxPeriod(
            this_boot[0].before,
            total - starts[0],
            _shown(this_boot[0].when),
            this_boot[0].after,
        )
    ]
    for i, event in enumerate(this_boot):
        is_last = i + 1 == len(this_boot)
        lines = starts[i] - (0 if is_last else starts[i + 1])
        if is_last:
            # today's max, whoever set it last
            periods.append(MaxPeriod(current_max, lines))
        else:
            following = this_boot[i + 1]
            periods.append(MaxPeriod(event.after, lines, _shown(following.when), following.after))
    return total, tuple(periods), ""


def _shown(when: float) -> str:
    return datetime.fromtimestamp(when, tz=UTC).isoformat(timespec="seconds")


# the tables each family's overflow lines name; 2.6's "Neighbour table
# overflow." (no table) came from the IPv4 route cache
NEIGHBOUR_TABLES = {"ipv4": ("arp_cache", ""), "ipv6": ("ndisc_cache",)}


def neighbour_evidence(
    log: BootLog | None, events: dict[str, list[MaxEvent]], *, boot: datetime | None = None
) -> tuple[NeighbourEvidence, ...]:
    """Per family: this boot's overflow lines, those since ctguard last changed
    its gc_thresh3 (``events``: per family, from the journal), and the lowest
    gc_thresh3 in force this boot.

    Lines that cannot be placed in time (no wall clock) count as logged
    before the change: at the lowest limit, so an apply -> rollback cycle
    never reads them as a full table at the raised value.
    """
    from ctguard.advise.neighbours import NeighbourEvidence
    from ctguard.analyze.log_episodes import build_log_report

    result = []
    boot = log.boot if log is not None else boot  # ``boot``: when the log was not read
    for family, tables in NEIGHBOUR_TABLES.items():
        this_boot = [e for e in events.get(family, []) if boot and e.when > boot.timestamp()]
        lowest = min((v for e in this_boot for v in (e.before, e.after)), default=None)
        if log is None:
            result.append(NeighbourEvidence(family, lowest_thresh3=lowest))
            continue

        def lines(report: LogReport, tables: tuple[str, ...] = tables) -> int:
            return sum(e.lines for e in report.neighbour_episodes if e.table in tables)

        total = lines(log.report)
        if not this_boot:
            since = total
        elif log.report.axis.basis in ("relative", "order"):
            since = 0
        else:
            last = datetime.fromtimestamp(this_boot[-1].when, tz=UTC)
            since = lines(build_log_report(log.records, boot_time=boot, since=last))
        result.append(NeighbourEvidence(family, total, since, lowest))
    return tuple(result)
