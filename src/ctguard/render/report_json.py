"""The data of `ctguard report`: what the HTML shows, as stable keys (pinned by tests)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from ctguard.gather.guard_history import GuardHistory
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


def _at(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


def start_guard_commands(data: ReportData) -> list[str]:
    """How to start the guard where the report was taken from."""
    return [
        ctguard_command("guard", "--dry-run", sudo=True, comment="watch first: decides, logs"),
        "sudo systemctl enable --now ctguard-guard   # then for good (docs/guard.md)",
    ]


def guard_json(data: ReportData) -> dict[str, Any]:
    """The guard's history: fill and drops per bin, decisions, bans (bounded lists)."""
    g: GuardHistory = data.guard
    if data.source == "this host":
        absent = f"the guard did not run on this host (no database at {g.where})"
    else:
        absent = "the guard's history is not in this bundle: " + (
            g.why
            or "the guard did not run there, or the ctguard that captured it did not copy "
            "its database"
        )
    summary = {
        "absent": absent,
        "unreadable": f"the guard's database could not be read: {g.why}",
        "empty": "the guard recorded nothing in this window",
        "recorded": "",
    }[g.state]
    return {
        "state": g.state,
        "database": g.where,
        "summary": summary,
        "schema": g.schema,
        "start": _at(g.window[0]) if g.window else None,
        "end": _at(g.window[1]) if g.window else None,
        "bin_seconds": g.bin_seconds,
        "runs": [{"start": _at(a), "end": _at(b + g.bin_seconds)} for a, b in g.runs],
        "namespaces": [
            {
                "netns": n.netns,
                "peak_fill": None if n.peak_fill is None else round(n.peak_fill, 4),
                "drops": n.drops,
                "bins": [
                    None
                    if b is None
                    else {
                        "start": _at(b.start),
                        "peak": b.peak,
                        "max": b.max,
                        "fill": round(b.peak / b.max, 4) if b.peak is not None and b.max else None,
                        "drops": b.drops,
                        "early_drops": b.early_drops,
                        "insert_failed": b.insert_failed,
                    }
                    for b in n.bins
                ],
            }
            for n in g.netns
        ],
        "namespaces_left_out": g.netns_left_out,
        "bin_starts": [_at(t) for t in g.bin_starts],
        "decisions_per_bin": {action: list(counts) for action, counts in g.decision_bins.items()},
        "decision_totals": [
            {**t, "first": _at(t["first"]), "last": _at(t["last"])} for t in g.decision_totals
        ],
        "decisions": [{**d, "at": _at(d["at"]), "until": _at(d["until"])} for d in g.decisions],
        "decisions_total": g.decisions_total,
        "bans_at": _at(g.bans_at),
        "bans": [{**b.to_dict(), "added": _at(b.added), "expires": _at(b.expires)} for b in g.bans],
        "bans_total": g.bans_total,
        "start_commands": start_guard_commands(data) if g.state == "absent" else [],
        "notes": g.notes,
    }


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
        "guard": guard_json(data),
        "next_commands": next_commands(data),
        "notes": data.notes,
    }
