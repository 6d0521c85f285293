"""What one collection round read: per namespace, per source, with the time.

A collection is the cheap, table-free reading that `ctguard status` does
(count, max, buckets, the per-CPU counters summed, memory at max), taken for
several network namespaces at once.  The exporter turns one into metrics at
each scrape; the guard takes one every second.  Every source says whether it
answered and how long it took, so a vanished namespace or missing statistics
is a value, not an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import CounterSource

# Source names (the ``source`` label of the exporter's success/duration gauges).
SOURCE_NETNS_LIST = "netns_list"  # listing the namespaces (--all-netns)
SOURCE_SLABINFO = "slabinfo"  # the entry size behind memory at max (global)
SOURCE_NETNS = "netns"  # entering (or resolving) one namespace
SOURCE_SYSCTL = "sysctl"  # nf_conntrack_count, _max, _buckets
SOURCE_COUNTERS = "counters"  # the per-CPU statistics (procfs, else ctnetlink)


@dataclass(frozen=True)
class SourceResult:
    """One source read once: did it answer, how long did it take, and why not."""

    source: str
    success: bool
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class NetnsSample:
    """One namespace's table at ``taken_at``.

    ``label`` is what names the namespace to a person and to Prometheus: its
    `ip netns` name where it has one, else its inode number.  ``own`` is the
    namespace the collecting process runs in (the host's, for a host-wide
    exporter).  ``None`` values were not read: the matching source failed.
    """

    label: str
    netns: NetnsRef | None
    own: bool
    taken_at: float  # time.time() when this namespace was read
    count: int | None
    max: int | None
    buckets: int | None
    counters: dict[str, int] | None
    counter_source: CounterSource | None
    memory_at_max_bytes: int | None
    sources: tuple[SourceResult, ...]

    def source(self, name: str) -> SourceResult | None:
        return next((s for s in self.sources if s.source == name), None)


@dataclass(frozen=True)
class Collection:
    """Every namespace asked for, read in one round."""

    taken_at: float  # time.time() at the start of the round
    seconds: float  # how long the whole round took
    kernel_release: str | None
    bytes_per_entry: int
    entry_size_measured: bool
    samples: tuple[NetnsSample, ...]
    sources: tuple[SourceResult, ...]  # the round's own (netns list, slabinfo)

    def sample(self, label: str) -> NetnsSample | None:
        return next((s for s in self.samples if s.label == label), None)
