"""The kernel's neighbour tables (ARP for IPv4, NDISC for IPv6) as read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NeighbourTable:
    """One neighbour table: ``arp_cache`` (ipv4) or ``ndisc_cache`` (ipv6).

    The table is the kernel's own, shared by every network namespace (each
    namespace sees only its own entries with `ip neigh`, but the garbage
    collector and the overflow check count them all against one gc_thresh3).
    """

    family: str  # "ipv4" or "ipv6"
    name: str  # the kernel's table id: arp_cache, ndisc_cache
    entries: int | None  # /proc/net/stat/<name> entries (all namespaces)
    table_fulls: int | None  # allocations refused: the table stayed above gc_thresh3
    forced_gc_runs: int | None
    gc_thresh1: int | None
    gc_thresh2: int | None
    gc_thresh3: int | None
    gc_stale_time: int | None  # seconds

    @property
    def sysctl_prefix(self) -> str:
        return f"net.{self.family}.neigh.default"

    @property
    def fill(self) -> float | None:
        """entries / gc_thresh3 (above 1.0 allocations fail unless GC frees some)."""
        if self.entries is None or not self.gc_thresh3:
            return None
        return self.entries / self.gc_thresh3
