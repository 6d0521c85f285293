"""How big the table should be: nf_conntrack_max and the hash, from this host's numbers.

Pure.  Every figure carries the sentence that explains it, because the
sizing folklore operators meet is mostly wrong (FACTS.md §1, §3):

- demand: the observed peak (the count now, every namespace's count, and
  "the table was full" when the drop counter or the kernel log says so, at
  the max of that time: see MaxPeriod), times a headroom factor;
- supply: a memory budget, a share of MemTotal, divided by the measured
  cost of one entry (slab object + extensions) plus its hash bucket;
- the hash follows the running kernel's convention (1:1 on >= 5.15, 4:1
  before, 8:1 on ip_conntrack), rounded up to whole pages of bucket heads
  as the kernel itself rounds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.model.kernel_defaults import BUCKETS_PER_PAGE, HASH_BYTES_PER_BUCKET

MIB = 1024 * 1024
DEFAULT_RAM_SHARE = 0.03
DEFAULT_HEADROOM = 2.0
# nf_conntrack_max is a C int; keep a margin below INT_MAX.
MAX_ENTRIES_LIMIT = 2**31 - 1 - BUCKETS_PER_PAGE


@dataclass(frozen=True)
class MaxPeriod:
    """A stretch of this boot during which nf_conntrack_max was ``value``.

    'table full' lines say the table was full at the max in force when they
    were logged, not at today's: judged against today's, advice after an
    apply -> rollback cycle would read old lines as a full table at the new
    max and double it again, and again.
    """

    value: int
    lines: int  # 'table full' lines logged meanwhile
    ended: str | None = None  # when ctguard changed it, as shown; None: in force now
    next_value: int | None = None  # what ctguard set then


@dataclass(frozen=True)
class SizingInputs:
    count: int
    max: int
    buckets: int | None
    mem_total: int | None
    bytes_per_entry: int
    entry_size_basis: str
    kernel: tuple[int, int] | None
    legacy: bool = False
    namespace_counts: tuple[tuple[str, int], ...] = ()
    drops: int | None = None
    table_full_lines: int = 0  # this boot (when max_periods is not given)
    # this boot's maxes, oldest first, the last in force now (empty: only today's)
    max_periods: tuple[MaxPeriod, ...] = ()
    ram_share: float = DEFAULT_RAM_SHARE
    headroom: float = DEFAULT_HEADROOM


@dataclass
class SizingAdvice:
    peak: int
    peak_basis: str
    reached_max: bool
    needed: int
    budget_bytes: int | None
    budget_max: int | None
    recommended_max: int
    recommended_buckets: int
    convention: str
    ratio: int
    memory_at_max: int
    hash_bytes: int
    avg_chain_at_max: float
    namespaces_in_use: int
    worst_case_bytes: int
    current_max: int
    current_buckets: int | None
    why: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def change_max(self) -> bool:
        return self.recommended_max != self.current_max

    @property
    def change_buckets(self) -> bool:
        return self.recommended_buckets != self.current_buckets


def round_up_to_page(buckets: int) -> int:
    """The kernel allocates the hash in whole pages of 8-byte heads (512 per 4 KiB page)."""
    return max(BUCKETS_PER_PAGE, -(-buckets // BUCKETS_PER_PAGE) * BUCKETS_PER_PAGE)


def hash_convention(kernel: tuple[int, int] | None, legacy: bool) -> tuple[int, str]:
    """(max:buckets ratio, why) the running kernel itself uses."""
    if legacy:
        return 8, "ip_conntrack kernels size the hash at max/8"
    if kernel is not None and kernel < (5, 15):
        return 4, "kernels before 5.15 default to max = 4 x buckets"
    return 1, "Linux >= 5.15 defaults to max = buckets (1:1, two hash entries per bucket at max)"


def mib(value: float) -> str:
    return f"{value / MIB:,.1f} MiB"


def _full_table_peak(inputs: SizingInputs, peak: int, basis: str) -> tuple[int, str, bool]:
    """The peak when the table was full (drops, log lines): the max in force then.

    Each 'table full' line counts at the max in force when it was logged.
    The drop counter counts since boot without saying when: with no line
    to place them, drops say the table was full at the lowest max in force
    this boot (never more than what is known).
    """
    periods = inputs.max_periods or (MaxPeriod(inputs.max, inputs.table_full_lines),)
    drops = inputs.drops or 0
    evidence = [f"drop counter {drops:,}"] if drops else []
    full = [period for period in periods if period.lines]
    if full:
        top = max(full, key=lambda period: period.value)
        by_value: dict[int, int] = {}
        for period in full:
            by_value[period.value] = by_value.get(period.value, 0) + period.lines
        if list(by_value) == [inputs.max]:
            evidence.append(f"{by_value[inputs.max]:,} 'table full' log lines")
        else:
            evidence.extend(
                f"{lines:,} 'table full' log lines at max {value:,}"
                for value, lines in sorted(by_value.items())
            )
    elif drops:
        top = min(periods, key=lambda period: period.value)
    else:
        return peak, basis, False
    if top.value <= peak:
        return peak, basis, True
    said = ", ".join(evidence)
    if top.value == inputs.max:
        return top.value, f"the table was full at {top.value:,} ({said})", True
    later = periods[periods.index(top) + 1 :]
    quiet = "" if any(p.lines for p in later) else "; no 'table full' line since"
    return (
        top.value,
        f"the table was full at {top.value:,}, its max until ctguard set "
        f"{top.next_value or inputs.max:,} at {top.ended} ({said}){quiet}",
        True,
    )


def plan_sizing(inputs: SizingInputs) -> SizingAdvice:
    why: list[str] = []
    warnings: list[str] = []
    per_entry = inputs.bytes_per_entry
    ns_peak_label, ns_peak = max(inputs.namespace_counts, key=lambda item: item[1], default=("", 0))
    peak, basis = inputs.count, f"{inputs.count:,} entries in the table now"
    if ns_peak > peak:
        peak, basis = ns_peak, f"{ns_peak:,} entries in {ns_peak_label} (each namespace has max)"
    peak, basis, reached = _full_table_peak(inputs, peak, basis)
    why.append(f"observed peak: {peak:,} - {basis}")

    ratio, convention = hash_convention(inputs.kernel, inputs.legacy)
    step = BUCKETS_PER_PAGE * ratio  # entries per page of buckets at this convention
    needed = -(-int(peak * inputs.headroom) // step) * step
    why.append(
        f"demand: peak x headroom {inputs.headroom:g} = {int(peak * inputs.headroom):,}, "
        f"rounded up to whole hash pages ({BUCKETS_PER_PAGE} buckets = {step:,} entries at "
        f"{ratio}:1) = {needed:,}"
    )
    bytes_per_slot = per_entry + HASH_BYTES_PER_BUCKET / ratio

    budget_bytes = budget_max = None
    if inputs.mem_total:
        budget_bytes = int(inputs.mem_total * inputs.ram_share)
        budget_max = int(budget_bytes / bytes_per_slot)
        budget_max = max(step, budget_max - budget_max % step)
        why.append(
            f"memory budget: {inputs.ram_share:.1%} of MemTotal {mib(inputs.mem_total)} = "
            f"{mib(budget_bytes)}; one entry costs {per_entry} B ({inputs.entry_size_basis}) "
            f"+ {HASH_BYTES_PER_BUCKET / ratio:g} B of hash = {bytes_per_slot:g} B, so the "
            f"budget holds {budget_max:,} entries"
        )

    current = inputs.max
    recommended = max(needed, current)
    if needed <= current:
        why.append(
            f"the current max {current:,} already covers the demand: keep it "
            "(raising it would only reserve more unswappable memory for a flood)"
        )
        if budget_max is not None and current > budget_max:
            warnings.append(
                f"at its max of {current:,} the table would use {mib(current * per_entry)}, "
                f"over the {mib(budget_bytes or 0)} budget; lowering max to "
                f"{max(needed, budget_max):,} is safe for the load seen so far"
            )
            recommended = max(needed, budget_max, inputs.count)
    else:
        why.append(f"the current max {current:,} is below the demand: raise it to {needed:,}")
        if budget_max is not None and needed > budget_max:
            capped = max(budget_max, current)
            warnings.append(
                f"the demand ({needed:,} entries, {mib(needed * per_entry)}) exceeds the memory "
                f"budget ({budget_max:,} entries): recommending {capped:,}; raise --ram-share "
                "only if this host can spare the memory, or cut the demand (timeouts, NOTRACK, "
                "blocking a flood)"
            )
            recommended = capped
    recommended = min(recommended, MAX_ENTRIES_LIMIT)

    buckets = round_up_to_page(-(-recommended // ratio))
    why.append(
        f"hash: {convention}: buckets = {recommended:,} / {ratio} "
        f"rounded up to a whole page = {buckets:,}"
    )
    chain = 2 * recommended / buckets
    memory = recommended * per_entry
    hash_bytes = buckets * HASH_BYTES_PER_BUCKET
    why.append(
        f"at max: {mib(memory)} of entries + {mib(hash_bytes)} of hash, average chain "
        f"{chain:.1f} (each entry is hashed twice: original and reply)"
    )
    in_use = max(1, sum(1 for _, n in inputs.namespace_counts if n > 0))
    worst = in_use * memory + hash_bytes
    if in_use > 1:
        why.append(
            f"{in_use} network namespaces use conntrack and each may fill up to max: "
            f"worst case {mib(worst)} together"
        )
        if inputs.mem_total and worst > inputs.mem_total * 0.25:
            warnings.append(
                f"if all {in_use} namespaces filled at once the tables would take "
                f"{mib(worst)} ({worst / inputs.mem_total:.0%} of RAM)"
            )
    return SizingAdvice(
        peak=peak,
        peak_basis=basis,
        reached_max=reached,
        needed=needed,
        budget_bytes=budget_bytes,
        budget_max=budget_max,
        recommended_max=recommended,
        recommended_buckets=buckets,
        convention=convention,
        ratio=ratio,
        memory_at_max=memory,
        hash_bytes=hash_bytes,
        avg_chain_at_max=chain,
        namespaces_in_use=in_use,
        worst_case_bytes=worst,
        why=why,
        warnings=warnings,
        current_max=current,
        current_buckets=inputs.buckets,
    )
