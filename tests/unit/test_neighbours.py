"""Neighbour tables: /proc/net/stat/arp_cache parsed, read from a root, judged."""

import pytest

from ctguard.analyze.status_checks import check_neighbours
from ctguard.errors import ParseError
from ctguard.kernel.neighbours import read_neighbour_tables
from ctguard.kernel.root import KernelRoot
from ctguard.model.neighbours import NeighbourTable
from ctguard.parse.neigh_stat import parse_neigh_stat

HEADER = (
    "entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast "
    "rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls"
)
# as this machine's 6.18 kernel prints it (2 CPUs)
ARP = (
    HEADER + "\n00000002 00000254 000001ed 00000000   00000b23 0000016f 00000000   00000000"
    "         00000000         000005f2         00000003       00000000            00000001\n"
    "00000002 000001ad 00000212 00000000   00000ab2 0000010f 00000000   00000000"
    "         00000000         00000000         00000002       00000000            00000004\n"
)


def test_entries_is_the_table_count_and_counters_are_summed():
    stats = parse_neigh_stat(ARP)
    assert stats["entries"] == 2
    assert stats["allocs"] == 0x254 + 0x1AD
    assert (stats["forced_gc_runs"], stats["table_fulls"]) == (5, 5)


def test_bad_file_names_the_line():
    with pytest.raises(ParseError) as err:
        parse_neigh_stat(HEADER + "\n0001 0002\n", source="x")
    assert "x:2" in err.value.where
    with pytest.raises(ParseError):
        parse_neigh_stat("nonsense\n")


def write_root(tmp_path, arp=ARP, thresh3="1024"):
    proc = tmp_path / "proc"
    (proc / "net/stat").mkdir(parents=True)
    (proc / "net/stat/arp_cache").write_text(arp)
    gc = proc / "sys/net/ipv4/neigh/default"
    gc.mkdir(parents=True)
    for key, value in (("gc_thresh1", "128"), ("gc_thresh2", "512"), ("gc_thresh3", thresh3)):
        (gc / key).write_text(value + "\n")
    (gc / "gc_stale_time").write_text("60\n")
    (tmp_path / "sys").mkdir()
    return KernelRoot.from_bundle(tmp_path)


def test_read_from_a_root(tmp_path):
    notes: list[str] = []
    (table,) = read_neighbour_tables(write_root(tmp_path), notes)
    assert (table.family, table.name, table.entries, table.gc_thresh3) == (
        "ipv4",
        "arp_cache",
        2,
        1024,
    )
    assert table.table_fulls == 5 and table.gc_stale_time == 60 and notes == []


def table(entries, thresh3=1024, fulls=0):
    return NeighbourTable("ipv4", "arp_cache", entries, fulls, 0, 128, 512, thresh3, 60)


@pytest.mark.parametrize(
    ("entries", "fulls", "found"),
    [(100, 0, False), (800, 0, True), (100, 3, True), (1030, 0, True)],
)
def test_ct601_near_gc_thresh3_or_refusing(entries, fulls, found):
    class Snap:
        neighbours = (table(entries, fulls=fulls),)

    findings = check_neighbours(Snap())  # type: ignore[arg-type]
    assert bool(findings) == found
    if found:
        assert findings[0].code == "CT601" and "arp_cache" in findings[0].evidence
        assert findings[0].explain == "ctguard explain gc_thresh3"
