"""Every namespace's table in a terminal (`status --all-netns`, doctor)."""

from __future__ import annotations

from typing import Any

from ctguard.analyze.status_report import StatusReport
from ctguard.model.findings import Severity


def render_namespaces(console: Any, reports: list[StatusReport], verdict: Severity) -> None:
    from rich.table import Table
    from rich.text import Text

    from ctguard.render.status_text import verdict_text

    max_entries = reports[0].snapshot.max if reports else None
    title = Text(
        f"network namespaces with a conntrack table in use (global max {max_entries:,})  verdict: "
        if max_entries
        else "network namespaces with a conntrack table in use  verdict: "
    )
    title.append_text(verdict_text(verdict))
    console.print(title)
    table = Table(box=None, pad_edge=False)
    for column, justify in (
        ("netns", "left"),
        ("inode", "right"),
        ("entries", "right"),
        ("fill", "right"),
        ("drop", "right"),
        ("early_drop", "right"),
        ("insert_failed", "right"),
        ("verdict", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for report in reports:
        snap = report.snapshot
        counters = snap.counters or {}
        fill = "-" if report.metrics.fill is None else f"{report.metrics.fill:.1%}"
        table.add_row(
            snap.netns.label if snap.netns else "host (this namespace)",
            str(snap.netns.inode) if snap.netns else "",
            f"{snap.count or 0:,}",
            fill,
            f"{counters.get('drop', 0):,}",
            f"{counters.get('early_drop', 0):,}",
            f"{counters.get('insert_failed', 0):,}",
            verdict_text(report.verdict),
        )
    console.print(table)
    # who lives in each namespace: a pod or a container, not an inode
    for report in reports:
        netns = report.snapshot.netns
        if netns is not None and netns.owners:
            console.print(f"  {netns.label}: {netns.owners}")
    console.print(
        Text(
            "each namespace is checked against the global nf_conntrack_max; the "
            "host's own count excludes them",
            style="dim",
        )
    )
