"""Read the neighbour tables: /proc/net/stat/{arp,ndisc}_cache and the
net.{ipv4,ipv6}.neigh.default.gc_* sysctls (read only).

Both exist only in the initial network namespace (the tables are the
kernel's, shared by every namespace): from another namespace, or from a
bundle that lacks them, nothing is returned and a note says why.
"""

from __future__ import annotations

from ctguard.errors import ParseError
from ctguard.kernel.root import KernelRoot
from ctguard.model.neighbours import NeighbourTable
from ctguard.parse.neigh_stat import parse_neigh_stat

TABLES = (("ipv4", "arp_cache"), ("ipv6", "ndisc_cache"))
GC_KEYS = ("gc_thresh1", "gc_thresh2", "gc_thresh3", "gc_stale_time")


def _int(text: str | None) -> int | None:
    try:
        return int(text.split()[0]) if text else None
    except (ValueError, IndexError):
        return None


def read_neighbour_tables(root: KernelRoot, notes: list[str]) -> tuple[NeighbourTable, ...]:
    """The tables visible from ``root`` (none from a non-initial namespace)."""
    tables = []
    for family, name in TABLES:
        rel = f"net/stat/{name}"
        text = root.read_proc(rel)
        gc = {key: _int(root.read_proc(f"sys/net/{family}/neigh/default/{key}")) for key in GC_KEYS}
        if text is None and gc["gc_thresh3"] is None:
            continue
        stats: dict[str, int] = {}
        if text is not None:
            try:
                stats = parse_neigh_stat(text, source=str(root.proc_path(rel)))
            except ParseError as err:
                notes.append(f"{name} statistics unreadable: {err.message}")
        tables.append(
            NeighbourTable(
                family=family,
                name=name,
                entries=stats.get("entries"),
                table_fulls=stats.get("table_fulls"),
                forced_gc_runs=stats.get("forced_gc_runs"),
                gc_thresh1=gc["gc_thresh1"],
                gc_thresh2=gc["gc_thresh2"],
                gc_thresh3=gc["gc_thresh3"],
                gc_stale_time=gc["gc_stale_time"],
            )
        )
    return tuple(tables)
