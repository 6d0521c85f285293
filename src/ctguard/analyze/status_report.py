"""Everything `ctguard status` says about one snapshot, computed once."""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.analyze.status_checks import Thresholds, check_snapshot
from ctguard.analyze.table_pressure import TableMetrics, compute_metrics
from ctguard.model.findings import Finding, Severity, verdict_of
from ctguard.model.snapshot import Snapshot


@dataclass(frozen=True)
class StatusReport:
    snapshot: Snapshot
    metrics: TableMetrics
    findings: tuple[Finding, ...]
    verdict: Severity


def build_status_report(snapshot: Snapshot, thresholds: Thresholds | None = None) -> StatusReport:
    metrics = compute_metrics(snapshot)
    findings = check_snapshot(snapshot, metrics, thresholds)
    return StatusReport(snapshot, metrics, tuple(findings), verdict_of(findings))
