"""Gather what `ctguard advise` and `ctguard apply` base their numbers on.

The snapshot (cheap), then, each optional and each degrading to a note:
the table's content (root; sampled above a size, as in doctor), every
namespace's count (root, live, host view only), this boot's kernel log,
and the host's TCP keepalive settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ctguard.advise.advice import Advice, AdviceOptions, Evidence, build_advice
from ctguard.advise.neighbours import NeighbourEvidence
from ctguard.advise.sizing import MaxPeriod
from ctguard.advise.timeouts import KeepaliveFloor, keepalive_floor
from ctguard.gather.journal_history import MaxEvent
from ctguard.gather.status import read_snapshot_in
from ctguard.gather.table import TableSection
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Finding
from ctguard.model.netns_ref import NetnsRef


@dataclass(frozen=True)
class EvidenceChoice:
    table: bool = True
    logs: bool = True


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


def namespace_counts(root: KernelRoot, is_root: bool) -> tuple[tuple[str, int], ...]:
    if not (root.is_live and is_root):
        return ()
    from ctguard.analyze.status_checks import Thresholds
    from ctguard.gather.status import collect_namespace_reports

    reports = collect_namespace_reports(root, Thresholds())
    return tuple(
        (r.snapshot.netns.label if r.snapshot.netns else "the host", r.snapshot.count or 0)
        for r in reports
    )


def gc_thresh3_events(state_dir: Path, root: KernelRoot) -> dict[str, list[MaxEvent]]:
    """ctguard's changes of each family's gc_thresh3 (live only: a bundle has no journal)."""
    from ctguard.gather.journal_history import sysctl_events

    if not root.is_live:
        return {}
    return {
        family: sysctl_events(state_dir, frozenset({f"net.{family}.neigh.default.gc_thresh3"}))
        for family in ("ipv4", "ipv6")
    }


def live_boot_time(root: KernelRoot) -> datetime | None:
    if not root.is_live:
        return None
    from ctguard.kernel.kernlog_sources import boot_time_live

    return boot_time_live()


def gather_advice(
    root: KernelRoot,
    netns: NetnsRef | None,
    *,
    state_dir: Path,
    is_root: bool,
    options: AdviceOptions,
    choice: EvidenceChoice,
    table: TableSection | None = None,
) -> Advice:
    """The advice; ``table``: the table section already read (doctor, the report)."""
    from ctguard.gather.journal_history import max_events
    from ctguard.gather.kernel_log import (
        BootLog,
        max_periods,
        neighbour_evidence,
        read_boot_log,
    )

    snapshot = read_snapshot_in(root, netns)
    profile = None
    findings: tuple[Finding, ...] = ()
    table_note = ""
    if choice.table and snapshot.module_loaded:
        from ctguard.gather.table import table_section

        section = table or table_section(root, snapshot, is_root)
        profile, findings, table_note = section.profile, tuple(section.findings), section.note
    elif not choice.table:
        table_note = "table content not read (--no-table): timeout advice has no evidence"
    full_lines, log_note = 0, ""
    periods: tuple[MaxPeriod, ...] = ()
    neighbours: tuple[NeighbourEvidence, ...] = ()
    log: BootLog | None = None
    if choice.logs:
        events = max_events(state_dir) if root.is_live else []
        log, log_note = read_boot_log(root)
        if log is not None:
            full_lines, periods, log_note = max_periods(root, events, snapshot.max, log=log)
    if snapshot.neighbours:
        # the journal's changes count even without the log (table_fulls has no time)
        boot = log.boot if log is not None else live_boot_time(root)
        neighbours = neighbour_evidence(log, gc_thresh3_events(state_dir, root), boot=boot)
    counts = namespace_counts(root, is_root) if netns is None else ()
    evidence = Evidence(
        profile=profile,
        table_findings=findings,
        table_note=table_note,
        namespace_counts=counts,
        table_full_lines=full_lines,
        max_periods=periods,
        log_note=log_note,
        keepalive=read_keepalive(root, netns),
        neighbours=neighbours,
    )
    return build_advice(snapshot, evidence, options)
