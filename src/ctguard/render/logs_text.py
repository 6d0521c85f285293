"""Human output of `ctguard logs`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ctguard.analyze.log_episodes import (
    RATELIMIT_WINDOW,
    LogReport,
    binned_timeline,
    episode_namespace,
    sparkline,
)
from ctguard.model.kernel_defaults import humanize_seconds


def render_logs(
    console: Any,
    report: LogReport,
    source: str,
    names: dict[int, str],
    *,
    last_episodes: int | None = None,
) -> None:
    """The episodes of ``report``; with ``last_episodes``, only that many of the
    latest, and a line saying how many earlier ones ``ctguard logs`` lists."""
    axis = report.axis
    console.print(Text(f"kernel log: {source} ({report.records:,} lines read)", style="bold"))
    if not report.episodes:
        console.print(Text("no 'table full, dropping packet' lines", style="green"))
    else:
        summary = Text(
            f"{report.table_full_lines:,} 'table full' lines in {len(report.episodes)} episode(s)"
        )
        if report.suppressed:
            summary.append(f", + up to {report.suppressed:,} suppressed by rate limiting")
        console.print(summary, style="yellow")
        table = Table(box=None, pad_edge=False)
        for column in ("start", "end", "duration", "lines", "suppressed≤", "namespace"):
            table.add_column(
                column, justify="right" if column in ("lines", "suppressed≤") else "left"
            )
        shown = report.episodes
        if last_episodes is not None and len(shown) > last_episodes:
            shown = shown[len(shown) - last_episodes :]
            console.print(
                Text(
                    f"the last {last_episodes} episodes; {len(report.episodes) - last_episodes:,} "
                    "earlier ones: ctguard logs",
                    style="dim",
                )
            )
        for episode in shown:
            duration = episode.duration
            table.add_row(
                axis.show(episode.start) or f"line {episode.first_line}",
                axis.show(episode.end) or f"line {episode.last_line}",
                "-"
                if duration is None
                else humanize_seconds(int(duration))
                if duration >= 1
                else "<1s",
                f"{episode.lines:,}",
                f"{episode.suppressed:,}",
                episode_namespace(episode, names, live=bool(names)),
            )
        console.print(table)
        _render_timeline(console, report)
        console.print(
            Text(
                "each line is one dropped packet; 'suppressed' counts every net_ratelimit user, "
                "so it is an upper bound; the drop counter (ctguard status) is exact",
                style="dim",
            )
        )
        if any(episode.netns for episode in report.episodes) and names:
            console.print(
                Text(
                    "netns inode numbers are reused once a namespace is gone: a name "
                    "match is reliable only for recent episodes",
                    style="dim",
                )
            )
    if report.lab_lines:
        console.print(
            Text(
                f"{report.lab_lines:,} 'table full' lines of namespaces that `ctguard lab` "
                "made for its rehearsals (marked in the kernel log): left out of the counts above",
                style="dim",
            )
        )
    if report.suppressed_unattributed:
        console.print(
            Text(
                f"{report.suppressed_unattributed:,} callbacks suppressed by the network rate "
                "limit not attributed to conntrack (no 'table full' line next to them "
                f"within {RATELIMIT_WINDOW:.0f} s)",
                style="dim",
            )
        )
    if report.suppressed_other_limiters:
        console.print(
            Text(
                f"{report.suppressed_other_limiters:,} callbacks suppressed by other rate "
                "limiters (not conntrack's)",
                style="dim",
            )
        )
    for episode in report.neighbour_episodes:
        axis = report.axis
        suppressed = f", + up to {episode.suppressed:,} suppressed" if episode.suppressed else ""
        console.print(
            Text(
                f"neighbour table overflow ({episode.table or 'table not named'}): "
                f"{episode.lines:,} lines{suppressed}, {axis.show(episode.start) or '?'} to "
                f"{axis.show(episode.end) or '?'}: new neighbours refused above gc_thresh3 "
                "(ctguard explain gc_thresh3)",
                style="yellow",
            )
        )
    if report.expectation_full_lines:
        console.print(
            Text(
                f"{report.expectation_full_lines} 'expectation table full' lines "
                "(helper expectations, nf_conntrack_expect_max)",
                style="yellow",
            )
        )
    if report.vmalloc_lines:
        console.print(
            Text(
                f"{report.vmalloc_lines} 'falling back to vmalloc' lines (hash resize)", style="dim"
            )
        )
    for note in report.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _render_timeline(console: Any, report: LogReport) -> None:
    """Lines over time from the first episode to the last, one character per
    bin, in one line of the console: a bin holds as many minutes as it takes."""
    bins = binned_timeline(report.episodes, max(10, console.width - 1))
    if bins is None or len(bins.counts) < 2:
        return
    axis = report.axis
    unit = "minute" if bins.minutes_per_bin == 1 else f"{bins.minutes_per_bin} minutes"
    console.print(
        Text(
            f"lines per {unit}, {axis.show(bins.first_minute * 60.0)} .. "
            f"{axis.show(bins.end_minute * 60.0)} (peak {max(bins.counts):,}):"
        )
    )
    console.print(Text(sparkline(bins.counts), style="yellow"), no_wrap=True, overflow="crop")
