"""Checks over one snapshot: the verdict of `ctguard status` and `doctor`.

Every finding has a stable code.  CT0xx: availability; CT1xx: table
pressure and loss; CT2xx: sizing and memory; CT3xx: timeouts; CT6xx: the
neighbour tables that a NAT gateway for many clients fills alongside.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.analyze.table_pressure import TableMetrics, running_era_default
from ctguard.model.command import ctguard_command as cmd
from ctguard.model.findings import Finding, Severity
from ctguard.model.kernel_defaults import humanize_seconds
from ctguard.model.snapshot import Snapshot

MIB = 1024 * 1024


@dataclass(frozen=True)
class Thresholds:
    """Fill fractions at which the verdict becomes warn / crit."""

    warn: float = 0.75
    crit: float = 0.90


def _mib(value: int) -> str:
    return f"{value / MIB:,.1f} MiB"


def top_sources_command(snapshot: Snapshot) -> str:
    """The exact command that ranks what fills the table (and looks for floods)."""
    target = _same_table(snapshot)
    return cmd("analyze", *target, comment="or: " + cmd("top", *target, "--by", "src"))


def advise_command(snapshot: Snapshot, purpose: str) -> str:
    """`ctguard advise` for the same host/namespace, with what to look for."""
    return cmd("advise", *_same_table(snapshot), comment=purpose)


def _same_table(snapshot: Snapshot) -> tuple[str, ...]:
    """The options that name this snapshot's table again: its bundle, or its namespace."""
    if snapshot.root_argument is not None:
        return ("--root", snapshot.root_argument)
    return ("--netns", snapshot.netns.path) if snapshot.netns else ()


def check_availability(snapshot: Snapshot) -> list[Finding]:
    if not snapshot.module_loaded:
        return [
            Finding(
                "CT001",
                Severity.INFO,
                "connection tracking is not loaded",
                "no net.netfilter.nf_conntrack_max sysctl and no nf_conntrack module",
                "without nf_conntrack there is no table to fill; nothing to do unless you "
                "expected stateful firewalling or NAT here",
                "lsmod | grep conntrack   # or: modprobe nf_conntrack, if rules need it",
            )
        ]
    findings = []
    if snapshot.counters is None:
        findings.append(
            Finding(
                "CT002",
                Severity.INFO,
                "drop/early_drop counters unavailable",
                "; ".join(snapshot.notes) or "no statistics source",
                "without the per-CPU counters ctguard cannot tell whether packets were dropped",
                "sudo ctguard status",
            )
        )
    if snapshot.count == 0 and not snapshot.module_users and not _any_activity(snapshot):
        findings.append(
            Finding(
                "CT003",
                Severity.INFO,
                "conntrack is loaded but idle in this namespace",
                "0 entries and no tracking activity in the counters",
                "since ~4.10 the conntrack hooks are registered per netns only when a rule "
                "needs them (ct state, nat, masquerade, ...); other namespaces may still "
                "hold entries",
                "ctguard status --all-netns",
            )
        )
    return findings


def _any_activity(snapshot: Snapshot) -> bool:
    counters = snapshot.counters or {}
    return any(
        counters.get(name, 0) for name in ("found", "insert", "invalid", "drop", "early_drop")
    )


def check_pressure(
    snapshot: Snapshot, metrics: TableMetrics, thresholds: Thresholds
) -> list[Finding]:
    findings: list[Finding] = []
    count, max_entries = snapshot.count, snapshot.max
    where = f" in {snapshot.netns.label}" if snapshot.netns else ""
    if metrics.fill is not None and count is not None and max_entries:
        evidence = f"{count:,} of {max_entries:,} entries ({metrics.fill:.0%}){where}"
        why = (
            "when count reaches nf_conntrack_max a new flow evicts unassured entries from its "
            "own hash bucket or the next 7; if those 8 hold only ASSURED entries, the flow's "
            "packet is dropped before any firewall rule sees it"
        )
        next_cmd = top_sources_command(snapshot)
        if metrics.fill >= thresholds.crit:
            findings.append(
                Finding(
                    "CT101", Severity.CRIT, "conntrack table nearly full", evidence, why, next_cmd
                )
            )
        elif metrics.fill >= thresholds.warn:
            findings.append(
                Finding(
                    "CT102", Severity.WARN, "conntrack table filling up", evidence, why, next_cmd
                )
            )
    counters = snapshot.counters or {}
    drop = counters.get("drop", 0)
    early = counters.get("early_drop", 0)
    failed = counters.get("insert_failed", 0)
    if drop:
        findings.append(
            Finding(
                "CT103",
                Severity.WARN,
                "packets were dropped because the table was full",
                f"drop = {drop:,} since boot (counters wrap at 2^32){where}",
                "each one is a new connection or packet lost silently; the kernel log shows only "
                "some of them (rate-limited), this counter shows all",
                "dmesg | grep -i 'table full'",
            )
        )
    if early:
        findings.append(
            Finding(
                "CT104",
                Severity.WARN,
                "the table has reached its maximum",
                f"early_drop = {early:,} unassured entries evicted to make room{where}",
                "traffic passed (the kernel made room by evicting entries not yet ASSURED), but "
                "the table was at nf_conntrack_max; more pressure means drops",
                "ctguard status --all-netns",
            )
        )
    if failed:
        exhaustion = "alongside drops" if drop else "without any drop"
        findings.append(
            Finding(
                "CT105",
                Severity.WARN,
                "insert_failed: packets lost to tuple clashes",
                f"insert_failed = {failed:,} {exhaustion}{where}",
                "insert_failed without 'table full' is not exhaustion: it is two packets racing to "
                "create the same entry (the classic parallel DNS A/AAAA over UDP + DNAT race) or a "
                "hash chain that grew too long; raising max does not help",
                "conntrack -S   # watch insert_failed and clash_resolve grow",
            )
        )
    if counters.get("chaintoolong", 0):
        findings.append(
            Finding(
                "CT106",
                Severity.WARN,
                "hash chains grew too long",
                f"chaintoolong = {counters['chaintoolong']:,}",
                "the kernel refused inserts because a hash bucket chain was too long: too few "
                "buckets for the number of entries",
                advise_command(snapshot, "buckets sized for max"),
            )
        )
    return findings


def check_sizing(snapshot: Snapshot, metrics: TableMetrics) -> list[Finding]:
    findings: list[Finding] = []
    if metrics.avg_chain_at_max is not None and metrics.avg_chain_at_max > 8:
        findings.append(
            Finding(
                "CT201",
                Severity.WARN,
                "hash table too small for nf_conntrack_max",
                f"average chain at max = {metrics.avg_chain_at_max:.1f} entries "
                f"(max:buckets {metrics.ratio_meaning})",
                "every packet walks its bucket's chain; at max the kernel default keeps it at 2",
                advise_command(snapshot, "buckets consistent with max; then ctguard apply"),
            )
        )
    memory = metrics.memory
    share = memory.share_of_ram_at_max
    if share is not None and memory.table_at_max is not None and share > 0.10:
        severity = Severity.WARN if share > 0.25 else Severity.INFO
        findings.append(
            Finding(
                "CT202",
                severity,
                "a full table would take a large share of RAM",
                f"{_mib(memory.table_at_max + (memory.hash_bytes or 0))} at max = {share:.0%} of "
                f"RAM (~{memory.bytes_per_entry} B per entry, unswappable)",
                "conntrack memory is kernel memory: a flood that fills a huge table competes "
                "with everything else for RAM",
                advise_command(snapshot, "a max that fits a memory budget (--ram-share)"),
            )
        )
    default = running_era_default(snapshot, metrics)
    if default is not None and snapshot.max is not None and snapshot.max < default.max:
        findings.append(
            Finding(
                "CT203",
                Severity.INFO,
                "nf_conntrack_max is below this kernel's default for this RAM",
                f"max {snapshot.max:,} < default {default.max:,} "
                f"({default.era}: {default.formula})",
                "a lowered max fills sooner; often a leftover from an old tuning guide",
                "grep -r conntrack /etc/sysctl.conf /etc/sysctl.d/ /etc/modprobe.d/",
            )
        )
    return findings


def check_timeouts(
    snapshot: Snapshot, metrics: TableMetrics, thresholds: Thresholds
) -> list[Finding]:
    findings = []
    changed = [t for t in snapshot.timeouts if t.state == "changed"]
    if changed:
        listing = ", ".join(
            f"{t.key}={t.seconds}s ({humanize_seconds(t.seconds)}; default {t.default}s)"
            for t in changed
        )
        findings.append(
            Finding(
                "CT301",
                Severity.INFO,
                "timeouts changed from the kernel defaults",
                listing,
                "timeouts are in SECONDS; a value meant as minutes or hours is a common mistake",
            )
        )
    established = snapshot.timeout("tcp_timeout_established")
    if (
        established is not None
        and established.seconds >= 432000
        and metrics.fill is not None
        and metrics.fill >= thresholds.warn
    ):
        findings.append(
            Finding(
                "CT302",
                Severity.INFO,
                "established TCP entries live for 5 days",
                f"{established.sysctl} = {established.seconds} "
                f"({humanize_seconds(established.seconds)})",
                "a peer that vanishes without FIN/RST leaves an ASSURED entry that is never "
                "evicted for 5 days; on a full table these orphans are often the bulk",
                advise_command(snapshot, "how many are idle, and the timeout to set"),
            )
        )
    return findings


def check_neighbours(snapshot: Snapshot, thresholds: Thresholds | None = None) -> list[Finding]:
    """CT601: a neighbour table at or near gc_thresh3, or refusing entries since boot."""
    thresholds = thresholds or Thresholds()
    findings = []
    for table in snapshot.neighbours:
        fill = table.fill
        refused = table.table_fulls or 0
        if not refused and (fill is None or fill < thresholds.warn):
            continue
        evidence = (
            f"{table.name}: {table.entries:,} entries of gc_thresh3 {table.gc_thresh3:,}"
            if (fill is not None and table.entries is not None and table.gc_thresh3 is not None)
            else f"{table.name}"
        )
        if fill is not None:
            evidence += f" ({fill:.0%})"
        if refused:
            evidence += f"; {refused:,} new neighbours refused since boot (table_fulls)"
        findings.append(
            Finding(
                "CT601",
                Severity.WARN,
                f"the {table.family} neighbour table is "
                + ("overflowing" if refused else "close to gc_thresh3"),
                evidence,
                "above gc_thresh3 the kernel refuses new neighbours ('neighbour table "
                "overflow'): hosts on the LAN become unreachable, whatever conntrack says",
                "ctguard advise",
            )
        )
    return findings


def check_snapshot(
    snapshot: Snapshot, metrics: TableMetrics, thresholds: Thresholds | None = None
) -> list[Finding]:
    thresholds = thresholds or Thresholds()
    findings = check_availability(snapshot)
    if snapshot.module_loaded:
        findings += check_pressure(snapshot, metrics, thresholds)
        findings += check_sizing(snapshot, metrics)
        findings += check_timeouts(snapshot, metrics, thresholds)
    findings += check_neighbours(snapshot, thresholds)
    return sorted(findings, key=lambda f: (-f.severity, f.code))
