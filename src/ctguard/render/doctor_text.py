"""`ctguard doctor` in a terminal: every section, then the diagnosis."""

from __future__ import annotations

from typing import Any

from ctguard.gather.diagnosis import Diagnosis
from ctguard.model.findings import Severity

# episodes of the kernel log doctor lists (the latest); `ctguard logs` lists all
DOCTOR_EPISODES = 10


def render_doctor(console: Any, diagnosis: Diagnosis) -> None:
    from rich.rule import Rule
    from rich.text import Text

    from ctguard.render.status_text import render_findings, render_status, verdict_text

    report, others, log = diagnosis.report, diagnosis.others, diagnosis.log
    table = diagnosis.table.profile
    console.print(Rule("ctguard doctor"))
    render_status(console, report, with_findings=False)
    if others:
        from ctguard.render.namespaces_text import render_namespaces

        console.print(Text("\nother network namespaces", style="bold underline"))
        render_namespaces(console, others, max((r.verdict for r in others), default=Severity.OK))
    if log.report is not None:
        from ctguard.render.logs_text import render_logs

        console.print(Text("\nkernel log (this boot)", style="bold underline"))
        render_logs(console, log.report, log.source_label, log.names, last_episodes=DOCTOR_EPISODES)
    if table is not None:
        from ctguard.render.analyze_text import render_table_content

        console.print(Text("\ntable content", style="bold underline"))
        render_table_content(console, table)
    for note in diagnosis.notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print(Rule("diagnosis"))
    title = Text("verdict: ")
    title.append_text(verdict_text(diagnosis.verdict))
    console.print(title)
    console.print(render_findings(diagnosis.findings))
