"""The table section of doctor and advise: `analyze` on the live table, within a budget.

Reading the live table costs kernel time per entry (FACTS.md §5: about
2.6 us each), on a host that may already be in trouble.  Up to
``FULL_READ_ENTRIES`` the whole table is read; above, only a sample of its
start (hash order, so not biased towards any source); the note says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.analyze.table_analysis import (
    ANALYZE_SPEC,
    TableProfile,
    build_profile,
    check_table,
)
from ctguard.errors import CtguardError
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.table_source import resolve_table_source, scan_table
from ctguard.model.findings import Finding
from ctguard.model.snapshot import Snapshot

FULL_READ_ENTRIES = 300_000
SAMPLE_ENTRIES = 200_000
BYTES_PER_ENTRY = 320  # a procfs line with acct, IPv4 (IPv6 lines are longer)


@dataclass
class TableSection:
    profile: TableProfile | None = None
    findings: list[Finding] = field(default_factory=list)
    note: str = ""
    sampled: bool = False


def table_section(root: KernelRoot, snapshot: Snapshot, is_root: bool) -> TableSection:
    if root.is_live and not is_root:
        return TableSection(note="table content not read (needs root: the file is mode 0440)")
    count = snapshot.count or 0
    sample_bytes = (
        SAMPLE_ENTRIES * BYTES_PER_ENTRY if root.is_live and count > FULL_READ_ENTRIES else None
    )
    try:
        source = resolve_table_source(None, root, snapshot.netns)
        scan = scan_table(source, ANALYZE_SPEC, sample_bytes=sample_bytes)
    except CtguardError as err:
        return TableSection(note=f"table content not read: {err.what}")
    established = snapshot.timeout("tcp_timeout_established")
    profile = build_profile(source.label, scan, established.seconds if established else None)
    note = ""
    if sample_bytes is not None:
        note = (
            f"table content from a sample of {scan.entries:,} of {count:,} entries (reading "
            "all costs ~2.6 us of kernel time per entry); `ctguard analyze` reads everything"
        )
    # the suggested commands name the same table: this bundle, or this namespace
    if root.root_argument is not None:
        again: tuple[str, ...] = ("--root", root.root_argument)
    else:
        again = ("--netns", snapshot.netns.path) if snapshot.netns else ()
    findings = check_table(profile, source_args=again)
    return TableSection(profile, findings, note, sampled=sample_bytes is not None)
