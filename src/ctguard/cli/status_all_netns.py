"""`ctguard status --all-netns`: every namespace's share of the (global) max."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.analyze.status_checks import Thresholds
from ctguard.analyze.status_report import StatusReport
from ctguard.cli.common import make_console, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import AccessDenied, SourceMissing, UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Severity


def collect_namespace_reports(root: KernelRoot, thresholds: Thresholds) -> list[StatusReport]:
    """One report per network namespace whose table is in use (the host's always)."""
    from ctguard.cli.status import read_report
    from ctguard.kernel.netns import current_netns_inode, list_netns

    own = current_netns_inode()
    reports = []
    for ref in list_netns(root.proc):
        try:
            report = read_report(root, None if ref.inode == own else ref, thresholds)
        except SourceMissing:
            continue  # the namespace vanished while we looked: normal
        if ref.inode == own or (report.snapshot.count or 0) > 0 or _lost(report):
            reports.append(report)
    return reports


def _lost(report: StatusReport) -> bool:
    counters = report.snapshot.counters or {}
    return bool(counters.get("drop") or counters.get("early_drop"))


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


def run_all_netns(
    root: KernelRoot, thresholds: Thresholds, args: argparse.Namespace, env: Environment
) -> ExitStatus:
    from ctguard.cli.status import VERDICT_EXIT

    if not root.is_live:
        raise UsageError("--all-netns reads live namespaces and cannot be combined with --root")
    if not env.is_root:
        raise AccessDenied(
            "--all-netns must enter every network namespace, which needs root",
            hint="run as root: sudo ctguard status --all-netns",
        )
    reports = collect_namespace_reports(root, thresholds)
    verdict = max((r.verdict for r in reports), default=Severity.OK)
    if args.json:
        write_json(env, namespaces_json(reports, verdict))
    else:
        render_namespaces(make_console(env), reports, verdict)
    return VERDICT_EXIT[verdict]


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
    console.print(
        Text(
            "each namespace is checked against the global nf_conntrack_max; the "
            "host's own count excludes them",
            style="dim",
        )
    )
