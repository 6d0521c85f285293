"""The data of `ctguard report`: what the HTML shows, as stable keys (pinned by tests)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ctguard.gather.report import ReportData
from ctguard.model.command import ctguard_command

TIMELINE_BINS = 120  # at most this many bars in the timeline, whatever the span


def next_commands(data: ReportData) -> list[str]:
    """The findings' next commands, worst first, each once; then apply the advice."""
    seen: list[str] = []
    for finding in data.diagnosis.findings:
        command = finding.next_command
        if command and command not in seen:
            seen.append(command)
    if data.advice.global_targets or data.advice.timeout_targets:
        netns = data.diagnosis.report.snapshot.netns
        target = ("--netns", netns.path) if netns else ()
        root = () if data.source == "this host" else ("--root", data.source)
        seen.append(
            ctguard_command("apply", *target, *root, comment="the sizing and timeouts below")
        )
    return seen


def timeline_json(data: ReportData) -> list[dict[str, Any]]:
    """'table full' lines per bin of whole minutes, first line to last."""
    from ctguard.analyze.log_episodes import binned_timeline

    log = data.diagnosis.log.report
    if log is None:
        return []
    binned = binned_timeline(log.episodes, TIMELINE_BINS)
    if binned is None:
        return []
    return [
        {
            "start": log.axis.show((binned.first_minute + i * binned.minutes_per_bin) * 60.0),
            "minutes": binned.minutes_per_bin,
            "lines": count,
        }
        for i, count in enumerate(binned.counts)
    ]


def report_json(data: ReportData) -> dict[str, Any]:
    from ctguard.render.advise_json import advise_json
    from ctguard.render.doctor_json import doctor_json

    audit = data.audit
    bundle = data.bundle
    return {
        "host": data.host,
        "kernel": data.kernel,
        "generated_at": data.generated_at.isoformat(timespec="seconds"),
        "source": data.source,
        "since": data.since.isoformat(timespec="seconds") if data.since else None,
        "until": data.until.isoformat(timespec="seconds") if data.until else None,
        "verdict": data.diagnosis.verdict.label,
        "doctor": doctor_json(data.diagnosis),
        "timeline": timeline_json(data),
        "advise": advise_json(data.advice, None),
        "audit": {
            "read": audit.read,
            "rules": [asdict(rule) for rule in audit.rules],
            "tracking_needed": bool(audit.needed),
            "unload_plan": audit.unload_plan,
            "built_in": audit.built_in,
            "notes": audit.notes,
        },
        "bundle": None
        if bundle is None
        else {
            "captured_at": bundle.captured_at,
            "hostname": bundle.hostname,
            "files": list(bundle.files),
            "missing": [{"file": name, "why": why} for name, why in bundle.missing],
        },
        "next_commands": next_commands(data),
        "notes": data.notes,
    }
