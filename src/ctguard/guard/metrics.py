"""The guard's own metrics (``--listen``), beside the exporter's.

The guard's loop updates a :class:`GuardMetrics` at a few points (a
decision, a block in the kernel, a reconcile repair, the end of a tick);
the HTTP thread reads it at each scrape.  Everything here is plain Python
behind one lock: prometheus-client is imported only when a scrape renders
the families, so a guard without ``--listen`` never loads it.

Names (docs/monitoring.md): ``ctguard_guard_decisions_total{action,
signal}``, ``ctguard_guard_bans_active{netns}``,
``ctguard_guard_detection_latency_seconds`` (histogram),
``ctguard_guard_reconcile_repairs_total{netns}``,
``ctguard_guard_events_lost_total{netns}``,
``ctguard_guard_last_tick_timestamp_seconds``.  Series known in advance
(every action and signal, every watched namespace) exist at 0 from the
first scrape, so ``increase()`` sees the first decision.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, TypeVar

from ctguard.guard.detect import (
    ACTION_ALLOWLISTED,
    ACTION_BLOCK,
    ACTION_PROTECTED,
    ACTION_RATE_CAPPED,
    ACTION_WOULD_BLOCK,
    SIGNAL_NET24,
    SIGNAL_NET64,
    SIGNAL_SHARE,
    SIGNAL_SOURCE,
)

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    from ctguard.gather.collect import Collector
    from ctguard.gather.kmsg_follow import KmsgFollower
    from ctguard.guard.service import Guard

PREFIX = "ctguard_guard_"
_PerNetns = TypeVar("_PerNetns", "GaugeMetricFamily", "CounterMetricFamily")
ACTIONS = (
    ACTION_BLOCK,
    ACTION_WOULD_BLOCK,
    ACTION_ALLOWLISTED,
    ACTION_PROTECTED,
    ACTION_RATE_CAPPED,
)
SIGNALS = (SIGNAL_SOURCE, SIGNAL_NET24, SIGNAL_NET64, SIGNAL_SHARE)
# seconds from first sign to block: around the 1 s tick and the 1.5 s goal
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)


class GuardMetrics:
    """Counters, gauges and one histogram of the guard, safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions = {(a, s): 0 for a in ACTIONS for s in SIGNALS}
        self._bans: dict[str, int] = {}
        self._repairs: dict[str, int] = {}
        self._lost: dict[str, int] = {}
        self._buckets = [0] * len(LATENCY_BUCKETS)
        self._latency_count = 0
        self._latency_sum = 0.0
        self._last_tick: float | None = None

    def watching(self, netns: str) -> None:
        """A namespace is followed: its series start at 0."""
        with self._lock:
            self._bans.setdefault(netns, 0)
            self._repairs.setdefault(netns, 0)
            self._lost.setdefault(netns, 0)

    def gone(self, netns: str) -> None:
        """A namespace vanished: its gauge goes (counters stay, as counters do)."""
        with self._lock:
            self._bans.pop(netns, None)

    def decided(self, action: str, signal: str) -> None:
        with self._lock:
            key = (action, signal)
            self._decisions[key] = self._decisions.get(key, 0) + 1

    def blocked_after(self, seconds: float) -> None:
        """A block is in the kernel ``seconds`` after the first sign of its source."""
        seconds = max(seconds, 0.0)
        with self._lock:
            index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            for i in range(index, len(self._buckets)):
                self._buckets[i] += 1
            self._latency_count += 1
            self._latency_sum += seconds

    def repaired(self, netns: str, bans: int) -> None:
        with self._lock:
            self._repairs[netns] = self._repairs.get(netns, 0) + bans

    def lost(self, netns: str, times: int) -> None:
        with self._lock:
            self._lost[netns] = self._lost.get(netns, 0) + times

    def ticked(self, at: float, bans: dict[str, int]) -> None:
        """End of a tick: the active bans per watched namespace, the time."""
        with self._lock:
            self._last_tick = at
            for netns in self._bans:
                self._bans[netns] = bans.get(netns, 0)

    def families(self) -> Iterator[Metric]:
        """The families of one scrape (prometheus-client imported here, not before)."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self._lock:
            decisions = sorted(self._decisions.items())
            bans = sorted(self._bans.items())
            repairs = sorted(self._repairs.items())
            lost = sorted(self._lost.items())
            buckets = list(self._buckets)
            count, total = self._latency_count, self._latency_sum
            last_tick = self._last_tick
        family = CounterMetricFamily(
            PREFIX + "decisions",
            "decisions of the guard by what was done (block, would-block in a dry run, or why "
            "not: allowlisted, protected, rate-capped) and the rule crossed",
            labels=["action", "signal"],
        )
        for (action, signal), value in decisions:
            family.add_metric([action, signal], float(value))
        yield family
        yield per_netns(
            GaugeMetricFamily(
                PREFIX + "bans_active",
                "the guard's bans in force (not expired, not lifted) per watched namespace",
                labels=["netns"],
            ),
            bans,
        )
        histogram = HistogramMetricFamily(
            PREFIX + "detection_latency_seconds",
            "from the start of the first tick in which a source was over its rule to its block "
            "being in the kernel",
        )
        pairs = zip(LATENCY_BUCKETS, buckets, strict=True)
        cumulative = [(str(float(le)), float(n)) for le, n in pairs]
        histogram.add_metric([], [*cumulative, ("+Inf", float(count))], total)
        yield histogram
        yield per_netns(
            CounterMetricFamily(
                PREFIX + "reconcile_repairs",
                "bans the kernel had lost (reboot, nft flush ruleset, firewall reload) and the "
                "guard put back",
                labels=["netns"],
            ),
            repairs,
        )
        yield per_netns(
            CounterMetricFamily(
                PREFIX + "events_lost",
                "ENOBUFS errors on the new-entry event socket: the kernel dropped events "
                "because its buffer was full; counts of those ticks are lower bounds and a "
                "table read follows",
                labels=["netns"],
            ),
            lost,
        )
        if last_tick is not None:
            yield GaugeMetricFamily(
                PREFIX + "last_tick_timestamp_seconds",
                "when the guard's loop last finished a tick (Unix time); stale = the loop is stuck",
                value=last_tick,
            )


def per_netns(family: _PerNetns, values: list[tuple[str, int]]) -> _PerNetns:
    """``family`` with one sample per namespace of ``values``."""
    for netns, value in values:
        family.add_metric([netns], float(value))
    return family


def add_guard_collectors(
    registry: CollectorRegistry,
    metrics: GuardMetrics,
    collector: Collector,
    follower: KmsgFollower | None,
) -> None:
    """Register in ``registry`` the exporter's families of ``collector``'s namespaces
    (read at each scrape) and the guard's own."""
    from prometheus_client.registry import Collector as PromCollector

    from ctguard.render.metrics_http import ConntrackCollector

    class _GuardCollector(PromCollector):
        def describe(self) -> Iterable[Metric]:
            return []  # registration must not read anything

        def collect(self) -> Iterator[Metric]:
            yield from metrics.families()

    registry.register(ConntrackCollector(collector, follower))
    registry.register(_GuardCollector())


def guard_registry(
    metrics: GuardMetrics, collector: Collector, follower: KmsgFollower | None
) -> CollectorRegistry:
    """A registry of the exporter's families plus the guard's own."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    add_guard_collectors(registry, metrics, collector, follower)
    return registry


def run_listening(
    guard: Guard, server: WSGIServer, registry: CollectorRegistry, log: IO[str]
) -> None:
    """The guard's loop with its metrics served beside it, on ``server`` (bound, not yet
    serving): the server thread and the kernel-log follower stop when the loop does
    (SIGTERM, SIGINT, an error)."""
    from ctguard.errors import CtguardError
    from ctguard.gather.kmsg_follow import KmsgFollower
    from ctguard.render.metrics_http import Serving, shown_address

    follower: KmsgFollower | None = KmsgFollower()
    try:
        assert follower is not None
        follower.open()
    except CtguardError as err:
        log.write(f"ctguard: no 'table full' log counter: {err.what}\n")
        follower = None
    add_guard_collectors(registry, guard.metrics, guard.collector, follower)
    if follower is not None:
        follower.start()
    serving = Serving(server)
    try:
        log.write(f"ctguard: guard metrics on {shown_address(server)}/metrics\n")
        log.flush()
        guard.run()
    finally:
        serving.stop()
        if follower is not None:
            follower.stop()
