"""A plan as text: exactly what would change, with the files' full content."""

from __future__ import annotations

from typing import Any

from ctguard.effects.executor import RestoreReport
from ctguard.plan.actions import LoadNftables, Plan, WriteFile


def render_plan(console: Any, plan: Plan, *, applied: bool = False) -> None:
    from rich.text import Text

    console.print(Text(f"plan: {plan.title}", style="bold"))
    for warning in plan.warnings:
        console.print(Text(f"  warning: {warning}", style="yellow"))
    if plan.empty:
        console.print("  nothing to change")
    for number, action in enumerate(plan.actions, 1):
        why = f"   # {action.why}" if action.why else ""
        console.print(Text(f"  {number}. {action.describe()}{why}"))
        if isinstance(action, WriteFile | LoadNftables):
            text = action.content if isinstance(action, WriteFile) else action.script
            for line in text.expandtabs(4).splitlines():
                console.print(Text(f"       | {line}", style="dim"))
    for item in plan.unchanged:
        console.print(Text(f"  unchanged: {item}", style="dim"))
    for note in plan.notes:
        console.print(Text(f"  note: {note}"))
    if plan.empty:
        return
    if applied:
        console.print(Text("applied and verified", style="bold green"))
    else:
        console.print(
            Text("dry run: nothing was changed; add --yes to apply this plan", style="bold")
        )


def render_restore(console: Any, report: RestoreReport, verb: str) -> None:
    from rich.text import Text

    change = report.change
    console.print(Text(f"{verb} change {change.id} ({change.title})", style="bold"))
    for item in report.restored:
        console.print(f"  restored {item}")
    if not report.restored and not report.errors:
        console.print("  every value was already at its original")
    for item in report.drifted:
        console.print(Text(f"  note: {item}", style="yellow"))
    for item in report.errors:
        console.print(Text(f"  FAILED: {item}", style="bold red"))


def restore_json(report: RestoreReport) -> dict[str, Any]:
    return {
        "id": report.change.id,
        "title": report.change.title,
        "status": report.change.status,
        "restored": report.restored,
        "drifted": report.drifted,
        "errors": report.errors,
    }
