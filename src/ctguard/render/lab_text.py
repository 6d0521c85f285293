"""A lab run as text: the before/after table, the remedy, the checks."""

from __future__ import annotations

from typing import Any

from ctguard.lab.scenario import PhaseResult, ScenarioResult

ROWS: tuple[tuple[str, str], ...] = (
    ("entries (end of phase)", "count"),
    ("nf_conntrack_max", "max"),
    ("drop", "drop"),
    ("early_drop", "early_drop"),
    ("insert_failed", "insert_failed"),
    ("'table full' log lines", "log_lines"),
)


def _cell(phase: PhaseResult, key: str) -> str:
    value = getattr(phase, key)
    if value is None:
        return "n/a"
    if key in ("drop", "early_drop", "insert_failed", "log_lines"):
        return f"+{value:,}"
    return f"{value:,}"


def _extra(value: int | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else value


def render_lab_result(console: Any, result: ScenarioResult) -> None:
    from rich.table import Table

    console.print(f"[bold]{result.title}[/bold] ({result.name}, remedy: {result.remedy})")
    size = f"table max {result.table_max:,}"
    if result.max_lowered:
        size += " (global max lowered for the run, now restored)"
    console.print(f"scale {result.scale:,}, {size}, {result.seconds:.1f} s")
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("gateway")
    table.add_column("before remedy", justify="right")
    table.add_column("after remedy", justify="right")
    for label, key in ROWS:
        table.add_row(label, _cell(result.before, key), _cell(result.after, key))
    table.add_row(
        "innocent probe connected",
        f"{result.before.probes_ok}/{result.before.probes}",
        f"{result.after.probes_ok}/{result.after.probes}",
    )
    for name in dict.fromkeys([*result.before.extra, *result.after.extra]):
        table.add_row(
            name, _extra(result.before.extra.get(name)), _extra(result.after.extra.get(name))
        )
    console.print(table)
    for remedy in result.remedies:
        console.print(f"remedy: [bold]{remedy.command}[/bold]")
    for check in result.checks:
        mark = "[green]ok  [/green]" if check.passed else "[red]FAIL[/red]"
        console.print(f"  {mark} {check.name}: {check.detail}")
    for note in result.notes:
        console.print(f"note: {note}")
    verdict = "every expected behaviour was measured" if result.passed else "a check failed"
    console.print(("[green]" if result.passed else "[red]") + verdict + "[/]")
