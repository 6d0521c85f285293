"""The JSON of every namespace's table (`status --all-netns`, doctor)."""

from __future__ import annotations

from typing import Any

from ctguard.analyze.status_report import StatusReport
from ctguard.model.container import containers_of
from ctguard.model.findings import Severity
from ctguard.model.netns_ref import NetnsRef

MAX_PROCESSES = 20  # per namespace in JSON; process_count says how many there are


def owners_json(netns: NetnsRef | None) -> dict[str, Any]:
    """The processes in a namespace and the containers their cgroups name."""
    processes = netns.processes if netns else ()
    return {
        "process_count": len(processes),
        "processes": [p.to_dict() for p in processes[:MAX_PROCESSES]],
        "containers": [c.to_dict() for c in containers_of(processes)],
    }


def namespaces_json(reports: list[StatusReport], verdict: Severity) -> dict[str, Any]:
    first = reports[0].snapshot if reports else None
    rows = []
    for report in reports:
        snap = report.snapshot
        counters = snap.counters or {}
        rows.append(
            {
                "inode": snap.netns.inode if snap.netns else None,
                "names": list(snap.netns.names) if snap.netns else ["host"],
                "path": snap.netns.path if snap.netns else None,
                **owners_json(snap.netns),
                "count": snap.count,
                "fill": None if report.metrics.fill is None else round(report.metrics.fill, 6),
                "drop": counters.get("drop"),
                "early_drop": counters.get("early_drop"),
                "insert_failed": counters.get("insert_failed"),
                "verdict": report.verdict.label,
                "findings": [f.code for f in report.findings],
            }
        )
    return {
        "max": first.max if first else None,
        "buckets": first.buckets if first else None,
        "total_count": sum(r.snapshot.count or 0 for r in reports),
        "namespaces": rows,
        "verdict": verdict.label,
    }
