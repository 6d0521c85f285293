"""One cheap collection round over network namespaces (exporter, guard).

Reads per namespace what `ctguard status` reads of the table's size and
health, and nothing more: the three sysctls (count, max, buckets) and the
per-CPU statistics summed (procfs, else ctnetlink), plus the entry size
from /proc/slabinfo once per round (it is global) for memory at max.  It
never reads the table, so a round costs the same at 200 entries and at
2,000,000.

Thread-safe and fork-free: entering a namespace is per thread and
serialised by ``kernel.netns``; the collector keeps only what it was given
and the last label each ``--netns`` spec had (so a vanished namespace keeps
its name in the failure it is reported as).  Namespaces are listed again
every round, so they appear and vanish as containers do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from ctguard.analyze.table_pressure import entry_size
from ctguard.errors import CtguardError, SourceMissing
from ctguard.kernel.netns import (
    current_netns_inode,
    entered_netns,
    list_netns,
    named_netns,
    resolve_netns,
)
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_counters, read_slab, read_table_size
from ctguard.model.collection import (
    SOURCE_COUNTERS,
    SOURCE_NETNS,
    SOURCE_NETNS_LIST,
    SOURCE_SLABINFO,
    SOURCE_SYSCTL,
    Collection,
    NetnsSample,
    SourceResult,
)
from ctguard.model.kernel_defaults import HASH_BYTES_PER_BUCKET
from ctguard.model.netns_ref import NetnsRef


def netns_label(ref: NetnsRef, names: dict[int, list[str]]) -> str:
    """The `ip netns` name of a namespace, else its inode (the kernel log's ``netns <inum>``)."""
    named = names.get(ref.inode)
    return named[0] if named else str(ref.inode)


def _error_text(err: CtguardError) -> str:
    return f"{err.what} ({err.where})" if err.where else err.what


class Collector:
    """Reads the namespaces it was told about, one round per :meth:`collect` call.

    ``specs`` are ``--netns`` values (NAME, PID or PATH), resolved again each
    round; ``all_netns`` reads every namespace; neither reads the collecting
    process's own.  The specs are resolved once here so a typo fails at
    start (``SourceMissing`` / ``UsageError``), not at the first scrape.
    """

    def __init__(
        self,
        root: KernelRoot | None = None,
        *,
        specs: Sequence[str] = (),
        all_netns: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root or KernelRoot.live()
        self.specs = tuple(specs)
        self.all_netns = all_netns
        self._clock = clock
        self._lock = threading.Lock()
        self._last_label: dict[str, str] = {}
        if self.specs and not self.root.is_live:
            raise CtguardError("namespaces can only be read on the live host")
        names = named_netns() if self.specs else {}
        for spec in self.specs:
            ref = resolve_netns(spec, self.root.proc, processes=False)
            self._last_label[spec] = netns_label(ref, names)

    def collect(self) -> Collection:
        started = self._clock()
        t0 = time.perf_counter()
        sources: list[SourceResult] = []
        per_entry, measured = self._entry_size(sources)
        release = self.root.read_proc("sys/kernel/osrelease")
        samples = []
        for label, ref, own, failure in self._targets(sources):
            sample = failure or self._read_one(label, ref, own, per_entry)
            if sample is not None:
                samples.append(sample)
        return Collection(
            taken_at=started,
            seconds=time.perf_counter() - t0,
            kernel_release=release.strip() if release else None,
            bytes_per_entry=per_entry,
            entry_size_measured=measured,
            samples=tuple(samples),
            sources=tuple(sources),
        )

    def _entry_size(self, sources: list[SourceResult]) -> tuple[int, bool]:
        t0 = time.perf_counter()
        notes: list[str] = []
        try:
            caches = read_slab(self.root, notes)
            error = notes[0] if notes else None
        except CtguardError as err:
            caches, error = None, _error_text(err)
        if caches == ():
            error = "no nf_conntrack slab cache in /proc/slabinfo"
        per_entry, measured, _basis = entry_size(caches)
        sources.append(SourceResult(SOURCE_SLABINFO, measured, time.perf_counter() - t0, error))
        return per_entry, measured

    def _targets(
        self, sources: list[SourceResult]
    ) -> list[tuple[str, NetnsRef | None, bool, NetnsSample | None]]:
        """(label, ref to enter or None for the own, is own, the sample if it cannot be read)."""
        if not self.root.is_live:
            return [("host", None, True, None)]
        own_inode = current_netns_inode()
        names = named_netns()
        own_label = names[own_inode][0] if own_inode in names else str(own_inode)
        targets: list[tuple[str, NetnsRef | None, bool, NetnsSample | None]] = []
        if self.all_netns:
            t0 = time.perf_counter()
            try:
                refs = list_netns(self.root.proc, processes=False)
                sources.append(SourceResult(SOURCE_NETNS_LIST, True, time.perf_counter() - t0))
            except (CtguardError, OSError) as err:
                message = _error_text(err) if isinstance(err, CtguardError) else str(err)
                sources.append(
                    SourceResult(SOURCE_NETNS_LIST, False, time.perf_counter() - t0, message)
                )
                refs = []
            if not any(ref.inode == own_inode for ref in refs):
                targets.append((own_label, None, True, None))
            for ref in refs:
                own = ref.inode == own_inode
                label = own_label if own else netns_label(ref, names)
                targets.append((label, None if own else ref, own, None))
            return targets
        if not self.specs:
            return [(own_label, None, True, None)]
        for spec in self.specs:
            t0 = time.perf_counter()
            try:
                ref = resolve_netns(spec, self.root.proc, processes=False)
            except CtguardError as err:
                with self._lock:
                    label = self._last_label.get(spec, spec)
                result = SourceResult(
                    SOURCE_NETNS, False, time.perf_counter() - t0, _error_text(err)
                )
                targets.append((label, None, False, self._failed(label, (result,))))
                continue
            label = netns_label(ref, names)
            with self._lock:
                self._last_label[spec] = label
            own = ref.inode == own_inode
            targets.append((label, None if own else ref, own, None))
        return targets

    def _failed(self, label: str, sources: tuple[SourceResult, ...]) -> NetnsSample:
        return NetnsSample(
            label, None, False, self._clock(), None, None, None, None, None, None, sources
        )

    def _read_one(
        self, label: str, ref: NetnsRef | None, own: bool, per_entry: int
    ) -> NetnsSample | None:
        taken_at = self._clock()
        sources: list[SourceResult] = []
        t0 = time.perf_counter()
        try:
            with entered_netns(ref):
                entered = time.perf_counter()
                if ref is not None:
                    sources.append(SourceResult(SOURCE_NETNS, True, entered - t0))
                size = read_table_size(self.root)
                read_size = time.perf_counter()
                loaded = size.max is not None
                # nf_conntrack not loaded is an answer (nothing to fill), not a failure
                sources.append(SourceResult(SOURCE_SYSCTL, True, read_size - entered))
                notes: list[str] = []
                counters, counter_source = None, None
                if loaded:
                    try:
                        counters, counter_source, entries = read_counters(
                            self.root, notes, use_netlink=True
                        )
                    except CtguardError as err:
                        notes.append(_error_text(err))
                    else:
                        if size.count is None and entries is not None:
                            size = replace(size, count=entries)
                if loaded:
                    sources.append(
                        SourceResult(
                            SOURCE_COUNTERS,
                            counters is not None,
                            time.perf_counter() - read_size,
                            None if counters is not None else (notes[0] if notes else "not read"),
                        )
                    )
        except CtguardError as err:
            if isinstance(err, SourceMissing) and self.all_netns:
                return None  # listed a moment ago, gone now: normal, as in status --all-netns
            result = SourceResult(SOURCE_NETNS, False, time.perf_counter() - t0, _error_text(err))
            return self._failed(label, (result,))
        memory = None
        if size.max is not None:
            memory = size.max * per_entry + (size.buckets or 0) * HASH_BYTES_PER_BUCKET
        return NetnsSample(
            label=label,
            netns=ref,
            own=own,
            taken_at=taken_at,
            count=size.count,
            max=size.max,
            buckets=size.buckets,
            counters=counters,
            counter_source=counter_source,
            memory_at_max_bytes=memory,
            sources=tuple(sources),
        )
