"""The guard's pure detection: bounded sketch, thresholds, escalation, cap, protection."""

from __future__ import annotations

import ipaddress
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ctguard.guard.detect import (
    ACTION_ALLOWLISTED,
    ACTION_BLOCK,
    ACTION_PROTECTED,
    ACTION_RATE_CAPPED,
    ACTION_WOULD_BLOCK,
    SIGNAL_NET24,
    SIGNAL_SHARE,
    SIGNAL_SOURCE,
    Budget,
    Detector,
    Observation,
    Protected,
    TableScan,
    Window,
    ban_duration,
)
from ctguard.guard.policy import parse_policy
from ctguard.guard.sketch import HeavyHitters

POLICY = parse_policy(
    "[detect]\nnew_flows_per_source = 100\nnew_flows_per_net24 = 400\nsustain = 2\n"
    "[ban]\nduration = 60\nescalation_factor = 3\nmax_duration = 500\nmax_per_minute = 2\n",
    "t.toml",
).for_netns("srv")


def packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=3000), st.integers(1, 40))
def test_sketch_bounds(stream: list[int], capacity: int) -> None:
    sketch = HeavyHitters(capacity)
    for key in stream:
        sketch.add(key)
    assert len(sketch) <= 2 * capacity + 1
    assert sketch.error <= len(stream) / (capacity + 1)
    for key in set(stream):
        true = stream.count(key)
        estimate = sketch.counts.get(key, 0)
        assert true - sketch.error <= estimate <= true


def test_sketch_memory_stays_bounded_with_a_million_distinct_keys() -> None:
    sketch = HeavyHitters(256)
    heavy = b"\x0a\x00\x00\x01"
    for i in range(1_000_000):
        sketch.add(i.to_bytes(4, "big"))
        if i % 100 == 0:
            sketch.add(heavy)
    assert len(sketch) <= 513
    assert sketch.counts[heavy] >= 10_000 - sketch.error > 0  # the heavy hitter survives


def window_of(counts: dict[str, int]) -> Window:
    window = Window(64)
    items = [packed(a) for a, n in counts.items() for _ in range(n)]
    random.Random(1).shuffle(items)
    for item in items:
        window.add(item)
    return window


def tick(
    detector: Detector,
    counts: dict[str, int],
    *,
    now: float,
    protected: tuple[Protected, ...] = (),
    budget: Budget | None = None,
    dry_run: bool = False,
    repeats: dict[str, int] | None = None,
    scan: TableScan | None = None,
    count: int = 100,
) -> list:
    obs = Observation("srv", 1.0, window_of(counts), count, 1000, scan)
    return detector.decide(
        obs,
        POLICY,
        now=now,
        protected=protected,
        active=(),
        repeats=repeats or {},
        budget=budget or Budget(10),
        dry_run=dry_run,
    )


def test_a_flooder_is_blocked_after_sustain_ticks_and_a_normal_client_never() -> None:
    detector = Detector()
    normal = {"10.9.0.5": 60}
    assert tick(detector, {"10.1.0.7": 150, **normal}, now=1) == []
    decisions = tick(detector, {"10.1.0.7": 150, **normal}, now=2)
    assert [(d.target, d.signal, d.action) for d in decisions] == [
        ("10.1.0.7/32", SIGNAL_SOURCE, ACTION_BLOCK)
    ]
    assert decisions[0].duration == 60
    for t in range(3, 10):
        assert all(d.target != "10.9.0.5/32" for d in tick(detector, normal, now=t))


def test_a_burst_of_one_tick_is_not_sustained() -> None:
    detector = Detector()
    assert tick(detector, {"10.1.0.7": 500}, now=1) == []
    assert tick(detector, {"10.1.0.7": 10}, now=2) == []
    assert tick(detector, {"10.1.0.7": 500}, now=3) == []


def test_allowlisted_and_protected_are_reported_not_blocked() -> None:
    detector = Detector()
    protected = (
        Protected(ipaddress.ip_network("10.1.0.0/24"), "allow.networks", allowlisted=True),
        Protected(ipaddress.ip_network("10.2.0.1/32"), "the default gateway"),
    )
    flood = {"10.1.0.7": 150, "10.2.0.1": 150}
    tick(detector, flood, now=1, protected=protected)
    actions = {d.target: d.action for d in tick(detector, flood, now=2, protected=protected)}
    assert actions == {"10.1.0.7/32": ACTION_ALLOWLISTED, "10.2.0.1/32": ACTION_PROTECTED}
    # reported once, then quiet for a minute
    assert tick(detector, flood, now=3, protected=protected) == []


def test_dry_run_would_block() -> None:
    detector = Detector()
    tick(detector, {"10.1.0.7": 150}, now=1, dry_run=True)
    decisions = tick(detector, {"10.1.0.7": 150}, now=2, dry_run=True)
    assert [d.action for d in decisions] == [ACTION_WOULD_BLOCK]


def test_rate_cap_and_escalation() -> None:
    budget = Budget(2)
    detector = Detector()
    flood = {"10.1.0.7": 150, "10.3.0.7": 150, "10.4.0.7": 150}
    tick(detector, flood, now=1, budget=budget)
    decisions = tick(detector, flood, now=2, budget=budget, repeats={"10.1.0.7/32": 2})
    actions = sorted(d.action for d in decisions)
    assert actions == [ACTION_BLOCK, ACTION_BLOCK, ACTION_RATE_CAPPED]
    first = next(d for d in decisions if d.target == "10.1.0.7/32")
    assert first.duration == 500  # 60 * 3^2 = 540, capped at max_duration
    assert ban_duration(POLICY, 1) == 180


def test_a_spread_flood_from_one_24_blocks_the_network() -> None:
    detector = Detector()
    flood = {f"10.5.0.{i}": 20 for i in range(1, 31)}  # 600/s from the /24, 20/s each
    tick(detector, flood, now=1)
    decisions = tick(detector, flood, now=2)
    assert [(d.target, d.signal) for d in decisions] == [("10.5.0.0/24", SIGNAL_NET24)]


def test_table_share_without_any_new_flows() -> None:
    detector = Detector()
    scan = TableScan(((packed("10.6.0.9"), 5000), (packed("10.9.0.5"), 100)), 5100, True)
    assert tick(detector, {}, now=1, scan=scan, count=500) == []  # fill 0.5 < table_fill
    decisions = Detector().decide(
        Observation("srv", 1.0, Window(8), 9000, 10000, scan),
        POLICY,
        now=1,
        protected=(),
        active=(),
        repeats={},
        budget=Budget(10),
        dry_run=False,
    )
    assert [(d.target, d.signal) for d in decisions] == [("10.6.0.9/32", SIGNAL_SHARE)]
