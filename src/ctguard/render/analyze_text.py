"""Human output of `ctguard analyze`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ctguard.analyze.table_analysis import TableProfile
from ctguard.model.findings import Finding, Severity
from ctguard.render.status_text import render_findings, verdict_text
from ctguard.render.top_text import percent, render_scan_header


def _column(title: str, items: list[tuple[Any, int]], whole: int) -> list[str]:
    return [title] + [f"{key} {count:,} ({percent(count, whole)})" for key, count in items]


def render_analyze(
    console: Any, profile: TableProfile, findings: list[Finding], verdict: Severity
) -> None:
    render_table_content(console, profile)
    console.print(Text.assemble("verdict: ", verdict_text(verdict)))
    console.print(render_findings(findings))


def render_table_content(console: Any, profile: TableProfile) -> None:
    """What was read, top talkers side by side, totals by proto, state and flags."""
    render_scan_header(console, profile.source, profile.scan)
    n = profile.entries
    if n:
        table = Table(box=None, pad_edge=False, show_header=True)
        columns = [
            _column("src", profile.by_src, n),
            _column("src subnet", profile.by_src24, n),
            _column("dst", profile.by_dst, n),
            _column(
                "dport",
                [
                    (f"{proto}/{port if port is not None else '-'}", c)
                    for (proto, port), c in profile.by_dport
                ],
                n,
            ),
        ]
        for column in columns:
            table.add_column(column[0])
        depth = max(len(c) for c in columns)
        for i in range(1, depth):
            table.add_row(*(c[i] if i < len(c) else "" for c in columns))
        console.print(table)
        for name, counter in (
            ("proto", profile.by_proto),
            ("state", profile.by_state),
            ("flags", profile.by_flags),
        ):
            parts = [f"{key} {percent(count, n)}" for key, count in counter.most_common(8)]
            console.print(Text(f"by {name}: " + ", ".join(parts)))
