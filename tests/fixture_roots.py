"""Fake kernel trees (``proc/``, ``sys/``) per scenario, built from real samples.

Each builder writes a bundle directory that ``--root`` reads exactly like a
capture from a real host.
"""

from __future__ import annotations

from pathlib import Path

from ctguard.parse.sysctl_dump import parse_sysctl_dump

SAMPLES = Path(__file__).parent / "fixtures" / "samples"
GIB = 1024**3

STAT_HEADER_6X = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart"
)
STAT_HEADER_PRE_5_10 = (
    "entries  searched found new invalid ignore delete delete_list insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart"
)
STAT_HEADER_LEGACY = (
    "entries  searched found new invalid ignore delete delete_list insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete"
)


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def stat_rows(header: str, rows: list[dict[str, int]]) -> str:
    names = header.split()
    lines = [header]
    for row in rows:
        lines.append(" ".join(f"{row.get(name, 0):08x}" for name in names))
    return "\n".join(lines) + "\n"


def write(base: Path, rel: str, text: str) -> None:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


roots_write = write


def write_sysctls(base: Path, sysctl_text: str) -> None:
    for key, value in parse_sysctl_dump(sysctl_text).values.items():
        write(base, "proc/sys/" + key.replace(".", "/"), value + "\n")


def base_root(
    base: Path,
    *,
    release: str = "6.18.44",
    mem_total: int = 24 * GIB,
    slab: str | None = "nf_conntrack",
    objsize: int = 256,
    active: int = 0,
    module: str | None = "nf_conntrack",
    hashsize: int | None = None,
) -> Path:
    write(base, "proc/sys/kernel/osrelease", release + "\n")
    write(base, "proc/meminfo", f"MemTotal:       {mem_total // 1024} kB\nMemFree: 1 kB\n")
    slab_lines = ["slabinfo - version: 2.1", "# name <active_objs> <num_objs> <objsize> ..."]
    if slab:
        slab_lines.append(
            f"{slab} {active} {active} {objsize} 16 1 : tunables 0 0 0 : slabdata 0 0 0"
        )
        slab_lines.append(f"{slab}_expect 0 0 216 18 1 : tunables 0 0 0 : slabdata 0 0 0")
    slab_lines.append("kmalloc-128 1000 1000 128 32 1 : tunables 0 0 0 : slabdata 0 0 0")
    write(base, "proc/slabinfo", "\n".join(slab_lines) + "\n")
    if module:
        (base / "sys/module" / module / "parameters").mkdir(parents=True, exist_ok=True)
        if hashsize is not None:
            write(base, f"sys/module/{module}/parameters/hashsize", f"{hashsize}\n")
    return base


def root_k618_sample(base: Path) -> Path:
    """The 6.18 capture: 10 entries, drop=40 and invalid=200 in the stat file."""
    base_root(base, active=10, hashsize=262144)
    write_sysctls(base, sample("sysctl_k6.18_netns.txt"))
    write(base, "proc/net/stat/nf_conntrack", sample("stat_nf_conntrack_k6.18.txt"))
    return base


def root_idle_6x(base: Path) -> Path:
    base_root(base, hashsize=262144)
    text = (
        sample("sysctl_k6.18_netns.txt")
        .replace("nf_conntrack_count = 10", "nf_conntrack_count = 0")
        .replace("nf_conntrack_udp_timeout = 120", "nf_conntrack_udp_timeout = 30")
    )
    write_sysctls(base, text)
    write(base, "proc/net/stat/nf_conntrack", stat_rows(STAT_HEADER_6X, [{}, {}]))
    return base


def root_near_full_with_drops(base: Path) -> Path:
    """tengine host: 65422 of 65536 (old 4:1 default), drops and early drops."""
    base_root(base, release="4.4.0-1052-aws", mem_total=8 * GIB, active=65422)
    write_sysctls(base, sample("sysctl_moooofly_lls_tengine_near_full.txt"))
    rows = [
        {
            "entries": 65422,
            "searched": 10,
            "found": 5,
            "drop": 1200,
            "early_drop": 300,
            "insert_failed": 7,
            "search_restart": 1,
        },
        {"entries": 65422, "found": 2, "drop": 34, "early_drop": 12, "insert_failed": 0},
    ]
    write(base, "proc/net/stat/nf_conntrack", stat_rows(STAT_HEADER_PRE_5_10, rows))
    return base


def root_pre_5_10(base: Path) -> Path:
    """OpenStack compute (5.4): node_exporter's pre-5.10 stat header."""
    base_root(base, release="5.4.0-77-generic", mem_total=32 * GIB, active=1498)
    write_sysctls(base, sample("sysctl_hotsos_openstack_compute.txt"))
    write(base, "proc/net/stat/nf_conntrack", sample("stat_nf_conntrack_node_exporter.txt"))
    return base


def root_legacy_ip_conntrack(base: Path) -> Path:
    """A 2.6.18-era kernel: ip_conntrack sysctls and 16-column statistics."""
    base_root(
        base,
        release="2.6.18-400.el5",
        mem_total=4 * GIB,
        slab="ip_conntrack",
        objsize=304,
        active=5000,
        module="ip_conntrack",
        hashsize=8192,
    )
    prefix = "proc/sys/net/ipv4/netfilter/ip_conntrack_"
    for key, value in {
        "count": 5000,
        "max": 65536,
        "buckets": 8192,
        "tcp_timeout_established": 432000,
        "tcp_timeout_time_wait": 120,
        "udp_timeout": 30,
        "udp_timeout_stream": 180,
        "generic_timeout": 600,
        "icmp_timeout": 30,
        "tcp_timeout_close_wait": 3600,
    }.items():
        write(base, f"{prefix}{key}", f"{value}\n")
    rows = [{"entries": 5000, "searched": 100, "found": 50, "drop": 0, "early_drop": 0}] * 4
    write(base, "proc/net/stat/ip_conntrack", stat_rows(STAT_HEADER_LEGACY, rows))
    return base


def root_no_procfs(base: Path, *, with_conntrack_s: bool = True) -> Path:
    """CONFIG_NF_CONNTRACK_PROCFS off: no /proc/net/stat; `conntrack -S` captured."""
    base_root(base, release="5.4.0-77-generic", mem_total=32 * GIB)
    write_sysctls(base, sample("sysctl_hotsos_openstack_compute.txt"))
    if with_conntrack_s:
        write(base, "cmd/conntrack_-S.txt", sample("conntrack_S_hotsos_openstack.txt"))
    return base


def root_no_conntrack(base: Path) -> Path:
    """nf_defrag_ipv6 loaded but not nf_conntrack (only frag6 sysctls)."""
    base_root(base, slab=None, module=None)
    write_sysctls(base, sample("sysctl_hotsos_vault_no_nf_conntrack.txt"))
    return base


NEIGH_STAT_HEADER = (
    "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast "
    "rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls"
)


def write_neighbours(
    base: Path,
    family: str,
    entries: int,
    *,
    table_fulls: int = 0,
    thresholds: tuple[int, int, int] = (128, 512, 1024),
) -> Path:
    """One neighbour table as /proc shows it: stat/{arp,ndisc}_cache (2 CPUs) and gc_*."""
    name = "arp_cache" if family == "ipv4" else "ndisc_cache"
    rows = [{"entries": entries, "table_fulls": table_fulls}, {"entries": entries}]
    write(base, f"proc/net/stat/{name}", stat_rows(NEIGH_STAT_HEADER, rows))
    keys = ("gc_thresh1", "gc_thresh2", "gc_thresh3")
    for key, value in (*zip(keys, thresholds, strict=True), ("gc_stale_time", 60)):
        write(base, f"proc/sys/net/{family}/neigh/default/{key}", f"{value}\n")
    return base


def root_gateway_neighbours(base: Path) -> Path:
    """A NAT gateway for many clients: 1,000 ARP entries, 37 refused at gc_thresh3
    1,024, and a quiet IPv6 table."""
    root_k618_sample(base)
    write_neighbours(base, "ipv4", 1000, table_fulls=37)
    write_neighbours(base, "ipv6", 3)
    return base
