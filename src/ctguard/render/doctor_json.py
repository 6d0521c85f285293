"""`ctguard doctor --json`: every section, keys as documented in docs/commands.md."""

from __future__ import annotations

from typing import Any

from ctguard.gather.diagnosis import Diagnosis
from ctguard.model.findings import verdict_of


def doctor_json(diagnosis: Diagnosis) -> dict[str, Any]:
    from ctguard.render.analyze_json import analyze_json
    from ctguard.render.logs_json import logs_json
    from ctguard.render.namespaces_json import namespaces_json
    from ctguard.render.status_json import status_json

    log, table, verdict = diagnosis.log, diagnosis.table, diagnosis.verdict
    return {
        "verdict": verdict.label,
        "findings": [f.to_json() for f in diagnosis.findings],
        "status": status_json(diagnosis.report),
        "namespaces": namespaces_json([diagnosis.report, *diagnosis.others], verdict)["namespaces"],
        "kernel_log": None
        if log.report is None
        else logs_json(log.report, log.source_label, log.names),
        "table": None
        if table.profile is None
        else {
            "sampled": table.sampled,
            **analyze_json(table.profile, table.findings, verdict_of(table.findings)),
        },
        "notes": diagnosis.notes,
        "missing_tools": [
            {"command": tool.command, "package": tool.package} for tool in diagnosis.missing_tools
        ],
    }
