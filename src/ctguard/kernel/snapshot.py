"""Read one :class:`~ctguard.model.snapshot.Snapshot` from a KernelRoot.

Cheap by design: a handful of small files, never the table itself, so it
can run every second on a host with millions of entries.  Each source has a
fallback chain; what could not be read becomes a note, not a failure:

- count/max/buckets: /proc/sys/net/netfilter/nf_conntrack_*, then the
  legacy /proc/sys/net/ipv4/netfilter/ip_conntrack_* names;
- counters: /proc/net/stat/nf_conntrack, /proc/net/stat/ip_conntrack, then
  ctnetlink (live) or a captured ``conntrack -S`` (bundle);
- entry size: /proc/slabinfo (root only).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ctguard.errors import AccessDenied, CtguardError, ParseError
from ctguard.kernel.neighbours import read_neighbour_tables
from ctguard.kernel.root import KernelRoot, list_dir_or_empty
from ctguard.model.kernel_defaults import timeout_default
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.slab import SlabCache
from ctguard.model.snapshot import CounterSource, Snapshot, TimeoutSetting
from ctguard.parse.conntrack_stats_tool import parse_conntrack_stats_tool
from ctguard.parse.meminfo import parse_mem_total_bytes
from ctguard.parse.slabinfo import conntrack_caches, parse_slabinfo
from ctguard.parse.stat_nf_conntrack import PerCpuCounters, parse_stat_nf_conntrack

MODERN_DIR = "sys/net/netfilter"
LEGACY_DIR = "sys/net/ipv4/netfilter"
MODERN_PREFIX = "nf_conntrack_"
LEGACY_PREFIX = "ip_conntrack_"

# Bundle files written by `ctguard capture` for sources that are not files.
BUNDLE_NETLINK_STATS = "ctguard/netlink_stats_cpu.json"
BUNDLE_CONNTRACK_S = "cmd/conntrack_-S.txt"
BUNDLE_GUARD_DB = "ctguard/guard.sqlite3"  # a consistent copy of the guard's database

SETTING_KEYS = (
    "acct",
    "timestamp",
    "events",
    "helper",
    "checksum",
    "log_invalid",
    "tcp_loose",
    "tcp_be_liberal",
    "tcp_max_retrans",
    "expect_max",
)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _sysctl_dir(root: KernelRoot) -> tuple[str, str, bool]:
    """(directory, prefix, legacy) of the conntrack sysctls present in this root."""
    if root.read_proc(f"{MODERN_DIR}/nf_conntrack_max") is not None:
        return MODERN_DIR, MODERN_PREFIX, False
    if root.read_proc(f"{LEGACY_DIR}/ip_conntrack_max") is not None:
        return LEGACY_DIR, LEGACY_PREFIX, True
    return MODERN_DIR, MODERN_PREFIX, False


def read_timeouts(
    root: KernelRoot, directory: str, prefix: str, legacy: bool
) -> list[TimeoutSetting]:
    settings = []
    for name in list_dir_or_empty(root.proc_path(directory)):
        if not name.startswith(prefix) or "timeout" not in name:
            continue
        key = name[len(prefix) :]
        if key.startswith("frag") or key == "events_retry_timeout":
            continue  # defragmentation / event redelivery, not entry lifetimes
        seconds = _int_or_none(root.read_proc(f"{directory}/{name}"))
        if seconds is None:
            continue
        default = timeout_default(key, legacy=legacy)
        dotted = f"{directory[4:].replace('/', '.')}.{name}"
        settings.append(
            TimeoutSetting(
                key=key,
                sysctl=dotted,
                seconds=seconds,
                default=default.current if default else None,
                older_defaults=default.older if default else (),
            )
        )
    return settings


def read_counters(
    root: KernelRoot, notes: list[str], *, use_netlink: bool
) -> tuple[dict[str, int] | None, CounterSource | None, int | None]:
    """Summed per-CPU counters, their source, and the procfs ``entries`` value."""
    for rel, kind in (
        ("net/stat/nf_conntrack", "procfs"),
        ("net/stat/ip_conntrack", "procfs-legacy"),
    ):
        text = root.read_proc(rel)
        if text is not None:
            parsed = parse_stat_nf_conntrack(text, source=str(root.proc_path(rel)))
            return parsed.totals(), _source(kind, parsed), parsed.entries
    if root.is_live and use_netlink:
        try:
            from ctguard.kernel.ctnetlink import CtnetlinkSocket

            with CtnetlinkSocket() as sock:
                rows = sock.stats_per_cpu()
            return _sum_rows(rows), CounterSource("netlink", "ctnetlink stats", len(rows)), None
        except CtguardError as err:
            notes.append(f"per-CPU counters unavailable: no procfs statistics and {err.what}")
            return None, None, None
    bundled = root.read_bundle(BUNDLE_NETLINK_STATS)
    if bundled is not None:
        try:
            rows = [{str(k): int(v) for k, v in row.items()} for row in json.loads(bundled)]
        except (ValueError, AttributeError, TypeError) as err:
            raise ParseError("bad captured netlink statistics", where=BUNDLE_NETLINK_STATS) from err
        return (
            _sum_rows(rows),
            CounterSource("netlink", "ctnetlink stats (captured)", len(rows)),
            None,
        )
    tool = root.read_bundle(BUNDLE_CONNTRACK_S)
    if tool is not None and tool.strip():
        parsed = parse_conntrack_stats_tool(tool, source=BUNDLE_CONNTRACK_S)
        return parsed.totals(), _source("conntrack -S", parsed), None
    notes.append("per-CPU counters unavailable: no /proc/net/stat/nf_conntrack in this root")
    return None, None, None


def _source(kind: str, parsed: PerCpuCounters) -> CounterSource:
    return CounterSource(kind, parsed.header_variant, len(parsed.per_cpu))


def _sum_rows(rows: list[dict[str, int]]) -> dict[str, int]:
    sums: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            sums[name] = sums.get(name, 0) + value
    return sums


def read_slab(root: KernelRoot, notes: list[str]) -> tuple[SlabCache, ...] | None:
    try:
        text = root.read_proc("slabinfo")
    except AccessDenied:
        notes.append("entry size not measured: /proc/slabinfo is readable by root only")
        return None
    if text is None:
        notes.append("entry size not measured: no /proc/slabinfo")
        return None
    return tuple(conntrack_caches(parse_slabinfo(text, source=str(root.proc_path("slabinfo")))))


def read_module(root: KernelRoot, notes: list[str]) -> tuple[bool, dict[str, str], tuple[str, ...]]:
    """(module present, its readable parameters, modules using it)."""
    for module in ("nf_conntrack", "ip_conntrack"):
        base = f"module/{module}"
        if not root.sys_path(base).is_dir():
            continue
        params = {}
        denied = []
        for name in list_dir_or_empty(root.sys_path(f"{base}/parameters")):
            try:
                value = root.read_sys(f"{base}/parameters/{name}")
            except AccessDenied:
                denied.append(name)  # some parameters are mode 0400
                continue
            if value is not None:
                params[name] = value.strip()
        if denied:
            notes.append(f"module parameters readable by root only: {', '.join(denied)}")
        users = tuple(list_dir_or_empty(root.sys_path(f"{base}/holders")))
        return True, params, users
    return False, {}, ()


@dataclass(frozen=True)
class TableSize:
    """nf_conntrack_count, _max and _buckets as the reading thread's netns sees them."""

    count: int | None
    max: int | None
    buckets: int | None
    legacy: bool


def read_table_size(root: KernelRoot) -> TableSize:
    """The three sysctls alone (modern names, then the legacy ip_conntrack ones)."""
    directory, prefix, legacy = _sysctl_dir(root)
    values = [
        _int_or_none(root.read_proc(f"{directory}/{prefix}{key}"))
        for key in ("count", "max", "buckets")
    ]
    return TableSize(values[0], values[1], values[2], legacy)


def read_snapshot(
    root: KernelRoot, netns: NetnsRef | None = None, *, use_netlink: bool = True
) -> Snapshot:
    """Read the conntrack state visible from ``root`` (in the current netns)."""
    taken = (time.time(), time.monotonic()) if root.is_live else (_capture_time(root), None)
    notes: list[str] = []
    directory, prefix, legacy = _sysctl_dir(root)

    def sysctl(key: str) -> str | None:
        return root.read_proc(f"{directory}/{prefix}{key}")

    size = read_table_size(root)
    count, max_entries, buckets = size.count, size.max, size.buckets
    module_present, params, users = read_module(root, notes)
    module_loaded = max_entries is not None or module_present
    if buckets is None and "hashsize" in params:
        buckets = _int_or_none(params["hashsize"])

    counters: dict[str, int] | None = None
    counter_source: CounterSource | None = None
    if module_loaded:
        counters, counter_source, entries = read_counters(root, notes, use_netlink=use_netlink)
        if count is None and entries is not None:
            count = entries

    meminfo = root.read_proc("meminfo")
    mem_total = parse_mem_total_bytes(meminfo, source="meminfo") if meminfo else None
    release = root.read_proc("sys/kernel/osrelease")
    settings = {key: value.strip() for key in SETTING_KEYS if (value := sysctl(key)) is not None}
    taken_at, taken_monotonic = taken
    return Snapshot(
        source=root.label,
        netns=netns,
        kernel_release=release.strip() if release else None,
        module_loaded=module_loaded,
        legacy=legacy,
        count=count,
        max=max_entries,
        buckets=buckets,
        counters=counters,
        counter_source=counter_source,
        mem_total=mem_total,
        slab_caches=read_slab(root, notes) if module_loaded else None,
        timeouts=tuple(read_timeouts(root, directory, prefix, legacy)),
        settings=settings,
        module_params=params,
        module_users=users,
        notes=tuple(notes),
        neighbours=read_neighbour_tables(root, notes),
        taken_at=taken_at,
        taken_monotonic=taken_monotonic,
        root_argument=root.root_argument,
    )


def _capture_time(root: KernelRoot) -> float | None:
    """When a bundle was captured, from its manifest (None: not said)."""
    text = root.read_bundle("manifest.json")
    if not text:
        return None
    try:
        value = json.loads(text).get("captured_at_epoch")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
