"""Distinct destination ports per source under the key budget: every prune
frees bytes (a scan ends in time linear in its input, whatever the keys), a
count is never high, and a scanner's count stays exact.

A port scan once made `analyze` spin for ever: when one source's (source,
port) pairs alone were more than a prune keeps, the prune dropped nothing
and the budget loop tried again.
"""

from __future__ import annotations

import dataclasses
import io
import random
from collections import Counter
from pathlib import Path

from benchmarks.dumpgen import generate_entries, render_entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctguard.analyze.table_analysis import (
    ANALYZE_SPEC,
    T_SRC_DPORT,
    TableThresholds,
    build_profile,
    check_table,
)
from ctguard.analyze.table_top import rank
from ctguard.kernel.table_chunks import iter_chunks
from ctguard.parse.table_scan import ScanResult, Tally, dense_pairs, scan_chunks

SCANNER = "203.0.113.66"
TAIL = "mark=0 zone=0 use=2"


def probe(src: str, port: int, sport: int = 40000) -> str:
    """An unanswered SYN from ``src`` to ``port``, as procfs prints it."""
    return (
        f"ipv4     2 tcp      6 100 SYN_SENT src={src} dst=10.0.0.1 sport={sport} dport={port} "
        f"[UNREPLIED] src=10.0.0.1 dst={src} sport={port} dport={sport} {TAIL}"
    )


def flow(src: str, port: int, sport: int) -> str:
    """An answered flow, as procfs prints it."""
    return (
        f"ipv4     2 tcp      6 431000 ESTABLISHED src={src} dst=10.0.0.1 sport={sport} "
        f"dport={port} src=10.0.0.1 dst={src} sport={port} dport={sport} [ASSURED] {TAIL}"
    )


def scan_lines(lines: list[str], budget: int, chunk: int = 8192) -> ScanResult:
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=budget)
    data = io.BytesIO("\n".join(lines).encode())
    return scan_chunks(spec, iter_chunks(data, chunk))


def true_ports(lines: list[str]) -> Counter[str]:
    pairs = {
        (line.split("src=")[1].split()[0], line.split("dport=")[1].split()[0]) for line in lines
    }
    return Counter(src for src, _ in pairs)


@st.composite
def mixes(draw: st.DrawFn) -> tuple[list[str], int]:
    """A table of adversarial shape: scanners with many ports, many sources
    with a few each, spoofed sources with one each, in any order."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    lines: list[str] = []
    for n in range(draw(st.integers(0, 3))):  # scanners
        lines += [probe(f"203.0.113.{60 + n}", p) for p in range(1, draw(st.integers(1, 1500)))]
    for n in range(draw(st.integers(0, 400))):  # clients, a few ports each
        src = f"10.1.{n >> 8}.{n & 255}"
        lines += [flow(src, p, 1024 + n) for p in range(1, draw(st.integers(1, 60)) + 1)]
    for n in range(draw(st.integers(0, 3000))):  # spoofed: every entry its own source
        lines.append(
            probe(f"198.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}", rng.randrange(1, 65536))
        )
    if not lines:
        lines.append(probe(SCANNER, 80))
    if draw(st.booleans()):
        rng.shuffle(lines)  # hash order, as the kernel prints the table
    return lines, draw(st.integers(12_000, 400_000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mix=mixes())
def test_any_mix_ends_within_the_budget_and_no_count_is_high(mix: tuple[list[str], int]) -> None:
    lines, budget = mix
    scan = scan_lines(lines, budget)
    assert scan.entries == len(lines)
    assert scan.key_bytes_held() <= budget
    truth = true_ports(lines)
    counted = scan.tallies[T_SRC_DPORT].distinct_by_first()
    for raw, ports in counted.items():
        assert ports <= truth[raw.decode()]
    profile = build_profile("test", scan)
    findings = {f.code for f in check_table(profile)}
    if max(truth.values()) < TableThresholds().scan_ports:
        assert "CT504" not in findings  # never a scan that is not there
    if not profile.approximate:
        assert profile.ports_per_src == rank(truth, 5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ports=st.integers(100, 4000),
    clients=st.integers(0, 300),
    spoofed=st.integers(0, 4000),
    seed=st.integers(0, 2**32 - 1),
    budget=st.integers(120_000, 600_000),
)
def test_a_scanner_among_many_sources_is_named_with_its_exact_count(
    ports: int, clients: int, spoofed: int, seed: int, budget: int
) -> None:
    """One source probing many ports among clients with a few ports each and
    spoofed one-entry sources, in any order: the scan is named, with exactly
    the ports probed, whatever the pruning did to the rest."""
    rng = random.Random(seed)
    lines = [probe(SCANNER, p) for p in rng.sample(range(1, 65536), ports)]
    lines += [
        flow(f"10.2.{n >> 8}.{n & 255}", p, 2000 + n) for n in range(clients) for p in (80, 443)
    ]
    lines += [
        probe(f"198.51.{n >> 8 & 255}.{n & 255}", rng.randrange(1, 65536)) for n in range(spoofed)
    ]
    rng.shuffle(lines)
    scan = scan_lines(lines, budget)
    assert scan.key_bytes_held() <= budget
    profile = build_profile("test", scan)
    assert profile.ports_per_src[0] == (SCANNER, ports)
    (scan_finding,) = [f for f in check_table(profile) if f.code == "CT504"]
    assert f"{SCANNER} reaches {ports:,} distinct destination ports" in scan_finding.evidence


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 6), st.integers(0, 200)), max_size=120), max_size=12
    ),
    keeps=st.lists(st.integers(0, 150), min_size=12, max_size=12),
)
def test_every_prune_of_pairs_frees_keys_and_moves_dense_sources_exactly(
    batches: list[list[tuple[int, int]]], keeps: list[int]
) -> None:
    """Pairs in, prunes between batches (any key count to keep, one source or
    many): a prune leaves at most ``keep`` pairs, a source's count never
    exceeds its true one, and one with a bitmap that was never dropped is
    exact."""
    tally = Tally(by_first=True)
    seen: dict[bytes, set[bytes]] = {}
    dropped: set[bytes] = set()
    for batch, keep in zip(batches, keeps, strict=False):
        for src, port in batch:
            key = (b"10.0.0.%d" % src, b"%d" % port)
            tally.counts[key] += 1
            seen.setdefault(key[0], set()).add(key[1])
        before = len(tally.counts)
        firsts = {k[0] for k in tally.counts}
        tally.prune(keep)
        assert len(tally.counts) <= keep if before > keep else len(tally.counts) == before
        dropped |= firsts - {k[0] for k in tally.counts} - set(tally.exact)
    distinct = tally.distinct_by_first()
    for src, ports in distinct.items():
        assert ports <= len(seen[src])
        if src in tally.exact and src not in dropped:
            assert ports == len(seen[src])
    assert all(len(seen[src]) >= 1 for src in tally.exact)
    assert dense_pairs() > 1


def test_a_port_scan_among_a_busy_table_ends_and_is_named_exactly() -> None:
    """The shape that hung: one source x 60,000 ports among 150,000 entries
    of an ordinary busy host, in hash order, with the real budget."""
    rng = random.Random(26)
    lines = [render_entry(e, "procfs") for e in generate_entries(150_000, 26)]
    lines += [probe(SCANNER, p, 40000 + p % 7) for p in range(1, 60_001)]
    rng.shuffle(lines)
    scan = scan_lines(lines, ANALYZE_SPEC.key_budget, 128 << 10)
    assert scan.entries == 210_000
    assert scan.key_bytes_held() <= ANALYZE_SPEC.key_budget
    profile = build_profile("test", scan)
    assert profile.ports_per_src[0] == (SCANNER, 60_000)
    (finding,) = [f for f in check_table(profile) if f.code == "CT504"]
    assert f"{SCANNER} reaches 60,000 distinct destination ports" in finding.evidence


def test_a_scanner_alone_is_counted_exactly_under_any_budget_that_holds_its_bitmap() -> None:
    """No other source to drop: the prune used to keep all of it, and loop."""
    lines = [probe(SCANNER, p) for p in range(1, 20_001)]
    for budget in (60_000, 250_000, 2_000_000):
        profile = build_profile("test", scan_lines(lines, budget))
        assert profile.ports_per_src == [(SCANNER, 20_000)]


def test_port_bitmaps_come_back_from_worker_processes_whole(tmp_path: Path) -> None:
    """Several processes, each pruning: the bitmaps of a source seen by all
    of them are merged into one count, exact."""
    from ctguard.kernel import range_scan
    from ctguard.kernel.table_source import TableSource, scan_table

    rng = random.Random(5)
    lines = [probe(SCANNER, p) for p in range(1, 30_001)]
    lines += [
        probe(f"198.51.{n >> 8 & 255}.{n & 255}", rng.randrange(1, 65536)) for n in range(9000)
    ]
    rng.shuffle(lines)
    path = tmp_path / "scan.txt"
    path.write_text("\n".join(lines) + "\n")
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=400_000)
    assert path.stat().st_size > 3 * range_scan.BLOCK_BYTES
    scan = scan_table(TableSource(str(path), "file", path=path), spec, workers=3)
    assert scan.entries == len(lines) and scan.tallies[T_SRC_DPORT].exact
    assert build_profile("test", scan).ports_per_src[0] == (SCANNER, 30_000)
