"""Sizing and timeout advice: the math against FACTS.md and real sysctl samples."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ctguard.advise.advice import Evidence, build_advice
from ctguard.advise.misconceptions import corrections
from ctguard.advise.sizing import MaxPeriod, SizingInputs, plan_sizing, round_up_to_page
from ctguard.advise.timeouts import KeepaliveFloor, advise_timeouts, keepalive_floor
from ctguard.analyze.table_analysis import ANALYZE_SPEC, TableProfile
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_snapshot
from ctguard.model.findings import Finding, Severity
from ctguard.model.snapshot import Snapshot
from ctguard.parse.table_scan import ScanResult
from tests.fixture_roots import (
    GIB,
    root_k618_sample,
    root_legacy_ip_conntrack,
    root_near_full_with_drops,
)

MIB = 1024 * 1024


def inputs(**overrides: object) -> SizingInputs:
    values: dict[str, object] = {
        "count": 1000,
        "max": 262144,
        "buckets": 262144,
        "mem_total": 24 * GIB,
        "bytes_per_entry": 384,
        "entry_size_basis": "test",
        "kernel": (6, 18),
    }
    values.update(overrides)
    return SizingInputs(**values)  # type: ignore[arg-type]


def snapshot_of(builder: object, tmp_path: Path) -> Snapshot:
    base = builder(tmp_path / "root")  # type: ignore[operator]
    return read_snapshot(KernelRoot.from_bundle(base))


def profile(entries: int, **fields: object) -> TableProfile:
    result = TableProfile(source="test", entries=entries, scan=ScanResult(spec=ANALYZE_SPEC))
    for name, value in fields.items():
        setattr(result, name, value)
    return result


def test_round_up_to_page_matches_kernel_rounding() -> None:
    assert round_up_to_page(1) == 512
    assert round_up_to_page(512) == 512
    assert round_up_to_page(513) == 1024
    assert round_up_to_page(262144) == 262144


def test_full_table_doubles_max_with_one_to_one_hash_on_modern_kernel() -> None:
    advice = plan_sizing(inputs(count=262000, drops=40))
    assert advice.reached_max and advice.peak == 262144
    assert advice.recommended_max == 524288
    assert advice.recommended_buckets == 524288  # 1:1 on >= 5.15
    assert advice.memory_at_max == 524288 * 384
    assert advice.hash_bytes == 524288 * 8
    assert advice.avg_chain_at_max == pytest.approx(2.0)
    assert any("drop counter 40" in line for line in advice.why)


def test_after_ctguard_raised_max_old_drops_count_at_the_earlier_max() -> None:
    # max raised 262,144 -> 524,288 this boot; drops and 700 lines came before
    when = "2026-11-22T07:20:00+00:00"
    before = MaxPeriod(262144, 700, when, 524288)
    raised = inputs(
        count=1000,
        max=524288,
        buckets=524288,
        drops=40,
        max_periods=(before, MaxPeriod(524288, 0)),
    )
    advice = plan_sizing(raised)
    assert advice.reached_max and advice.peak == 262144
    assert advice.recommended_max == 524288 and not advice.change_max  # not doubled again
    assert f"its max until ctguard set 524,288 at {when}" in advice.why[0]
    assert "700 'table full' log lines at max 262,144" in advice.why[0]
    assert "no 'table full' line since" in advice.why[0]
    # a 'table full' line since the change: full at today's max
    again = plan_sizing(
        inputs(count=1000, max=524288, drops=40, max_periods=(before, MaxPeriod(524288, 3)))
    )
    assert again.peak == 524288 and again.recommended_max == 1048576
    assert "3 'table full' log lines at max 524,288" in again.why[0]
    # drops but no line to place them: the lowest max in force this boot
    unplaced = (MaxPeriod(262144, 0, when, 524288), MaxPeriod(524288, 0))
    lowest = plan_sizing(inputs(count=1000, max=524288, drops=40, max_periods=unplaced))
    assert lowest.reached_max and lowest.peak == 262144
    # nothing full before or since: the count now
    quiet = plan_sizing(inputs(count=1000, max=524288, drops=0, max_periods=unplaced))
    assert not quiet.reached_max and quiet.peak == 1000


def test_budget_is_a_share_of_ram_over_entry_plus_bucket_cost() -> None:
    advice = plan_sizing(inputs(mem_total=GIB, count=100, max=65536, ram_share=0.03))
    budget = int(GIB * 0.03)
    assert advice.budget_bytes == budget
    expected = int(budget / (384 + 8))
    assert advice.budget_max == expected - expected % 512  # 1:1: one page = 512 entries


def test_demand_above_budget_is_capped_and_warned() -> None:
    advice = plan_sizing(inputs(mem_total=GIB, count=60000, max=65536, drops=5, ram_share=0.03))
    assert advice.budget_max is not None
    assert advice.recommended_max == max(advice.budget_max, 65536)
    assert advice.warnings and "exceeds the memory budget" in advice.warnings[0]


def test_enough_room_keeps_the_current_max() -> None:
    advice = plan_sizing(inputs(count=1000))
    assert advice.recommended_max == 262144
    assert not advice.change_max and not advice.change_buckets
    assert any("already covers the demand" in line for line in advice.why)


def test_oversized_max_is_lowered_to_the_budget_but_never_below_demand_or_count() -> None:
    advice = plan_sizing(inputs(mem_total=2 * GIB, max=5_000_000, buckets=5_000_000, count=40000))
    assert advice.budget_max is not None
    assert advice.recommended_max == max(advice.budget_max, 81920, 40000)
    assert advice.recommended_max < 5_000_000
    assert "over the" in advice.warnings[0]


def test_pre_5_15_kernel_keeps_four_to_one_and_legacy_eight_to_one() -> None:
    old = plan_sizing(inputs(kernel=(4, 4), count=65422, max=65536, buckets=16384, drops=1234))
    assert old.ratio == 4
    assert old.recommended_max == 131072
    assert old.recommended_buckets == 32768
    assert old.avg_chain_at_max == pytest.approx(8.0)
    legacy = plan_sizing(inputs(kernel=(2, 6), legacy=True, count=5000, max=8192, buckets=1024))
    assert legacy.ratio == 8
    assert legacy.recommended_buckets == legacy.recommended_max // 8


def test_a_namespace_peak_drives_demand_and_worst_case_counts_every_namespace() -> None:
    counts = (("the host", 10), ("ns-a", 200_000), ("ns-b", 5))
    advice = plan_sizing(inputs(count=10, namespace_counts=counts))
    assert advice.peak == 200_000 and "ns-a" in advice.peak_basis
    assert advice.recommended_max == round_up_to_page(400_000)
    assert advice.namespaces_in_use == 3
    assert advice.worst_case_bytes == 3 * advice.memory_at_max + advice.hash_bytes


def test_keepalive_floor_from_host_values_or_kernel_defaults() -> None:
    assert keepalive_floor(None, None, None).seconds == 7200 + 9 * 75
    assert keepalive_floor(600, 3, 10).seconds == 630


FLOOR = KeepaliveFloor(7875, "defaults")


def test_established_in_seconds_not_hours_is_raised_above_keepalive(tmp_path: Path) -> None:
    snap = snapshot_of(root_k618_sample, tmp_path)
    snap = _with_timeout(snap, "tcp_timeout_established", 180)
    advice = {t.key: t for t in advise_timeouts(snap, None, False, FLOOR)}
    item = advice["tcp_timeout_established"]
    assert item.recommended == 10800  # 7875 s rounded up to the hour
    assert "seconds, not hours" in item.reason


def test_idle_established_entries_justify_one_day(tmp_path: Path) -> None:
    snap = snapshot_of(root_k618_sample, tmp_path)
    table = profile(
        10000,
        by_state=Counter({"ESTABLISHED": 9000}),
        established_idle={"idle > 1 day": 6000, "idle 1 h - 1 day": 1000, "idle < 1 h": 2000},
    )
    item = advise_timeouts(snap, table, False, FLOOR)[0]
    assert item.recommended == 86400 and "6,000" in item.reason
    quiet = profile(10000, by_state=Counter({"ESTABLISHED": 9000}), established_idle={})
    assert advise_timeouts(snap, quiet, True, FLOOR)[0].recommended is None


def test_time_wait_pile_up_and_saving(tmp_path: Path) -> None:
    snap = snapshot_of(root_k618_sample, tmp_path)
    table = profile(10000, by_state=Counter({"TIME_WAIT": 4000}))
    items = {t.key: t for t in advise_timeouts(snap, table, False, FLOOR)}
    assert items["tcp_timeout_time_wait"].recommended == 30
    assert "about 3,000 entries" in items["tcp_timeout_time_wait"].effect  # 4000 x (1 - 30/120)
    assert not items["tcp_timeout_close_wait"].change


def test_unreplied_udp_flood_shortens_udp_timeout(tmp_path: Path) -> None:
    snap = snapshot_of(root_k618_sample, tmp_path)
    snap = _with_timeout(snap, "udp_timeout", 30)
    table = profile(10000, udp_unreplied=8000)
    items = {t.key: t for t in advise_timeouts(snap, table, False, FLOOR)}
    assert items["udp_timeout"].recommended == 10
    assert "NOTRACK" in items["udp_timeout"].effect


def test_legacy_long_close_wait_and_old_udp_stream(tmp_path: Path) -> None:
    snap = snapshot_of(root_legacy_ip_conntrack, tmp_path)
    items = {t.key: t for t in advise_timeouts(snap, None, False, FLOOR)}
    assert items["tcp_timeout_close_wait"].recommended == 60
    assert items["udp_timeout_stream"].recommended == 120
    assert items["tcp_timeout_close_wait"].sysctl.startswith("net.ipv4.netfilter.ip_conntrack_")


def test_corrections_use_this_hosts_numbers() -> None:
    items = {c.claim: c.truth for c in corrections(24 * GIB, 384, (6, 18))}
    classic = next(truth for claim, truth in items.items() if "RAMSIZE" in claim)
    assert f"{24 * GIB // 16384 // 2:,}" in classic and "262,144" in classic
    gb = next(truth for claim, truth in items.items() if "1 GB" in claim)
    assert "24.0 MiB" in gb  # 65536 x 384 B
    assert any("10800" in truth for truth in items.values())


def test_attack_findings_make_raising_max_the_wrong_fix(tmp_path: Path) -> None:
    snap = snapshot_of(root_near_full_with_drops, tmp_path)
    flood = Finding("CT502", Severity.CRIT, "SYN flood", "evidence", "", "ctguard top ...")
    info = Finding("CT508", Severity.INFO, "evictable", "evidence")
    advice = build_advice(snap, Evidence(table_findings=(flood, info)))
    assert [f.code for f in advice.wrong_fix] == ["CT502"]
    assert advice.sizing is not None and advice.sizing.reached_max
    assert advice.global_targets == {"max": 131072, "buckets": 32768}


def _with_timeout(snap: Snapshot, key: str, seconds: int) -> Snapshot:
    from dataclasses import replace

    timeouts = tuple(replace(t, seconds=seconds) if t.key == key else t for t in snap.timeouts)
    return replace(snap, timeouts=timeouts)
