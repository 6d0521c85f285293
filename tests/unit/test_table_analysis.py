"""The table profile: totals stay exact when the per-source tallies are pruned."""

from __future__ import annotations

import dataclasses
import io

import pytest
from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.analyze.table_analysis import (
    ANALYZE_SPEC,
    SYN_STATES,
    T_PORT_CLASS,
    T_SRC_CLASS,
    build_profile,
    source_subnet,
    subnet_label,
)
from ctguard.kernel.table_source import iter_chunks
from ctguard.parse.table_scan import scan_chunks


def test_unreplied_totals_are_exact_under_pruning() -> None:
    entries = list(generate_entries(3000, 21, v6_share=0.3))
    text = "".join(render_entry(e, "procfs") + "\n" for e in entries)
    spec = dataclasses.replace(ANALYZE_SPEC, key_cap=300)  # fewer keys than sources
    scan = scan_chunks(spec, iter_chunks(io.BytesIO(text.encode()), 4096))
    profile = build_profile("test", scan)
    assert profile.approximate  # the per-source tallies were pruned
    syn = sum(1 for e in entries if e.proto == "tcp" and e.unreplied and e.state in SYN_STATES)
    udp = sum(1 for e in entries if e.proto == "udp" and e.unreplied)
    assert syn and udp
    assert (profile.syn_unreplied, profile.udp_unreplied) == (syn, udp)
    assert profile.entries == 3000
    assert sum(profile.by_proto.values()) == 3000
    assert not scan.tallies[T_PORT_CLASS].max_error  # the one they come from was not


def test_subnet_totals_survive_pruning_of_their_sources() -> None:
    # a /24 of many one-entry sources (what pruning drops first) and a few heavy ones
    lines = [
        f"ipv4     2 tcp      6 {100 + i % 50} SYN_RECV src=198.51.100.{i % 250 + 1} "
        f"dst=10.0.0.1 sport={1024 + i} dport=80 [UNREPLIED] src=10.0.0.1 "
        f"dst=198.51.100.{i % 250 + 1} sport=80 dport={1024 + i} mark=0 zone=0 use=2"
        for i in range(250)
    ]
    for n in range(40):
        lines += [
            f"ipv4     2 udp      17 20 src=203.0.113.{n} dst=10.0.0.1 sport={2000 + k} "
            f"dport=53 [UNREPLIED] src=10.0.0.1 dst=203.0.113.{n} sport=53 dport={2000 + k} "
            "mark=0 zone=0 use=2"
            for k in range(n + 5)
        ]
    spec = dataclasses.replace(ANALYZE_SPEC, key_cap=40)
    scan = scan_chunks(spec, iter_chunks(io.BytesIO("\n".join(lines).encode()), 2048))
    profile = build_profile("test", scan)
    assert scan.tallies[T_SRC_CLASS].pruned_entries > 0
    assert dict(profile.by_src24) == {"203.0.113.0/24": len(lines) - 250, "198.51.100.0/24": 250}


@pytest.mark.parametrize(
    ("raw", "label"),
    [
        (b"10.1.2.3", "10.1.2.0/24"),
        (b"2001:0db8:0000:0001:0000:0000:0000:0002", "2001:db8:0:1::/64"),
        (b"::ffff:10.1.2.3", "::/64"),
        (b"1.2.3", "1.2.3"),  # not an address: kept as read
    ],
)
def test_source_subnet_labels(raw: bytes, label: str) -> None:
    assert subnet_label(source_subnet((b"tcp", b"", raw, b""))) == label
