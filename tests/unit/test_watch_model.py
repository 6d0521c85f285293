"""`ctguard watch`'s view model: rates, history, verdict, top groups and their change."""

from __future__ import annotations

import io

from ctguard.gather.watch_model import (
    GROUPINGS,
    WATCH_SPEC,
    HeaderModel,
    LogLineTally,
    ReadBudget,
    TopModel,
    rates_between,
    sample_bytes_for,
    sparkline,
    table_read_from,
)
from ctguard.kernel.table_chunks import iter_chunks
from ctguard.model.findings import Severity
from ctguard.model.snapshot import Snapshot
from ctguard.parse.table_scan import ScanResult, scan_chunks


def snapshot(count: int, at: float, drop: int = 0, early: int = 0, maximum: int = 1000) -> Snapshot:
    return Snapshot(
        source="/proc",
        netns=None,
        kernel_release="6.1.0",
        module_loaded=True,
        legacy=False,
        count=count,
        max=maximum,
        buckets=1024,
        counters={"drop": drop, "early_drop": early, "insert_failed": 0},
        counter_source=None,
        mem_total=None,
        slab_caches=None,
        timeouts=(),
        taken_at=1_700_000_000 + at,
        taken_monotonic=at,
    )


def entry(src: str, dport: int, state: str = "ESTABLISHED") -> str:
    return (
        f"ipv4     2 tcp      6 431999 {state} src={src} dst=10.9.0.1 sport=40000 "
        f"dport={dport} src=10.9.0.1 dst={src} sport={dport} dport=40000 [ASSURED] "
        "mark=0 zone=0 use=2\n"
    )


def scan_of(lines: list[str]) -> ScanResult:
    return scan_chunks(WATCH_SPEC, iter_chunks(io.BytesIO("".join(lines).encode())))


def read_of(lines: list[str], at: float = 0.0) -> object:
    return table_read_from(
        "dump",
        scan_of(lines),
        table_count=len(lines),
        sampled=False,
        established_timeout=None,
        read_at=at,
        read_seconds=0.01,
    )


def test_rates_are_per_second_and_unknown_first_or_after_a_reset() -> None:
    first = snapshot(10, 0.0, drop=100)
    assert rates_between(None, first)["drop"] is None
    later = snapshot(10, 2.0, drop=140, early=6)
    rates = rates_between(first, later)
    assert rates["drop"] == 20.0
    assert rates["early_drop"] == 3.0
    assert rates["insert_failed"] == 0.0
    reset = snapshot(10, 3.0, drop=5)  # module reloaded: the counter went back
    assert rates_between(later, reset)["drop"] is None


def test_header_history_is_bounded_and_verdict_follows_the_fill() -> None:
    model = HeaderModel(history=3)
    header = model.update(snapshot(100, 0.0))
    assert header.fill == 0.1
    assert header.verdict < Severity.WARN
    assert header.history["drop"] == ()
    for i in range(1, 6):
        header = model.update(snapshot(950, float(i), drop=10 * i))
    assert header.history["drop"] == (10.0, 10.0, 10.0)
    assert header.verdict == Severity.CRIT
    assert header.count == 950


def test_table_full_lines_are_kept_others_not() -> None:
    model = HeaderModel(log_lines=2)
    tally = LogLineTally(model)
    tally.feed("nf_conntrack: table full, dropping packet")
    tally.feed("eth0: link up")
    tally.feed("nf_conntrack: nf_conntrack: table full, dropping packet")
    tally.feed("nf_conntrack: table full in netns 4026532, dropping packet")
    header = model.update(snapshot(1, 0.0))
    assert header.table_full_total == 3
    assert len(header.table_full) == 2
    assert header.table_full[-1].endswith("in netns 4026532, dropping packet")
    assert tally.counts().table_full == {None: 2, 4026532: 1}


def test_sparkline_scales_to_its_maximum() -> None:
    assert sparkline([0.0, 0.0], 5) == "▁▁"
    assert sparkline([0.0, 5.0, 10.0], 2) == "▅█"
    assert sparkline([1.0, 2.0, 3.0], 0) == ""


def test_top_groups_shares_and_change_since_the_previous_read() -> None:
    model = TopModel(limit=3)
    first = [entry("10.0.0.1", 80)] * 6 + [entry("10.0.0.2", 443)] * 4
    model.update(read_of(first))  # type: ignore[arg-type]
    view = model.view("src")
    assert view is not None
    assert [(r.label, r.count, r.change) for r in view.rows] == [
        ("10.0.0.1", 6, None),
        ("10.0.0.2", 4, None),
    ]
    assert view.rows[0].share == 0.6
    second = first + [entry("10.0.1.7", 80)] * 9
    model.update(read_of(second))  # type: ignore[arg-type]
    view = model.view("src")
    assert view is not None
    assert [(r.label, r.count, r.change) for r in view.rows] == [
        ("10.0.1.7", 9, 9),
        ("10.0.0.1", 6, 0),
        ("10.0.0.2", 4, 0),
    ]
    subnets = model.view("src/24")
    assert subnets is not None
    assert [(r.label, r.count, r.change) for r in subnets.rows] == [
        ("10.0.0.0/24", 10, 0),
        ("10.0.1.0/24", 9, 9),
    ]
    ports = model.view("dport")
    assert ports is not None
    assert [(r.label, r.count) for r in ports.rows] == [("80", 15), ("443", 4)]
    for grouping in GROUPINGS:
        shown = model.view(grouping)
        assert shown is not None and sum(r.count for r in shown.rows) == 19


def test_findings_of_analyze_come_with_the_read() -> None:
    lines = [entry("10.0.0.1", 80)] * 1500 + [entry("10.0.0.2", 80)] * 10
    read = read_of(lines)
    codes = {f.code for f in read.findings}  # type: ignore[attr-defined]
    assert codes, "one source holding 99% of 1,510 entries is a finding"


def test_budget_keeps_reads_rare_when_they_are_expensive() -> None:
    budget = ReadBudget(interval=2.0, share=0.05)
    assert budget.due(0.0)
    budget.spent(finished=1.0, seconds=0.01)
    assert not budget.due(2.9)
    assert budget.due(3.0)
    budget.spent(finished=10.0, seconds=1.0)  # a 1 s read: next one 20 s later
    assert not budget.due(29.0)
    assert budget.due(30.0)


def test_large_live_tables_are_sampled() -> None:
    assert sample_bytes_for(1000, live=True) is None
    assert sample_bytes_for(5_000_000, live=True) is not None
    assert sample_bytes_for(5_000_000, live=False) is None
