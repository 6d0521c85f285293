"""How big the neighbour tables' thresholds should be (net.ipv4|ipv6.neigh.default.gc_thresh1/2/3).

Pure.  The kernel's rules (net/core/neighbour.c, Linux >= 5.0):

- gc_thresh3 is the hard limit: a new neighbour that would take the table
  past it is refused ("arp_cache: neighbor table overflow!", the table_fulls
  counter) unless a forced garbage collection frees room first;
- gc_thresh2 is the soft limit: above it, an allocation more than 5 s after
  the last forced collection evicts every unreferenced entry not confirmed
  in the last 5 s, down to gc_thresh2, so a host whose working set sits
  above it keeps throwing away live neighbours and resolving them again;
- below gc_thresh1 the periodic collector leaves the table alone.

The tables are global (one per family, shared by every network namespace)
and entries are allocated only when a neighbour is resolved, so a higher
limit costs memory only when neighbours exist: at most gc_thresh3 entries
of about ``BYTES_PER_ENTRY``.  The kernel does not check the order of the
three values; ctguard always writes gc_thresh1 <= gc_thresh2 <= gc_thresh3.

Demand: the peak seen (the entries now, every namespace's together; when
the table overflowed, the gc_thresh3 in force then) times the headroom is
the soft limit wanted, rounded up to a power of two; the hard limit is
twice that and the floor a quarter (the kernel's own 128/512/1024 keeps
the same 1:4:8).  Nothing is ever lowered, nothing goes below the kernel's
defaults, and a host whose demand fits under gc_thresh2 is told "fine".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.model.neighbours import NeighbourTable

KEYS = ("gc_thresh1", "gc_thresh2", "gc_thresh3")
KERNEL_DEFAULTS = (128, 512, 1024)  # net/ipv4/arp.c, net/ipv6/ndisc.c
# the thresholds are C ints in struct neigh_table
INT_MAX = 2**31 - 1
# struct neighbour is 328 B on x86-64 Linux 6.18 (BTF); with the address and
# the device's private data it is allocated from kmalloc-512, plus up to
# 16 B of hash (8 B bucket heads; the hash doubles when entries pass its size)
BYTES_PER_ENTRY = 512 + 16


@dataclass(frozen=True)
class NeighbourEvidence:
    """What the kernel log and ctguard's journal say about one family's table this boot.

    ``overflow_lines``: this boot's "neighbor table overflow" lines for the
    table; ``lines_since_change``: those logged after ctguard last changed
    its gc_thresh3 (all of them when ctguard did not change it this boot);
    ``lowest_thresh3``: the lowest gc_thresh3 in force this boot as the
    journal knows it (None: only today's value is known).
    """

    family: str
    overflow_lines: int = 0
    lines_since_change: int = 0
    lowest_thresh3: int | None = None


@dataclass
class NeighbourAdvice:
    family: str
    table: str
    entries: int
    peak: int
    peak_basis: str
    overflowed: bool
    current: tuple[int, int, int]
    recommended: tuple[int, int, int]
    memory_at_thresh3: int  # bytes, at the recommended gc_thresh3
    why: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"net.{self.family}.neigh.default"

    @property
    def change(self) -> bool:
        return self.recommended != self.current

    @property
    def targets(self) -> dict[str, int]:
        """sysctl name -> value, for the thresholds that change."""
        return {
            f"{self.prefix}.{key}": new
            for key, old, new in zip(KEYS, self.current, self.recommended, strict=True)
            if new != old
        }


def power_of_two_at_least(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


def mib(value: float) -> str:
    return f"{value / (1024 * 1024):,.1f} MiB"


def ordered(values: tuple[int, int, int]) -> bool:
    return values[0] <= values[1] <= values[2]


def _current(table: NeighbourTable) -> tuple[int, int, int]:
    read = (table.gc_thresh1, table.gc_thresh2, table.gc_thresh3)
    return tuple(  # type: ignore[return-value]
        default if value is None else value
        for value, default in zip(read, KERNEL_DEFAULTS, strict=True)
    )


def advise_neighbours(
    table: NeighbourTable, evidence: NeighbourEvidence | None, headroom: float
) -> NeighbourAdvice | None:
    """The thresholds for one table; None when its entry count is not readable."""
    if table.entries is None:
        return None
    evidence = evidence or NeighbourEvidence(table.family)
    current = _current(table)
    why: list[str] = []
    warnings: list[str] = []
    peak, basis = table.entries, f"{table.entries:,} entries in {table.name} now (all namespaces)"
    refused = table.table_fulls or 0
    overflowed = bool(refused or evidence.overflow_lines)
    if overflowed:
        said = ", ".join(
            part
            for part in (
                f"{refused:,} new neighbours refused since boot (table_fulls)" if refused else "",
                f"{evidence.overflow_lines:,} 'neighbor table overflow' log lines this boot"
                if evidence.overflow_lines
                else "",
            )
            if part
        )
        full_at = current[2]
        if not evidence.lines_since_change and evidence.lowest_thresh3 is not None:
            # refused before ctguard's last change (or not placed in time):
            # at the lowest limit in force this boot, never at today's
            full_at = min(evidence.lowest_thresh3, current[2])
        when = (
            "today's gc_thresh3"
            if full_at == current[2]
            else "the lowest gc_thresh3 in force this boot (ctguard changed it since)"
        )
        if full_at > peak:
            peak, basis = full_at, f"the table was full at {full_at:,}, {when} ({said})"
        else:
            basis += f"; it overflowed too ({said})"
    why.append(f"observed peak: {peak:,} - {basis}")
    wanted = int(peak * headroom)
    soft = min(max(power_of_two_at_least(wanted), KERNEL_DEFAULTS[1]), INT_MAX // 2)
    why.append(
        f"demand: peak x headroom {headroom:g} = {wanted:,}, rounded up to a power of two "
        f"(never below the kernel's default 512) = {soft:,} for gc_thresh2, the soft limit "
        "above which forced garbage collection evicts neighbours idle for 5 s"
    )
    if not ordered(current):
        warnings.append(
            f"the current values {'/'.join(f'{v:,}' for v in current)} are out of order "
            "(gc_thresh1 <= gc_thresh2 <= gc_thresh3 is how the kernel uses them)"
        )
    if soft <= current[1] and ordered(current):
        recommended = current
        why.append(
            f"fine: the demand ({wanted:,}) fits under gc_thresh2 {current[1]:,}, with "
            f"gc_thresh3 {current[2]:,} above it; keep them (kernel defaults 128/512/1024)"
        )
    else:
        two = max(soft, current[1])
        three = min(max(2 * two, current[2]), INT_MAX)
        one = min(max(two // 4, current[0]), two)
        recommended = (one, two, three)
        how_three = "twice gc_thresh2" if three == 2 * two else "kept: above twice gc_thresh2"
        how_one = (
            "a quarter of gc_thresh2"
            if one == two // 4
            else "kept"
            if one == current[0]
            else "brought down to gc_thresh2 to keep the order"
        )
        why.append(
            f"gc_thresh2 {two:,} (now {current[1]:,}); gc_thresh3, the hard limit where new "
            f"neighbours are refused, {three:,} ({how_three}; now {current[2]:,}); gc_thresh1, "
            f"below which the periodic collector leaves the table alone, {one:,} ({how_one}; "
            f"now {current[0]:,}): the kernel's defaults 128/512/1024 keep the same 1:4:8, and "
            "no limit is lowered"
        )
    memory = recommended[2] * BYTES_PER_ENTRY
    why.append(
        f"cost: entries exist only while neighbours do; at gc_thresh3 {recommended[2]:,} the "
        f"table would hold {mib(memory)} ({BYTES_PER_ENTRY} B per entry: a kmalloc-512 object "
        "plus its hash bucket), which a flood of unresolvable addresses on a large directly "
        "connected subnet can fill"
    )
    return NeighbourAdvice(
        family=table.family,
        table=table.name,
        entries=table.entries,
        peak=peak,
        peak_basis=basis,
        overflowed=overflowed,
        current=current,
        recommended=recommended,
        memory_at_thresh3=memory,
        why=why,
        warnings=warnings,
    )
