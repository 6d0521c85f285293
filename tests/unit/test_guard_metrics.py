"""The guard's metrics (`ctguard guard --listen`): what a scrape shows after decisions,
in Prometheus' conventions (promtool check metrics), beside the exporter's families."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ctguard.gather.collect import Collector
from ctguard.guard.detect import (
    ACTION_BLOCK,
    ACTION_RATE_CAPPED,
    SIGNAL_SOURCE,
    Budget,
    Detector,
    Observation,
    Window,
)
from ctguard.guard.metrics import (
    LATENCY_BUCKETS,
    GuardMetrics,
    add_guard_collectors,
    guard_registry,
)
from ctguard.guard.policy import parse_policy
from ctguard.kernel.root import KernelRoot
from ctguard.render.metrics_http import Serving, bind, landing_page
from tests.fixture_roots import root_near_full_with_drops

POLICY = parse_policy(
    "[detect]\nnew_flows_per_source = 100\nsustain = 2\n[ban]\nmax_per_minute = 1\n", "t.toml"
).for_netns("web")


def flood_tick(detector: Detector, now: float, sources: list[str], budget: Budget) -> list:
    window = Window(64)
    for source in sources:
        for _ in range(150):
            window.add(ipaddress.ip_address(source).packed)
    return detector.decide(
        Observation("web", 1.0, window, 500, 1000),
        POLICY,
        now=now,
        protected=(),
        active=(),
        repeats={},
        budget=budget,
        dry_run=False,
    )


def scrape(metrics: GuardMetrics, tmp_path: Path) -> str:
    collector = Collector(KernelRoot.from_bundle(root_near_full_with_drops(tmp_path)))
    return generate_latest(guard_registry(metrics, collector, None)).decode()


def value(body: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", body, re.M)
    assert match is not None, f"no {series} in the scrape"
    return float(match.group(1))


def test_first_sign_is_the_start_of_the_first_tick_over_the_rate() -> None:
    detector, budget = Detector(), Budget(10)
    assert flood_tick(detector, 100.0, ["10.1.0.7"], budget) == []
    (decision,) = flood_tick(detector, 101.0, ["10.1.0.7"], budget)
    assert decision.first_sign == 99.0  # the window 99..100 was the first over 100/s


def test_a_scrape_after_decisions_shows_them_with_the_exporters_families(
    tmp_path: Path,
) -> None:
    metrics = GuardMetrics()
    metrics.watching("web")
    metrics.watching("idle")
    detector, budget = Detector(), Budget(1)
    flood_tick(detector, 100.0, ["10.1.0.7", "10.1.0.8"], budget)
    decisions = flood_tick(detector, 101.0, ["10.1.0.7", "10.1.0.8"], budget)
    assert sorted(d.action for d in decisions) == [ACTION_BLOCK, ACTION_RATE_CAPPED]
    for decision in decisions:
        metrics.decided(decision.action, decision.signal)
        if decision.action == ACTION_BLOCK:
            metrics.blocked_after(101.3 - decision.first_sign)
    metrics.repaired("web", 2)
    metrics.lost("web", 3)
    metrics.ticked(101.5, {"web": 1, "gone-already": 4})
    body = scrape(metrics, tmp_path)

    decided = 'ctguard_guard_decisions_total{action="%s",signal="%s"}'
    assert value(body, decided % (ACTION_BLOCK, SIGNAL_SOURCE)) == 1
    assert value(body, decided % (ACTION_RATE_CAPPED, SIGNAL_SOURCE)) == 1
    assert value(body, decided % ("would-block", "table-share")) == 0  # known in advance
    assert value(body, 'ctguard_guard_bans_active{netns="web"}') == 1
    assert value(body, 'ctguard_guard_bans_active{netns="idle"}') == 0
    assert "gone-already" not in body  # only watched namespaces have a gauge
    assert value(body, 'ctguard_guard_detection_latency_seconds_bucket{le="2.0"}') == 0
    assert value(body, 'ctguard_guard_detection_latency_seconds_bucket{le="3.0"}') == 1
    assert value(body, "ctguard_guard_detection_latency_seconds_count") == 1
    assert value(body, "ctguard_guard_detection_latency_seconds_sum") == pytest.approx(2.3)
    assert value(body, 'ctguard_guard_reconcile_repairs_total{netns="web"}') == 2
    assert value(body, 'ctguard_guard_reconcile_repairs_total{netns="idle"}') == 0
    assert value(body, 'ctguard_guard_events_lost_total{netns="web"}') == 3
    assert value(body, "ctguard_guard_last_tick_timestamp_seconds") == 101.5
    # the exporter's own families, read from the namespace's kernel at the scrape
    assert value(body, 'ctguard_conntrack_drop_total{netns="host"}') == 1234


def test_a_namespace_that_vanished_keeps_its_counters_not_its_gauge(tmp_path: Path) -> None:
    metrics = GuardMetrics()
    metrics.watching("c1")
    metrics.repaired("c1", 1)
    metrics.gone("c1")
    metrics.ticked(5.0, {"c1": 3})
    body = scrape(metrics, tmp_path)
    assert 'ctguard_guard_bans_active{netns="c1"}' not in body
    assert value(body, 'ctguard_guard_reconcile_repairs_total{netns="c1"}') == 1


def test_latency_buckets_are_cumulative() -> None:
    metrics = GuardMetrics()
    for seconds in (0.1, 1.2, 1.2, 100.0):
        metrics.blocked_after(seconds)
    families = {f.name: f for f in metrics.families()}
    samples = {
        s.labels.get("le"): s.value
        for s in families["ctguard_guard_detection_latency_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert samples["0.25"] == 1 and samples["1.5"] == 3 and samples["60.0"] == 3
    assert samples["+Inf"] == 4 and len(samples) == len(LATENCY_BUCKETS) + 1


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing (package prometheus)"
)
def test_the_scrape_passes_promtool_check_metrics(tmp_path: Path) -> None:
    metrics = GuardMetrics()
    metrics.watching("web")
    metrics.decided(ACTION_BLOCK, SIGNAL_SOURCE)
    metrics.blocked_after(1.1)
    metrics.ticked(10.0, {"web": 1})
    body = scrape(metrics, tmp_path).encode()
    done = subprocess.run(
        ["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_the_server_serves_the_registry_and_stops(tmp_path: Path) -> None:
    registry = CollectorRegistry(auto_describe=False)
    server = bind("127.0.0.1:0", registry, landing_page("ctguard guard", "the guard's metrics"))
    metrics = GuardMetrics()
    metrics.decided(ACTION_BLOCK, SIGNAL_SOURCE)
    collector = Collector(KernelRoot.from_bundle(root_near_full_with_drops(tmp_path)))
    add_guard_collectors(registry, metrics, collector, None)
    serving = Serving(server)
    port = server.server_address[1]
    try:
        base = f"http://127.0.0.1:{port}"
        assert "ctguard guard" in urllib.request.urlopen(base + "/", timeout=10).read().decode()
        body = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        assert (
            value(body, 'ctguard_guard_decisions_total{action="block",signal="new-flows-source"}')
            == 1
        )
    finally:
        serving.stop()
    assert not serving.thread.is_alive()
    assert not any(t.name == "ctguard-metrics" for t in threading.enumerate())
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
