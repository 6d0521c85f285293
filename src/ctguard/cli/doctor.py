"""`ctguard doctor`: the first command to run; every capability adds a section.

Sections today: status of this namespace, the other network namespaces
(live, as root), the kernel log of this boot checked against the drop
counters, then the combined findings with next commands.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ctguard.analyze.status_report import StatusReport
from ctguard.analyze.table_analysis import TableProfile
from ctguard.cli.common import (
    add_read_options,
    make_console,
    open_root,
    resolve_netns_option,
    write_json,
)
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.status import VERDICT_EXIT, add_threshold_options, read_report, thresholds_from
from ctguard.errors import CtguardError
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding, Severity, verdict_of

if TYPE_CHECKING:
    from ctguard.analyze.log_checks import MaxRaise
    from ctguard.analyze.log_episodes import LogReport

# episodes of the kernel log doctor lists (the latest); `ctguard logs` lists all
DOCTOR_EPISODES = 10


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="diagnose this host: what is wrong, why, and the exact next command",
        description="Run every diagnosis ctguard has and print what is wrong, why, and the "
        "next command. Exit status like `status`: 0 ok, 1 warn, 2 crit, 3 could not tell.",
    )
    add_read_options(parser)
    add_threshold_options(parser)


def other_namespace_findings(own: StatusReport, others: list[StatusReport]) -> list[Finding]:
    """Lift the other namespaces' problems into the doctor's list, labelled."""
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
        assert report.snapshot.netns is not None
        for finding in report.findings:
            if finding.severity >= Severity.WARN:
                findings.append(
                    replace(
                        finding,
                        title=f"{finding.title} [{report.snapshot.netns.label}]",
                        next_command=f"ctguard status --netns {report.snapshot.netns.path}",
                    )
                )
    return findings


def kernel_log_section(
    root: KernelRoot, reports: list[StatusReport], notes: list[str], env: Environment
) -> tuple[LogReport | None, str, dict[int, str], list[Finding]]:
    """Episodes of this boot's kernel log, and how they compare to the drop counters."""
    from ctguard.analyze.log_checks import check_log
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.cli.logs import live_netns_names
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        notes.append(f"kernel log not checked: {err.what}")
        return None, "", {}, []
    records = parse_log(source.lines, source.reference)
    report = build_log_report(records, boot_time=source.boot_time, since=source.boot_time)
    names = live_netns_names() if root.is_live else {}
    counters = [r.snapshot.counters for r in reports if r.snapshot.counters is not None]
    drops = sum(c.get("drop", 0) for c in counters) if counters else None
    raised = max_raise(env, reports[0].snapshot.max) if root.is_live else None
    findings = check_log(report, drops, names, source.reference, raised)
    return report, source.label, names, findings


def max_raise(env: Environment, current_max: int | None) -> MaxRaise | None:
    """The last change ctguard made to nf_conntrack_max, when it raised it to today's value."""
    from ctguard.analyze.log_checks import MaxRaise
    from ctguard.cli.advise_evidence import last_max_change

    change = last_max_change(env)
    if change is None or current_max is None or change[1] >= current_max:
        return None
    return MaxRaise(change[0], change[1], current_max)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    thresholds = thresholds_from(args)
    netns = resolve_netns_option(root, args.netns)
    report = read_report(root, netns, thresholds)
    others: list[StatusReport] = []
    skipped_netns = ""
    if root.is_live and netns is None:
        if env.is_root:
            from ctguard.cli.status_all_netns import collect_namespace_reports

            others = [r for r in collect_namespace_reports(root, thresholds) if r.snapshot.netns]
        else:
            skipped_netns = "other network namespaces not checked (needs root)"
    notes = [skipped_netns] if skipped_netns else []
    reports = [report, *others]
    log_report, log_source, names, log_findings = kernel_log_section(root, reports, notes, env)
    from ctguard.cli.doctor_table import table_section

    table = table_section(root, report.snapshot, env.is_root)
    if table.note:
        notes.append(table.note)
    findings = sorted(
        [
            *report.findings,
            *other_namespace_findings(report, others),
            *log_findings,
            *table.findings,
        ],
        key=lambda f: (-f.severity, f.code),
    )
    verdict = verdict_of(findings)
    if args.json:
        from ctguard.cli.status_all_netns import namespaces_json
        from ctguard.render.analyze_json import analyze_json
        from ctguard.render.logs_json import logs_json
        from ctguard.render.status_json import status_json

        write_json(
            env,
            {
                "verdict": verdict.label,
                "findings": [f.to_json() for f in findings],
                "status": status_json(report),
                "namespaces": namespaces_json([report, *others], verdict)["namespaces"],
                "kernel_log": None
                if log_report is None
                else logs_json(log_report, log_source, names),
                "table": None
                if table.profile is None
                else {
                    "sampled": table.sampled,
                    **analyze_json(table.profile, table.findings, verdict_of(table.findings)),
                },
                "notes": notes,
            },
        )
    else:
        console = make_console(env)
        render_doctor(
            console,
            report,
            others,
            findings,
            verdict,
            notes,
            log_report,
            log_source,
            names,
            table.profile,
        )
    return VERDICT_EXIT[verdict]


def render_doctor(
    console: Any,
    report: StatusReport,
    others: list[StatusReport],
    findings: list[Finding],
    verdict: Severity,
    notes: list[str],
    log_report: LogReport | None,
    log_source: str,
    names: dict[int, str],
    table: TableProfile | None = None,
) -> None:
    from rich.rule import Rule
    from rich.text import Text

    from ctguard.render.status_text import render_findings, render_status, verdict_text

    console.print(Rule("ctguard doctor"))
    render_status(console, report, with_findings=False)
    if others:
        from ctguard.cli.status_all_netns import render_namespaces

        console.print(Text("\nother network namespaces", style="bold underline"))
        render_namespaces(console, others, max((r.verdict for r in others), default=Severity.OK))
    if log_report is not None:
        from ctguard.render.logs_text import render_logs

        console.print(Text("\nkernel log (this boot)", style="bold underline"))
        render_logs(console, log_report, log_source, names, last_episodes=DOCTOR_EPISODES)
    if table is not None:
        from ctguard.render.analyze_text import render_table_content

        console.print(Text("\ntable content", style="bold underline"))
        render_table_content(console, table)
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))
    console.print(Rule("diagnosis"))
    title = Text("verdict: ")
    title.append_text(verdict_text(verdict))
    console.print(title)
    console.print(render_findings(findings))
