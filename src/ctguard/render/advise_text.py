"""`ctguard advise` as text: numbers, the reasoning behind each, and the plan."""

from __future__ import annotations

from typing import Any

from ctguard.advise.advice import Advice
from ctguard.advise.sizing import mib
from ctguard.model.kernel_defaults import HASH_BYTES_PER_BUCKET, humanize_seconds


def _seconds(value: int | None) -> str:
    return "-" if value is None else f"{value} ({humanize_seconds(value)})"


def render_advice(console: Any, advice: Advice) -> None:
    from rich.table import Table
    from rich.text import Text

    snap = advice.snapshot
    where = snap.netns.label if snap.netns else snap.source
    if snap.netns and snap.netns.owners:
        where += f" ({snap.netns.owners})"
    console.print(Text(f"ctguard advise - {where}", style="bold"))
    sizing = advice.sizing
    if sizing is not None:
        console.print(Text("\nsizing (global: every network namespace shares max)", style="bold"))
        table = Table(show_edge=False, pad_edge=False, box=None)
        for column in ("", "now", "recommended"):
            table.add_column(column, justify="right" if column else "left")
        per_entry = sizing.memory_at_max // max(sizing.recommended_max, 1)
        table.add_row("nf_conntrack_max", f"{sizing.current_max:,}", f"{sizing.recommended_max:,}")
        table.add_row(
            "buckets",
            "-" if sizing.current_buckets is None else f"{sizing.current_buckets:,}",
            f"{sizing.recommended_buckets:,}",
        )
        current_hash = (sizing.current_buckets or 0) * HASH_BYTES_PER_BUCKET
        table.add_row(
            "memory at max (entries + hash)",
            mib(sizing.current_max * per_entry + current_hash),
            mib(sizing.memory_at_max + sizing.hash_bytes),
        )
        console.print(table)
        for number, line in enumerate(sizing.why, 1):
            console.print(f"  {number}. {line}")
        for warning in sizing.warnings:
            console.print(Text(f"  warning: {warning}", style="yellow"))
    if advice.neighbours:
        render_neighbours(console, advice)
    if advice.wrong_fix:
        console.print(Text("\nraising max is the wrong fix here", style="bold red"))
        for finding in advice.wrong_fix:
            console.print(f"  {finding.code} {finding.title}: {finding.evidence}")
            if finding.next_command:
                console.print(Text(f"    next: {finding.next_command}", style="cyan"))
        console.print(
            "  more room only lets one party hold more entries: block or NOTRACK it first"
        )
    if advice.timeouts:
        console.print(Text("\ntimeouts (seconds; per network namespace)", style="bold"))
        table = Table(show_edge=False, pad_edge=False, box=None)
        for column in ("timeout", "now", "default", "recommended", "why"):
            table.add_column(column, overflow="fold")
        for item in advice.timeouts:
            recommended = _seconds(item.recommended) if item.change else "keep"
            why = item.reason + (f". {item.effect}" if item.effect else "")
            table.add_row(
                item.key, _seconds(item.current), _seconds(item.default), recommended, why
            )
        console.print(table)
    if advice.corrections:
        console.print(Text("\ncommon advice, corrected", style="bold"))
        for correction in advice.corrections:
            console.print(Text(f'  "{correction.claim}"', style="italic"))
            console.print(f"    {correction.truth}")
    for note in advice.notes:
        console.print(Text(f"note: {note}", style="dim"))


def render_neighbours(console: Any, advice: Advice) -> None:
    from rich.table import Table
    from rich.text import Text

    from ctguard.advise.neighbours import KEYS, mib

    console.print(
        Text("\nneighbour tables (global: every network namespace shares them)", style="bold")
    )
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("", "entries", *KEYS, "recommended"):
        table.add_column(column, justify="left" if not column else "right")
    for item in advice.neighbours:
        recommended = (
            "/".join(f"{value:,}" for value in item.recommended) if item.change else "fine"
        )
        table.add_row(
            f"{item.prefix} ({item.table})",
            f"{item.entries:,}",
            *(f"{value:,}" for value in item.current),
            recommended,
        )
    console.print(table)
    for item in advice.neighbours:
        if not item.change:  # the peak and why it fits; the rest is in --json
            console.print(f"  {item.family}: {item.why[0]}; {item.why[2]}")
            continue
        cost = mib(item.memory_at_thresh3)
        console.print(f"  {item.family}: raise; at gc_thresh3 the table may take {cost}")
        for number, line in enumerate(item.why, 1):
            console.print(f"    {number}. {line}")
        for warning in item.warnings:
            console.print(Text(f"    warning: {warning}", style="yellow"))
