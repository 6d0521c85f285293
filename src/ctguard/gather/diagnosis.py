"""Everything doctor looks at, gathered once: the faces that diagnose (doctor,
the report) render it; they do not gather it again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ctguard.analyze.namespace_findings import other_namespace_findings
from ctguard.analyze.status_checks import Thresholds
from ctguard.analyze.status_report import StatusReport
from ctguard.gather.kernel_log import LogSection, kernel_log_section
from ctguard.gather.status import collect_namespace_reports, read_report
from ctguard.gather.table import TableSection, table_section
from ctguard.gather.tools import OptionalTool, missing_tools, missing_tools_note
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding, Severity, verdict_of
from ctguard.model.netns_ref import NetnsRef


@dataclass
class Diagnosis:
    report: StatusReport  # the namespace asked about
    others: list[StatusReport]  # the other namespaces in use (live, root, host view)
    log: LogSection
    table: TableSection
    findings: list[Finding] = field(default_factory=list)  # all of them, worst first
    notes: list[str] = field(default_factory=list)  # what was not read, and why
    missing_tools: list[OptionalTool] = field(default_factory=list)  # live host only

    @property
    def verdict(self) -> Severity:
        return verdict_of(self.findings)


def gather_diagnosis(
    root: KernelRoot,
    netns: NetnsRef | None,
    thresholds: Thresholds,
    *,
    is_root: bool,
    state_dir: Path,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Diagnosis:
    """Everything doctor reads; ``since``/``until`` bound the kernel log (default: this boot)."""
    report = read_report(root, netns, thresholds)
    others: list[StatusReport] = []
    notes: list[str] = []
    if root.is_live and netns is None:
        if is_root:
            others = [r for r in collect_namespace_reports(root, thresholds) if r.snapshot.netns]
        else:
            notes.append("other network namespaces not checked (needs root)")
    log = kernel_log_section(root, [report, *others], state_dir, since=since, until=until)
    if log.note:
        notes.append(log.note)
    table = table_section(root, report.snapshot, is_root)
    if table.note:
        notes.append(table.note)
    missing = missing_tools() if root.is_live else []
    if missing:
        notes.append(missing_tools_note(missing))
    findings = sorted(
        [*report.findings, *other_namespace_findings(others), *log.findings, *table.findings],
        key=lambda f: (-f.severity, f.code),
    )
    return Diagnosis(report, others, log, table, findings, notes, missing)
