"""The other namespaces' problems, lifted into the host's list (doctor)."""

from __future__ import annotations

from dataclasses import replace

from ctguard.analyze.status_report import StatusReport
from ctguard.model.command import ctguard_command
from ctguard.model.findings import Finding, Severity


def other_namespace_findings(others: list[StatusReport]) -> list[Finding]:
    """CT004 (how many entries the other namespaces hold), then each of their
    warnings and worse, labelled with the namespace and its own next command."""
    findings: list[Finding] = []
    if others:
        total = sum(r.snapshot.count or 0 for r in others)
        names = ", ".join(
            f"{r.snapshot.netns.label} ({r.snapshot.count or 0:,})"
            for r in others
            if r.snapshot.netns
        )
        findings.append(
            Finding(
                "CT004",
                Severity.INFO,
                f"{len(others)} other network namespace(s) hold {total:,} entries",
                names,
                "each namespace has its own count checked against the global max; the host's "
                "count excludes containers",
                "ctguard status --all-netns",
            )
        )
    for report in others:
        netns = report.snapshot.netns
        if netns is None:
            continue
        for finding in report.findings:
            if finding.severity >= Severity.WARN:
                findings.append(
                    replace(
                        finding,
                        title=f"{finding.title} [{netns.label}]",
                        next_command=ctguard_command("status", "--netns", netns.path),
                    )
                )
    return findings
