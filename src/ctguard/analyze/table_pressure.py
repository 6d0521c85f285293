"""Derived metrics of a snapshot: fill, hash chains, sizing era, memory.

Memory per entry (FACTS §3): the ``nf_conntrack`` slab object (248 B in a
256 B slot on 6.x) plus an extension block of at least 128 B (kmalloc-128;
more with helper/acct/nat/timestamp), so ~384 B per entry; 8 B per bucket
for the hash.  It is unswappable kernel memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.model.kernel_defaults import (
    HASH_BYTES_PER_BUCKET,
    DefaultSizing,
    default_sizing_modern,
    default_sizing_pre_5_15,
    ratio_meaning,
)
from ctguard.model.slab import SlabCache
from ctguard.model.snapshot import Snapshot

EXTENSION_BYTES = 128
ASSUMED_SLAB_OBJECT = 256


@dataclass(frozen=True)
class MemoryEstimate:
    bytes_per_entry: int
    measured: bool
    basis: str
    table_now: int | None
    table_at_max: int | None
    hash_bytes: int | None
    share_of_ram_at_max: float | None


@dataclass(frozen=True)
class TableMetrics:
    fill: float | None
    avg_chain: float | None
    avg_chain_at_max: float | None
    ratio: float | None
    ratio_meaning: str | None
    memory: MemoryEstimate
    defaults: tuple[DefaultSizing, ...]


def kernel_major_minor(release: str | None) -> tuple[int, int] | None:
    if not release:
        return None
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (ValueError, IndexError):
        return None


def entry_size(caches: tuple[SlabCache, ...] | None) -> tuple[int, bool, str]:
    """(bytes per entry, measured from slabinfo?, how it was found)."""
    if caches:
        objsize = max(cache.objsize for cache in caches)
        names = ", ".join(sorted({cache.name for cache in caches}))
        basis = f"{objsize} B slab object ({names}) + >= {EXTENSION_BYTES} B extensions"
        return objsize + EXTENSION_BYTES, True, basis
    basis = (
        f"assumed {ASSUMED_SLAB_OBJECT} B slab object + {EXTENSION_BYTES} B extensions "
        "(slabinfo not readable)"
    )
    return ASSUMED_SLAB_OBJECT + EXTENSION_BYTES, False, basis


def estimate_memory(snapshot: Snapshot) -> MemoryEstimate:
    per_entry, measured, basis = entry_size(snapshot.slab_caches)
    hash_bytes = snapshot.buckets * HASH_BYTES_PER_BUCKET if snapshot.buckets else None
    at_max = snapshot.max * per_entry if snapshot.max is not None else None
    share = None
    if at_max is not None and snapshot.mem_total:
        share = (at_max + (hash_bytes or 0)) / snapshot.mem_total
    return MemoryEstimate(
        bytes_per_entry=per_entry,
        measured=measured,
        basis=basis,
        table_now=snapshot.count * per_entry if snapshot.count is not None else None,
        table_at_max=at_max,
        hash_bytes=hash_bytes,
        share_of_ram_at_max=share,
    )


def compute_metrics(snapshot: Snapshot) -> TableMetrics:
    count, max_entries, buckets = snapshot.count, snapshot.max, snapshot.buckets
    fill = count / max_entries if count is not None and max_entries else None
    # Each entry is hashed twice (original and reply direction).
    chain = 2 * count / buckets if count is not None and buckets else None
    chain_at_max = 2 * max_entries / buckets if max_entries and buckets else None
    ratio = max_entries / buckets if max_entries and buckets else None
    meaning = ratio_meaning(max_entries, buckets) if max_entries and buckets else None
    defaults: tuple[DefaultSizing, ...] = ()
    if snapshot.mem_total:
        defaults = (
            default_sizing_modern(snapshot.mem_total),
            default_sizing_pre_5_15(snapshot.mem_total),
        )
    return TableMetrics(
        fill=fill,
        avg_chain=chain,
        avg_chain_at_max=chain_at_max,
        ratio=ratio,
        ratio_meaning=meaning,
        memory=estimate_memory(snapshot),
        defaults=defaults,
    )


def running_era_default(snapshot: Snapshot, metrics: TableMetrics) -> DefaultSizing | None:
    """The default that applies to the running kernel, when its version is known."""
    version = kernel_major_minor(snapshot.kernel_release)
    if version is None or not metrics.defaults:
        return None
    return metrics.defaults[0] if version >= (5, 15) else metrics.defaults[1]
