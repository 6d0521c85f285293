"""`ctguard top`/`analyze` on live namespace tables, checked against `conntrack -L`."""

from __future__ import annotations

import re
from collections import Counter

from ctguard.lab.fill import fill_table, synthetic_flows
from ctguard.lab.traffic import send_ip_packet, send_udp, wait_until
from tests.conftest import run_cli


def conntrack_sources(listing: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in listing.splitlines():
        match = re.search(r"\bsrc=(\S+)", line)
        if match:
            counts[match.group(1)] += 1
    return counts


def test_top_netns_matches_conntrack_list(lab):
    ns = lab.add_namespace("top")
    peer = lab.add_namespace("peer")
    lab.link(peer, ns)
    ns.enable_conntrack()
    created, _ = fill_table(ns, synthetic_flows(2000, sources=37))
    assert created == 2000
    assert send_udp(peer, "10.77.0.2", list(range(7000, 7020))) == 20
    assert send_udp(peer, "fd00:77::2", list(range(7000, 7005))) == 5
    assert wait_until(lambda: sum(conntrack_sources(ns.exec(["conntrack", "-L"])).values()) >= 2025)
    expected = conntrack_sources(ns.exec(["conntrack", "-L"]))

    result = run_cli("top", "--netns", ns.name, "--by", "src", "-n", "0", "--json")
    data = result.json()
    assert data["skipped"] == 0
    assert data["entries"] == sum(expected.values())
    assert {g["key"]: g["count"] for g in data["groups"]} == dict(expected)
    assert "fd00:77::1" in {g["key"] for g in data["groups"]}  # procfs prints it expanded

    analysis = run_cli("analyze", "--netns", ns.name, "--json").json()
    assert analysis["entries"] == data["entries"]
    assert analysis["established"]["timeout"] == 432000  # read from the namespace's sysctl


# PPTP's GRE (version 1, key present, PPP payload, call id 0x1a) and an
# SCTP INIT chunk (verification tag 0, initiate tag, window, streams, TSN)
GRE_PPTP = bytes.fromhex("2001880b0000001a")
SCTP_INIT = bytes.fromhex("13881770000000000000000001000014112233440000ffff0001000100000001")


def test_gre_and_sctp_entries_are_entries(lab):
    """procfs prints GRE's timeouts where a state would be; none is a bad line."""
    ns = lab.add_namespace("proto")
    peer = lab.add_namespace("peer")
    lab.link(ns, peer)
    ns.enable_conntrack()
    send_ip_packet(ns, "10.77.0.2", 47, GRE_PPTP)
    send_ip_packet(ns, "10.77.0.2", 132, SCTP_INIT)
    assert wait_until(lambda: len(ns.exec(["conntrack", "-L"]).splitlines()) >= 2)
    assert "stream_timeout=" in ns.exec(["cat", "/proc/net/nf_conntrack"])

    data = run_cli("top", "--netns", ns.name, "--by", "proto,state", "--json").json()
    assert data["skipped"] == 0
    groups = {tuple(g["values"].values()): g["count"] for g in data["groups"]}
    assert groups[("gre", None)] == 1
    assert groups[("sctp", "CLOSED")] == 1


def test_doctor_table_section_samples_a_table_above_its_budget(lab, monkeypatch):
    from ctguard.gather import table as doctor_table
    from ctguard.gather.status import read_snapshot_in
    from ctguard.kernel.root import KernelRoot

    ns = lab.add_namespace("sample")
    ns.enable_conntrack()
    created, _ = fill_table(ns, synthetic_flows(3000, sources=50))
    assert created == 3000
    root = KernelRoot.live()
    snapshot = read_snapshot_in(root, ns.ref)
    full = doctor_table.table_section(root, snapshot, is_root=True)
    assert not full.sampled and full.profile is not None and full.profile.entries == 3000
    # The same table over a (lowered) budget: only a sample of its start is read.
    monkeypatch.setattr(doctor_table, "FULL_READ_ENTRIES", 1000)
    monkeypatch.setattr(doctor_table, "SAMPLE_ENTRIES", 500)
    sampled = doctor_table.table_section(root, snapshot, is_root=True)
    assert sampled.sampled and sampled.profile is not None
    assert 0 < sampled.profile.entries < 3000
    assert f"a sample of {sampled.profile.entries:,} of 3,000 entries" in sampled.note
    assert sampled.profile.scan.skipped.count == 0  # cut at a line boundary, nothing garbled
