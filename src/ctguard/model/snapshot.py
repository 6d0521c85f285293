"""What was read from one kernel (or bundle, or netns) at one moment.

Only observations live here; anything derived (fill %, memory estimates,
verdicts) is computed by ``ctguard.analyze`` from these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctguard.model.neighbours import NeighbourTable
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.slab import SlabCache


@dataclass(frozen=True)
class TimeoutSetting:
    """One ``*_timeout*`` sysctl with its kernel default, in SECONDS."""

    key: str
    sysctl: str
    seconds: int
    default: int | None
    older_defaults: tuple[int, ...] = ()

    @property
    def state(self) -> str:
        """'default', 'older-default', 'changed' or 'unknown'."""
        if self.default is None:
            return "unknown"
        if self.seconds == self.default:
            return "default"
        if self.seconds in self.older_defaults:
            return "older-default"
        return "changed"


@dataclass(frozen=True)
class CounterSource:
    """Where the per-CPU counters came from and which layout they had."""

    kind: str  # "procfs", "procfs-legacy", "netlink", "conntrack -S"
    variant: str
    cpus: int


@dataclass(frozen=True)
class Snapshot:
    source: str
    netns: NetnsRef | None
    kernel_release: str | None
    module_loaded: bool
    legacy: bool
    count: int | None
    max: int | None
    buckets: int | None
    counters: dict[str, int] | None
    counter_source: CounterSource | None
    mem_total: int | None
    slab_caches: tuple[SlabCache, ...] | None
    timeouts: tuple[TimeoutSetting, ...]
    settings: dict[str, str] = field(default_factory=dict)
    module_params: dict[str, str] = field(default_factory=dict)
    module_users: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # the kernel's neighbour tables (initial namespace only; see kernel/neighbours.py)
    neighbours: tuple[NeighbourTable, ...] = ()
    # When it was read: wall clock (epoch seconds; for a bundle, when it was
    # captured, if it says) and, live only, the monotonic clock that rates
    # between two snapshots are computed on.
    taken_at: float | None = None
    taken_monotonic: float | None = None
    # the --root that names this bundle again in a suggested command (None: live)
    root_argument: str | None = None

    def timeout(self, key: str) -> TimeoutSetting | None:
        """The timeout setting named ``key`` (e.g. ``tcp_timeout_established``), if read."""
        return next((t for t in self.timeouts if t.key == key), None)
