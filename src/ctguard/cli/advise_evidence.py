"""Gather what `ctguard advise` and `ctguard apply` base their numbers on.

The snapshot (cheap), then, each optional and each degrading to a note:
the table's content (root; sampled above a size, as in doctor), every
namespace's count (root, live, host view only), this boot's kernel log,
and the host's TCP keepalive settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.advise.advice import Advice, AdviceOptions, Evidence, build_advice
from ctguard.advise.timeouts import KeepaliveFloor, keepalive_floor
from ctguard.cli.env import Environment
from ctguard.errors import CtguardError
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot


@dataclass(frozen=True)
class EvidenceChoice:
    table: bool = True
    logs: bool = True


def read_snapshot_in(root: KernelRoot, netns: NetnsRef | None) -> Snapshot:
    from ctguard.kernel.snapshot import read_snapshot

    with entered_netns(netns):
        return read_snapshot(root, netns)


def read_keepalive(root: KernelRoot, netns: NetnsRef | None) -> KeepaliveFloor:
    def value(name: str) -> int | None:
        with entered_netns(netns):
            text = root.read_proc(f"sys/net/ipv4/{name}")
        try:
            return int(text.split()[0]) if text else None
        except ValueError:
            return None

    return keepalive_floor(
        value("tcp_keepalive_time"), value("tcp_keepalive_probes"), value("tcp_keepalive_intvl")
    )


def namespace_counts(root: KernelRoot, env: Environment) -> tuple[tuple[str, int], ...]:
    if not (root.is_live and env.is_root):
        return ()
    from ctguard.analyze.status_checks import Thresholds
    from ctguard.cli.status_all_netns import collect_namespace_reports

    reports = collect_namespace_reports(root, Thresholds())
    return tuple(
        (r.snapshot.netns.label if r.snapshot.netns else "the host", r.snapshot.count or 0)
        for r in reports
    )


def table_full_lines(root: KernelRoot) -> tuple[int, str]:
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return 0, f"kernel log not read: {err.what}"
    records = parse_log(source.lines, source.reference)
    report = build_log_report(records, boot_time=source.boot_time, since=source.boot_time)
    return report.table_full_lines, ""


def gather_advice(
    root: KernelRoot,
    netns: NetnsRef | None,
    env: Environment,
    options: AdviceOptions,
    choice: EvidenceChoice,
) -> Advice:
    snapshot = read_snapshot_in(root, netns)
    profile = None
    findings: tuple[Finding, ...] = ()
    table_note = ""
    if choice.table and snapshot.module_loaded:
        from ctguard.cli.doctor_table import table_section

        section = table_section(root, snapshot, env.is_root)
        profile, findings, table_note = section.profile, tuple(section.findings), section.note
    elif not choice.table:
        table_note = "table content not read (--no-table): timeout advice has no evidence"
    full_lines, log_note = table_full_lines(root) if choice.logs else (0, "")
    counts = namespace_counts(root, env) if netns is None else ()
    evidence = Evidence(
        profile=profile,
        table_findings=findings,
        table_note=table_note,
        namespace_counts=counts,
        table_full_lines=full_lines,
        log_note=log_note,
        keepalive=read_keepalive(root, netns),
    )
    return build_advice(snapshot, evidence, options)
