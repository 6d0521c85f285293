"""Human output of `ctguard top`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from ctguard.analyze.table_top import TopResult
from ctguard.parse.table_scan import ScanResult


def percent(count: int, total: int) -> str:
    return f"{100.0 * count / total:.1f}%" if total else "-"


def render_scan_header(console: Any, source: str, scan: ScanResult) -> None:
    """First lines shared by top and analyze: what was read, what was skipped."""
    console.print(Text(f"table: {source}: {scan.entries:,} entries", style="bold"))
    if scan.declared and sum(scan.declared) != scan.entries:
        console.print(
            Text(
                f"note: conntrack said {sum(scan.declared):,} entries; "
                f"{scan.entries:,} were read (the table changed, or lines were lost)",
                style="yellow",
            )
        )
    if scan.skipped.count:
        reasons = ", ".join(f"{n:,} {why}" for why, n in scan.skipped.reasons.most_common())
        console.print(
            Text(
                f"skipped {scan.skipped.count:,} line(s) that are not entries: {reasons}",
                style="yellow",
            )
        )
        for line, reason, text in scan.skipped.examples:
            console.print(Text(f"  line {line}: {reason}: {text[:80]}", style="dim"))


def render_top(console: Any, result: TopResult) -> None:
    render_scan_header(console, result.source, result.scan)
    if result.filters:
        console.print(
            Text(
                f"{result.matched:,} entries match the filters "
                f"({percent(result.matched, result.entries)} of the table)"
            )
        )
    if result.approximate:
        console.print(
            Text(
                f"approximate: too many distinct keys to hold; counts may be low by up to "
                f"{result.max_error:,}",
                style="yellow",
            )
        )
    if not result.groups:
        console.print("no entries")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    for dim in result.dims:
        table.add_column(dim.name, justify="right" if dim.is_numeric else "left")
    table.add_column("entries", justify="right")
    table.add_column("share", justify="right")
    for rank, (values, count) in enumerate(result.groups, start=1):
        cells = ["-" if v is None else str(v) for v in values]
        table.add_row(str(rank), *cells, f"{count:,}", percent(count, result.entries))
    console.print(table)
    shown = len(result.groups)
    if result.group_count > shown:
        console.print(
            Text(f"{shown} of {result.group_count:,} groups shown (-n 0 for all)", style="dim")
        )
    for name, items in result.totals.items():
        parts = [f"{key} {percent(count, result.matched)}" for key, count in items[:8]]
        more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
        console.print(Text(f"by {name}: " + ", ".join(parts) + more))
