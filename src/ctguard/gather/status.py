"""Snapshots and status reports of one namespace, or of every namespace in use."""

from __future__ import annotations

from ctguard.analyze.status_checks import Thresholds
from ctguard.analyze.status_report import StatusReport, build_status_report
from ctguard.errors import SourceMissing
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot


def read_snapshot_in(root: KernelRoot, netns: NetnsRef | None) -> Snapshot:
    """The snapshot of ``netns`` (None: the namespace this process runs in)."""
    from ctguard.kernel.snapshot import read_snapshot

    with entered_netns(netns):
        return read_snapshot(root, netns)


def read_report(root: KernelRoot, netns: NetnsRef | None, thresholds: Thresholds) -> StatusReport:
    return build_status_report(read_snapshot_in(root, netns), thresholds)


def collect_namespace_reports(root: KernelRoot, thresholds: Thresholds) -> list[StatusReport]:
    """One report per network namespace whose table is in use (the host's always, first)."""
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
