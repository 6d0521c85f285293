"""The table profile: totals stay exact when the per-source tallies are pruned."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest
from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.analyze.table_analysis import (
    ANALYZE_SPEC,
    T_PORT_CLASS,
    T_SRC_CLASS,
    build_profile,
    check_table,
    source_subnet,
    subnet_label,
)
from ctguard.kernel.table_chunks import iter_chunks
from ctguard.parse.table_scan import scan_chunks


def is_half_open(e: Any) -> bool:
    """SYN_RECV (never unreplied) or SYN_SENT/SYN_SENT2 with no reply, not ASSURED."""
    if e.proto != "tcp" or e.status == "ASSURED":
        return False
    return e.state == "SYN_RECV" or (e.unreplied and e.state in ("SYN_SENT", "SYN_SENT2"))


def test_unreplied_totals_are_exact_under_pruning() -> None:
    entries = list(generate_entries(3000, 21, v6_share=0.3))
    text = "".join(render_entry(e, "procfs") + "\n" for e in entries)
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=100_000)  # fewer keys than sources
    scan = scan_chunks(spec, iter_chunks(io.BytesIO(text.encode()), 4096))
    profile = build_profile("test", scan)
    assert profile.approximate  # the per-source tallies were pruned
    syn = sum(1 for e in entries if is_half_open(e))
    udp = sum(1 for e in entries if e.proto == "udp" and e.unreplied)
    assert syn and udp
    assert (profile.syn_half_open, profile.udp_unreplied) == (syn, udp)
    assert profile.entries == 3000
    assert sum(profile.by_proto.values()) == 3000


def test_every_total_is_exact_when_a_flood_to_random_ports_fills_the_budget() -> None:
    import random

    pick = random.Random(3)
    lines, expected = [], {"tcp": 0, "udp": 0, "syn": 0, "assured": 0, "nat": 0}
    for i in range(4000):
        port = pick.randrange(1, 65536)
        if i % 4:  # a spoofed SYN flood to random ports
            src = f"198.51.{pick.randrange(256)}.{pick.randrange(1, 255)}"
            lines.append(
                f"ipv4     2 tcp      6 60 SYN_RECV src={src} dst=10.0.0.1 sport=4000 "
                f"dport={port} [UNREPLIED] src=10.0.0.1 dst={src} sport={port} dport=4000 "
                "mark=0 zone=0 use=2"
            )
            expected["tcp"] += 1
            expected["syn"] += 1
        else:  # NATed UDP replies from a server, assured
            lines.append(
                f"ipv4     2 udp      17 170 src=10.0.0.9 dst=192.0.2.7 sport={port} dport=53 "
                f"src=192.0.2.7 dst=203.0.113.1 sport=53 dport={port} [ASSURED] "
                "mark=0 zone=0 use=2"
            )
            expected["udp"] += 1
            expected["assured"] += 1
            expected["nat"] += 1
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=60_000)
    scan = scan_chunks(spec, iter_chunks(io.BytesIO("\n".join(lines).encode()), 4096))
    profile = build_profile("test", scan)
    assert scan.tallies[T_PORT_CLASS].pruned_entries > 0  # the per-port keys were pruned
    assert profile.approximate
    assert (profile.by_proto["tcp"], profile.by_proto["udp"]) == (expected["tcp"], expected["udp"])
    assert profile.by_state["SYN_RECV"] == expected["syn"] == profile.syn_recv
    assert (profile.assured, profile.nat) == (expected["assured"], expected["nat"])
    assert profile.by_flags == {"UNREPLIED": expected["syn"], "ASSURED": expected["assured"]}


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
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=15_000)
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


@pytest.mark.parametrize(("seed", "fmt"), [(5, "procfs"), (6, "conntrack"), (7, "extended")])
def test_the_profile_matches_counts_taken_entry_by_entry(seed: int, fmt: str) -> None:
    """Every ranking and total of the profile, against the same computed from
    the generated entries one by one (addresses in their canonical form)."""
    import ipaddress
    from collections import Counter, defaultdict

    from ctguard.analyze.table_top import rank

    entries = list(generate_entries(4000, seed, v6_share=0.3))
    text = "".join(render_entry(e, fmt) + "\n" for e in entries)
    scan = scan_chunks(ANALYZE_SPEC, iter_chunks(io.BytesIO(text.encode()), 8192))
    profile = build_profile("test", scan, established_timeout=432000)
    assert not profile.approximate

    def address(text: str) -> str:
        return ipaddress.ip_address(text).compressed

    def subnet(text: str) -> str:
        return str(ipaddress.ip_network(f"{text}/{64 if ':' in text else 24}", strict=False))

    syn = [e for e in entries if is_half_open(e)]
    udp = [e for e in entries if e.proto == "udp" and e.unreplied]
    ports: defaultdict[str, set[int | None]] = defaultdict(set)
    for e in entries:
        ports[address(e.src)].add(e.dport)
    assert profile.by_src == rank(Counter(address(e.src) for e in entries), 5)
    assert profile.by_dst == rank(Counter(address(e.dst) for e in entries), 5)
    assert profile.by_src24 == rank(Counter(subnet(address(e.src)) for e in entries), 5)
    assert profile.syn_by_src == rank(Counter(address(e.src) for e in syn), 5)
    assert profile.udp_unreplied_by_src == rank(Counter(address(e.src) for e in udp), 5)
    assert profile.ports_per_src == rank(Counter({k: len(v) for k, v in ports.items()}), 5)
    assert profile.by_dport == rank(Counter((e.proto, e.dport) for e in entries), 5)
    established = [
        e.timeout
        for e in entries
        if e.proto == "tcp" and e.state == "ESTABLISHED" and e.status == "ASSURED" and e.timeout
    ]
    closing = {
        "tcp": {"FIN_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "CLOSE_WAIT"},
        "sctp": {"SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT"},
    }
    assured = [e for e in entries if e.status == "ASSURED"]
    assert profile.assured == len(assured)
    assert profile.assured_closing == sum(e.state in closing.get(e.proto, ()) for e in assured)
    assert profile.established_assured == len(established)
    assert profile.max_established_remaining == max(established)
    idle = [432000 - left for left in established]
    assert profile.established_idle == {
        "idle > 1 day": sum(i >= 86400 for i in idle),
        "idle 1 h - 1 day": sum(3600 <= i < 86400 for i in idle),
        "idle < 1 h": sum(i < 3600 for i in idle),
    }
    assert len(syn) and len(udp) and profile.syn_half_open == len(syn)
    assert profile.syn_recv == sum(e.state == "SYN_RECV" for e in syn)


def test_assured_closing_flows_are_told_apart_from_those_that_only_time_out() -> None:
    """The GC worker evicts ASSURED entries in closing states (tcp, sctp,
    dccp's can_early_drop) once the table has overflowed; nothing evicts
    ASSURED ESTABLISHED or ASSURED UDP entries."""
    tail = "mark=0 zone=0 use=2"

    def tcp(state: str, status: str, port: int) -> str:
        return (
            f"ipv4     2 tcp      6 100 {state} src=10.0.0.1 dst=10.0.0.2 sport={port} dport=80 "
            f"src=10.0.0.2 dst=10.0.0.1 sport=80 dport={port} {status} {tail}"
        )

    lines = [
        *(tcp("ESTABLISHED", "[ASSURED]", 1000 + i) for i in range(3)),
        *(tcp("TIME_WAIT", "[ASSURED]", 2000 + i) for i in range(2)),
        tcp("CLOSE_WAIT", "[ASSURED]", 3000),
        tcp("TIME_WAIT", "", 3001),  # closing but never ASSURED: evictable anyway
        "ipv4     2 tcp      6 100 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=4000 dport=80 "
        f"[UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=80 dport=4000 {tail}",
        "ipv4     2 udp      17 170 src=10.0.0.1 dst=10.0.0.3 sport=5000 dport=53 "
        f"src=10.0.0.3 dst=10.0.0.1 sport=53 dport=5000 [ASSURED] {tail}",
        "ipv4     2 sctp     132 3 SHUTDOWN_SENT src=10.0.0.1 dst=10.0.0.4 sport=6000 "
        f"dport=36412 src=10.0.0.4 dst=10.0.0.1 sport=36412 dport=6000 [ASSURED] {tail}",
    ]
    scan = scan_chunks(ANALYZE_SPEC, iter_chunks(io.BytesIO("\n".join(lines).encode())))
    profile = build_profile("test", scan)
    assert (profile.entries, profile.assured, profile.evictable) == (10, 8, 2)
    assert profile.assured_closing == 4  # 2 TIME_WAIT, 1 CLOSE_WAIT, 1 SHUTDOWN_SENT
    (evictable,) = [f for f in check_table(profile) if f.code == "CT508"]
    assert "of the 8 ASSURED, 4 are closing flows and 4 (40.0% of the table)" in evictable.evidence


def syn_line(state: str, src: str, sport: int, dport: int, *, unreplied: bool, status: str) -> str:
    """A TCP handshake entry as /proc/net/nf_conntrack prints it."""
    flag = " [UNREPLIED]" if unreplied else ""
    mark = f" [{status}]" if status else ""
    return (
        f"ipv4     2 tcp      6 50 {state} src={src} dst=10.0.0.1 sport={sport} dport={dport}"
        f"{flag} src=10.0.0.1 dst={src} sport={dport} dport={sport}{mark} mark=0 zone=0 use=2"
    )


def syn_profile(lines: list[str]) -> Any:
    scan = scan_chunks(ANALYZE_SPEC, iter_chunks(io.BytesIO("\n".join(lines).encode()), 4096))
    return build_profile("test", scan)


def established(count: int) -> list[str]:
    return [
        f"ipv4     2 tcp      6 431000 ESTABLISHED src=192.0.2.{i % 200 + 1} dst=10.0.0.1 "
        f"sport={20000 + i} dport=22 src=10.0.0.1 dst=192.0.2.{i % 200 + 1} sport=22 "
        f"dport={20000 + i} [ASSURED] mark=0 zone=0 use=2"
        for i in range(count)
    ]


def test_answered_syn_flood_from_many_sources_is_named_with_synproxy() -> None:
    """SYN_RECV entries carry no [UNREPLIED]: the server answered each SYN."""
    flood = [
        syn_line(
            "SYN_RECV",
            f"198.51.{i // 250}.{i % 250 + 1}",
            40000 + i,
            443,
            unreplied=False,
            status="",
        )
        for i in range(1500)
    ]
    profile = syn_profile(flood + established(500))
    assert (profile.syn_recv, profile.syn_sent_unreplied, profile.syn_half_open) == (1500, 0, 1500)
    (finding,) = [
        f for f in check_table(profile, source_args=("--netns", "web")) if f.code == "CT502"
    ]
    assert "1,500 half-open entries (75.0%): 1,500 SYN_RECV (answered" in finding.evidence
    assert "unreplied SYN_SENT" not in finding.evidence
    assert "ports: 443 1,500 (100.0%)" in finding.evidence
    assert "SYNPROXY on port 443" in finding.why and "nf_conntrack_tcp_loose=0" in finding.why
    assert "SYN floods: block or SYNPROXY" in finding.why
    # the look covers SYN_RECV: no --unreplied filter, which would leave them all out
    assert finding.next_command == (
        "ctguard top --netns web --state SYN_SENT,SYN_RECV --by src/24,dport"
    )


def test_unanswered_syn_flood_from_one_source_suggests_blocking_it() -> None:
    flood = [
        syn_line("SYN_SENT", "198.51.100.7", 1024 + i, 80, unreplied=True, status="")
        for i in range(1200)
    ]
    profile = syn_profile(flood + established(800))
    assert (profile.syn_recv, profile.syn_sent_unreplied) == (0, 1200)
    (finding,) = [
        f for f in check_table(profile, source_args=("--netns", "gw")) if f.code == "CT502"
    ]
    assert "1,200 unreplied SYN_SENT (no answer)" in finding.evidence
    assert "SYN_RECV" not in finding.evidence and "SYNPROXY" not in finding.why
    assert finding.next_command.startswith(
        "ctguard block 198.51.100.7 --ttl 1h --reason 'SYN flood' --netns gw"
    )
    dump = check_table(profile, source_args=("flood.txt",))  # a dump: only the look
    assert [f.next_command for f in dump if f.code == "CT502"] == [
        "ctguard top flood.txt --state SYN_SENT,SYN_RECV --by src/24,dport"
    ]


def test_replied_syn_sent_and_assured_entries_are_not_half_open() -> None:
    lines = [
        syn_line("SYN_SENT", "198.51.100.8", 1024 + i, 80, unreplied=False, status="")
        for i in range(600)
    ] + [
        syn_line("SYN_RECV", "198.51.100.9", 1024 + i, 80, unreplied=False, status="ASSURED")
        for i in range(600)
    ]
    profile = syn_profile(lines)
    assert profile.syn_half_open == 0
    assert not [f for f in check_table(profile) if f.code == "CT502"]


def test_both_kinds_are_counted_and_said() -> None:
    lines = [
        syn_line("SYN_RECV", f"203.0.113.{i % 200 + 1}", 1024 + i, 443, unreplied=False, status="")
        for i in range(700)
    ] + [
        syn_line("SYN_SENT", f"198.51.100.{i % 200 + 1}", 1024 + i, 8080, unreplied=True, status="")
        for i in range(500)
    ]
    profile = syn_profile(lines)
    (finding,) = [f for f in check_table(profile) if f.code == "CT502"]
    assert "1,200 half-open entries (100.0%): 700 SYN_RECV" in finding.evidence
    assert "and 500 unreplied SYN_SENT (no answer)" in finding.evidence
