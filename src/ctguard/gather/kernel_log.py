"""This boot's kernel log, read once and judged against the drop counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ctguard.analyze.status_report import StatusReport
from ctguard.errors import CtguardError
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding

if TYPE_CHECKING:
    from ctguard.advise.sizing import EarlierMax
    from ctguard.analyze.log_checks import MaxRaise
    from ctguard.analyze.log_episodes import LogReport


def live_netns_names() -> dict[int, str]:
    """inode -> label of the namespaces that exist now (inodes are reused later)."""
    try:
        from ctguard.kernel.netns import list_netns

        return {ref.inode: ref.label for ref in list_netns()}
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
    root: KernelRoot, reports: list[StatusReport], state_dir: Path
) -> LogSection:
    """Episodes of this boot's kernel log, and how they compare to the drop counters."""
    from ctguard.analyze.log_checks import check_log
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return LogSection(note=f"kernel log not checked: {err.what}")
    records = parse_log(source.lines, source.reference)
    report = build_log_report(records, boot_time=source.boot_time, since=source.boot_time)
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


def table_full_lines(
    root: KernelRoot, max_change: tuple[datetime, int] | None = None
) -> tuple[int, EarlierMax | None, str]:
    """This boot's 'table full' lines, and a note when the log was not read.

    With ``max_change`` (see :func:`last_max_change`) made this boot, the
    lines since it, and the max before it with the lines logged meanwhile."""
    from ctguard.advise.sizing import EarlierMax
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return 0, None, f"kernel log not read: {err.what}"
    records = parse_log(source.lines, source.reference)
    report = build_log_report(records, boot_time=source.boot_time, since=source.boot_time)
    boot = source.boot_time
    if max_change is None or boot is None or max_change[0] <= boot:
        return report.table_full_lines, None, ""
    changed_at, before = max_change
    since = build_log_report(records, boot_time=boot, since=changed_at).table_full_lines
    shown = changed_at.isoformat(timespec="seconds")
    return since, EarlierMax(before, shown, report.table_full_lines - since), ""
