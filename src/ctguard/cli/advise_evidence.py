"""Gather what `ctguard advise` and `ctguard apply` base their numbers on.

The snapshot (cheap), then, each optional and each degrading to a note:
the table's content (root; sampled above a size, as in doctor), every
namespace's count (root, live, host view only), this boot's kernel log,
and the host's TCP keepalive settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ctguard.advise.advice import Advice, AdviceOptions, Evidence, build_advice
from ctguard.advise.sizing import EarlierMax
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


def last_max_change(env: Environment) -> tuple[datetime, int] | None:
    """When ctguard last changed nf_conntrack_max, and its value before, from
    the change journal (an apply sets it, a rollback puts it back)."""
    from ctguard.effects.journal import Journal, state_dir_from
    from ctguard.plan.actions import SetSysctl
    from ctguard.plan.conntrack_settings import MAX_SYSCTLS

    try:
        changes = Journal(state_dir_from(env.environ)).all()
    except CtguardError:
        return None
    latest: tuple[float, int] | None = None
    for change in changes:
        for step in change.steps:
            action = step.action
            if not (isinstance(action, SetSysctl) and action.name in MAX_SYSCTLS):
                continue
            if action.netns is not None or step.original is None:
                continue
            for when, status in change.history:
                before = {"applied": step.original, "rolled-back": action.value}.get(status)
                if before is None or (latest is not None and when <= latest[0]):
                    continue
                try:
                    latest = (when, int(before.split()[0]))
                except (ValueError, IndexError):
                    continue
    if latest is None:
        return None
    return datetime.fromtimestamp(latest[0], tz=UTC), latest[1]


def table_full_lines(
    root: KernelRoot, max_change: tuple[datetime, int] | None = None
) -> tuple[int, EarlierMax | None, str]:
    """This boot's 'table full' lines, and a note when the log was not read.

    With ``max_change`` (see :func:`last_max_change`) made this boot, the
    lines since it, and the max before it with the lines logged meanwhile."""
    from ctguard.analyze.log_episodes import build_log_report
    from ctguard.kernel.kernlog_sources import bundle_source, live_source
    from ctguard.parse.kernlog import parse_log

    try:
        source = live_source() if root.is_live else bundle_source(root)
    except CtguardError as err:
        return 0, None, f"kernel log not read: {err.what}"
    records = parse_log(source.lines, source.reference)
    report = build_log_report(records, boot_time=source.boot_time, since=source.boot_time)
    boot = source.boot_time
    if max_change is None or boot is None or max_change[0] <= boot:
        return report.table_full_lines, None, ""
    changed_at, before = max_change
    since = build_log_report(records, boot_time=boot, since=changed_at).table_full_lines
    shown = changed_at.isoformat(timespec="seconds")
    return since, EarlierMax(before, shown, report.table_full_lines - since), ""


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
    full_lines, earlier_max, log_note = 0, None, ""
    if choice.logs:
        max_change = last_max_change(env) if root.is_live else None
        full_lines, earlier_max, log_note = table_full_lines(root, max_change)
    counts = namespace_counts(root, env) if netns is None else ()
    evidence = Evidence(
        profile=profile,
        table_findings=findings,
        table_note=table_note,
        namespace_counts=counts,
        table_full_lines=full_lines,
        earlier_max=earlier_max,
        log_note=log_note,
        keepalive=read_keepalive(root, netns),
    )
    return build_advice(snapshot, evidence, options)
