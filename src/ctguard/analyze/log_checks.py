"""Findings from the kernel log, checked against the drop counters.

CT4xx: the log says the table overflowed (CT403), or the log and the
counters disagree (CT401, CT402) — which itself tells where to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ctguard.analyze.log_episodes import LogReport, episode_namespace
from ctguard.model.findings import Finding, Severity

RECENT_SECONDS = 300.0
# namespaces named in CT403's evidence; a host whose tests or containers come
# and go can have dropped in hundreds of them since boot
NAMESPACES_SHOWN = 5


@dataclass(frozen=True)
class MaxRaise:
    """ctguard raised nf_conntrack_max from ``before`` to ``after`` at ``when``."""

    when: datetime
    before: int
    after: int


def check_log(
    report: LogReport,
    drops_total: int | None,
    names: dict[int, str],
    now: datetime,
    raised: MaxRaise | None = None,
) -> list[Finding]:
    """CT401-CT403.  With ``raised``, a log whose last 'table full' line came
    before the raise is history (INFO): the fix is in and nothing dropped since."""
    findings: list[Finding] = []
    axis = report.axis
    if report.episodes:
        by_namespace: dict[tuple[bool, str], int] = {}  # (gone, label) -> lines
        for episode in report.episodes:
            gone = episode.netns is not None and episode.netns not in names
            key = (gone, episode_namespace(episode, names, live=True))
            by_namespace[key] = by_namespace.get(key, 0) + episode.lines
        last = max((e.end for e in report.episodes if e.end is not None), default=None)
        last_wall = axis.to_wall(last) if last is not None else None
        recent = last_wall is not None and (now - last_wall).total_seconds() <= RECENT_SECONDS
        # A namespace that is gone cannot drop any more: only living ones make it urgent.
        alive = any(e.netns is None or e.netns in names for e in report.episodes)
        recent = recent and alive
        where = namespaces_by_lines(by_namespace)
        severity = Severity.CRIT if recent else Severity.WARN
        title = "the kernel log shows 'table full, dropping packet'" + (
            " in the last 5 minutes" if recent else ""
        )
        if raised is not None and last_wall is not None and last_wall < raised.when:
            severity = Severity.INFO
            title += (
                f", all before ctguard raised nf_conntrack_max from {raised.before:,} to "
                f"{raised.after:,} at {raised.when.isoformat(timespec='seconds')}"
            )
        findings.append(
            Finding(
                "CT403",
                severity,
                title,
                f"{report.table_full_lines:,} lines"
                + (
                    f" (+ up to {report.suppressed:,} suppressed by rate limiting)"
                    if report.suppressed
                    else ""
                )
                + f" in {len(report.episodes)} episode(s), last at "
                f"{axis.show(last) or 'unknown time'}; {where}",
                "every line is a packet dropped before any firewall rule saw it; the log is "
                "rate-limited (10 lines per 5 s), so it undercounts",
                "ctguard logs",
            )
        )
    if drops_total and not report.table_full_lines:
        findings.append(
            Finding(
                "CT401",
                Severity.INFO,
                "drops counted but no 'table full' line in the kernel log",
                f"drop counters total {drops_total:,}; the log read has none",
                "the ring buffer was overwritten since, or the messages went elsewhere: look in "
                "the journal or syslog files",
                "ctguard logs --journal",
            )
        )
    if drops_total is not None and report.table_full_lines > drops_total:
        findings.append(
            Finding(
                "CT402",
                Severity.INFO,
                "more 'table full' lines than the drop counters show",
                f"{report.table_full_lines:,} log lines vs drop counters totalling {drops_total:,}",
                "the namespace that dropped has gone (its counters went with it), or the "
                "32-bit counters wrapped",
                "ctguard logs",
            )
        )
    return findings


def namespaces_by_lines(by_namespace: dict[tuple[bool, str], int]) -> str:
    """'netns 77 (web): 12, host: 3, and 40 more namespaces (gone): 310 lines'.

    Living namespaces first (only they can drop again), then by lines; past
    NAMESPACES_SHOWN, the rest are summed up (``ctguard logs`` lists them).
    """
    ranked = sorted(by_namespace.items(), key=lambda item: (item[0][0], -item[1]))
    shown = [f"{label}: {lines:,}" for (_, label), lines in ranked[:NAMESPACES_SHOWN]]
    rest = ranked[NAMESPACES_SHOWN:]
    if rest:
        gone = " (gone)" if all(is_gone for (is_gone, _), _ in rest) else ""
        shown.append(
            f"and {len(rest):,} more namespace(s){gone}: {sum(n for _, n in rest):,} lines"
        )
    return ", ".join(shown)
