"""One piece of advice for one table: sizing, timeouts, corrections, and when not to size.

Pure: everything measured is passed in (snapshot, table profile, log and
namespace evidence); ``ctguard advise`` and ``ctguard apply`` build the
same object, so what is advised is exactly what is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.advise.misconceptions import Correction, corrections
from ctguard.advise.neighbours import NeighbourAdvice, NeighbourEvidence, advise_neighbours
from ctguard.advise.sizing import (
    DEFAULT_HEADROOM,
    DEFAULT_RAM_SHARE,
    MaxPeriod,
    SizingAdvice,
    SizingInputs,
    plan_sizing,
)
from ctguard.advise.timeouts import KeepaliveFloor, TimeoutAdvice, advise_timeouts
from ctguard.analyze.table_analysis import TableProfile
from ctguard.analyze.table_pressure import estimate_memory, kernel_major_minor
from ctguard.model.findings import Finding, Severity
from ctguard.model.snapshot import Snapshot

# Findings that mean "one party fills the table": more room only feeds it.
ATTACK_CODES = ("CT501", "CT502", "CT503", "CT504")
PRESSURE_FILL = 0.75


@dataclass(frozen=True)
class Evidence:
    """What was measured beyond the snapshot."""

    profile: TableProfile | None = None
    table_findings: tuple[Finding, ...] = ()
    table_note: str = ""
    namespace_counts: tuple[tuple[str, int], ...] = ()
    table_full_lines: int = 0  # this boot
    max_periods: tuple[MaxPeriod, ...] = ()  # this boot's maxes with their lines
    log_note: str = ""
    keepalive: KeepaliveFloor = field(default_factory=lambda: KeepaliveFloor(7875, "defaults"))
    # per family: this boot's neighbour overflow lines and ctguard's gc_thresh3 changes
    neighbours: tuple[NeighbourEvidence, ...] = ()


@dataclass(frozen=True)
class AdviceOptions:
    ram_share: float = DEFAULT_RAM_SHARE
    headroom: float = DEFAULT_HEADROOM


@dataclass
class Advice:
    snapshot: Snapshot
    sizing: SizingAdvice | None
    timeouts: list[TimeoutAdvice]
    corrections: list[Correction]
    wrong_fix: list[Finding]
    evidence: Evidence
    notes: list[str]
    neighbours: list[NeighbourAdvice] = field(default_factory=list)

    @property
    def global_targets(self) -> dict[str, int]:
        """max / buckets this advice would set (global: init namespace only)."""
        targets: dict[str, int] = {}
        if self.sizing is None:
            return targets
        if self.sizing.change_max:
            targets["max"] = self.sizing.recommended_max
        if self.sizing.change_buckets:
            targets["buckets"] = self.sizing.recommended_buckets
        return targets

    @property
    def neighbour_targets(self) -> dict[str, int]:
        """gc_thresh sysctl -> value this advice would set (global: init namespace only)."""
        targets: dict[str, int] = {}
        for item in self.neighbours:
            targets.update(item.targets)
        return targets

    @property
    def timeout_targets(self) -> dict[str, int]:
        return {t.key: t.recommended for t in self.timeouts if t.change and t.recommended}


def under_pressure(snapshot: Snapshot, evidence: Evidence) -> bool:
    counters = snapshot.counters or {}
    fill = (snapshot.count or 0) / snapshot.max if snapshot.max else 0
    return bool(
        fill >= PRESSURE_FILL
        or counters.get("drop")
        or counters.get("early_drop")
        or evidence.table_full_lines
    )


def build_advice(
    snapshot: Snapshot, evidence: Evidence, options: AdviceOptions | None = None
) -> Advice:
    options = options or AdviceOptions()
    notes: list[str] = []
    memory = estimate_memory(snapshot)
    kernel = kernel_major_minor(snapshot.kernel_release)
    sizing = None
    if snapshot.max is None or snapshot.count is None:
        notes.append("nf_conntrack_max/count not readable: no sizing advice")
    else:
        counters = snapshot.counters or {}
        sizing = plan_sizing(
            SizingInputs(
                count=snapshot.count,
                max=snapshot.max,
                buckets=snapshot.buckets,
                mem_total=snapshot.mem_total,
                bytes_per_entry=memory.bytes_per_entry,
                entry_size_basis=memory.basis,
                kernel=kernel,
                legacy=snapshot.legacy,
                namespace_counts=evidence.namespace_counts,
                drops=counters.get("drop"),
                table_full_lines=evidence.table_full_lines,
                max_periods=evidence.max_periods,
                ram_share=options.ram_share,
                headroom=options.headroom,
            )
        )
    pressure = under_pressure(snapshot, evidence)
    wrong_fix = [
        finding
        for finding in evidence.table_findings
        if finding.code in ATTACK_CODES and finding.severity >= Severity.WARN
    ]
    for note in (evidence.table_note, evidence.log_note):
        if note:
            notes.append(note)
    neighbours = []
    if snapshot.netns is not None:
        notes.append(
            "the neighbour tables and their gc_thresh1/2/3 are global and not visible from "
            "a network namespace: size them for the whole host without --netns"
        )
    else:
        by_family = {item.family: item for item in evidence.neighbours}
        for table in snapshot.neighbours:
            item = advise_neighbours(table, by_family.get(table.family), options.headroom)
            if item is None:
                notes.append(f"{table.name} entries not readable: no gc_thresh advice for it")
            else:
                neighbours.append(item)
    return Advice(
        snapshot=snapshot,
        sizing=sizing,
        timeouts=advise_timeouts(snapshot, evidence.profile, pressure, evidence.keepalive),
        corrections=corrections(snapshot.mem_total, memory.bytes_per_entry, kernel),
        wrong_fix=wrong_fix,
        evidence=evidence,
        notes=notes,
        neighbours=neighbours,
    )
