"""Deciding, from one tick's observations, whom to block: pure, with bounded memory.

Inputs per namespace and tick: a :class:`Window` of new entries counted per
source address, per IPv4 /24 and per IPv6 /64 (each a bounded heavy-hitter
sketch), the table's count and max, and, when the table was scanned this
tick, the entries held per source.  Output: :class:`Decision` values, one
per source or network that crossed a rule, each with its evidence and what
is done about it (``block``, ``would-block`` in a dry run, or why not:
``allowlisted``, ``protected``, ``rate-capped``).

The checks of the allowlist and of the protected addresses (loopback, the
host's addresses, gateways, the SSH client) are made at every decision,
against the lists the caller read for this tick, never from a cache of
earlier answers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctguard.guard.policy import NetnsPolicy, Network
from ctguard.guard.sketch import HeavyHitters

SIGNAL_SOURCE = "new-flows-source"
SIGNAL_NET24 = "new-flows-net24"
SIGNAL_NET64 = "new-flows-net64"
SIGNAL_SHARE = "table-share"

ACTION_BLOCK = "block"
ACTION_WOULD_BLOCK = "would-block"
ACTION_ALLOWLISTED = "allowlisted"
ACTION_PROTECTED = "protected"
ACTION_RATE_CAPPED = "rate-capped"

REPORT_QUIET = 60.0  # a source not blocked is reported again at most this often


def network_of(packed: bytes, prefix: int | None = None) -> Network:
    """The network (a /32 or /128 by default) of a packed address."""
    address = ipaddress.ip_address(packed)
    length = prefix if prefix is not None else address.max_prefixlen
    return ipaddress.ip_network(f"{address}/{length}", strict=False)


class Window:
    """New entries seen in one tick, by source, /24 and /64, in bounded memory."""

    __slots__ = ("events", "lost", "net24", "net64", "sources")

    def __init__(self, capacity: int) -> None:
        self.sources = HeavyHitters(capacity)
        self.net24 = HeavyHitters(capacity)
        self.net64 = HeavyHitters(capacity)
        self.events = 0
        self.lost = False  # the kernel dropped events (ENOBUFS): counts are lower bounds

    def add(self, packed: bytes) -> None:
        self.events += 1
        self.sources.add(packed)
        if len(packed) == 4:
            self.net24.add(packed[:3])
        else:
            self.net64.add(packed[:8])


@dataclass(frozen=True)
class TableScan:
    """Entries held per source, from a (possibly budget-cut) read of the table."""

    holders: tuple[tuple[bytes, int], ...]  # (packed source, entries), largest first
    scanned: int
    complete: bool


@dataclass(frozen=True)
class Observation:
    netns: str
    seconds: float  # the window's length
    window: Window
    count: int | None
    max: int | None
    scan: TableScan | None = None


@dataclass(frozen=True)
class Protected:
    network: Network
    why: str
    allowlisted: bool = False  # from the policy's allowlist (else: the host's own)


@dataclass(frozen=True)
class Decision:
    netns: str
    target: str  # canonical CIDR
    signal: str
    seen: float  # rate per second, or share of the table
    threshold: float
    action: str
    duration: float | None  # seconds, when blocking
    repeat: int  # earlier bans of this target remembered
    evidence: dict[str, Any] = field(default_factory=dict)
    why_not: str = ""
    first_sign: float | None = None  # start of the first tick the rule was crossed in

    @property
    def blocks(self) -> bool:
        return self.action == ACTION_BLOCK


def protection(network: Network, protected: Sequence[Protected]) -> Protected | None:
    for item in protected:
        if item.network.version == network.version and network.overlaps(item.network):
            return item
    return None


def _covered(network: Network, active: Sequence[Network]) -> bool:
    return any(
        a.version == network.version and network.subnet_of(a)  # type: ignore[arg-type]
        for a in active
    )


def ban_duration(policy: NetnsPolicy, repeat: int) -> float:
    """duration * factor ^ repeat, capped at max_duration."""
    seconds = policy.ban.duration
    for _ in range(repeat):
        seconds *= policy.ban.escalation_factor
        if seconds >= policy.ban.max_duration:
            return policy.ban.max_duration
    return min(seconds, policy.ban.max_duration)


@dataclass
class Budget:
    """The bans-per-minute cap, over every namespace: times of recent bans."""

    per_minute: int
    recent: list[float] = field(default_factory=list)

    def take(self, now: float) -> bool:
        self.recent = [t for t in self.recent if now - t < 60.0]
        if len(self.recent) >= self.per_minute:
            return False
        self.recent.append(now)
        return True


class Detector:
    """One namespace's memory between ticks: streaks above a rate, recent reports.

    Both are bounded: a streak (and when it began) exists only for a key that was above its rate
    in the last tick (at most the sketch's size), and a report note expires
    after REPORT_QUIET seconds.
    """

    def __init__(self) -> None:
        self.streaks: dict[tuple[str, bytes], int] = {}
        self.since: dict[tuple[str, bytes], float] = {}  # when each streak began
        self.quiet: dict[str, float] = {}

    def decide(
        self,
        obs: Observation,
        policy: NetnsPolicy,
        *,
        now: float,
        protected: Sequence[Protected] | Callable[[], Sequence[Protected]],
        active: Sequence[Network],
        repeats: dict[str, int],
        budget: Budget,
        dry_run: bool,
    ) -> list[Decision]:
        """The decisions of this tick (``repeats``: earlier bans per target CIDR).

        ``protected`` may be a function: it is called (once) only when a rule
        was crossed, so a quiet tick costs no reading of the host's addresses.
        """
        self.quiet = {k: t for k, t in self.quiet.items() if t > now}
        detect = policy.detect
        seconds = max(obs.seconds, 1e-3)
        window_start = now - seconds
        candidates: list[tuple[Network, str, float, float, dict[str, Any], float]] = []
        streaks: dict[tuple[str, bytes], int] = {}
        since: dict[tuple[str, bytes], float] = {}
        chosen: list[Network] = []

        def over(
            kind: str, sketch: HeavyHitters, threshold: int
        ) -> list[tuple[bytes, float, float]]:
            found = []
            for key, count in sketch.at_least(int(threshold * seconds)):
                assert isinstance(key, bytes)
                streak = self.streaks.get((kind, key), 0) + 1
                streaks[(kind, key)] = streak
                began = self.since.get((kind, key), window_start) if streak > 1 else window_start
                since[(kind, key)] = began
                if streak >= detect.sustain_ticks:
                    found.append((key, count / seconds, began))
            return found

        window = obs.window
        evidence_base: dict[str, Any] = {
            "events": window.events,
            "window_seconds": round(seconds, 3),
            "events_lost": window.lost,
            "count": obs.count,
            "max": obs.max,
        }
        for key, rate, began in over("src", window.sources, detect.new_flows_per_source):
            network = network_of(key)
            chosen.append(network)
            candidates.append(
                (
                    network,
                    SIGNAL_SOURCE,
                    rate,
                    detect.new_flows_per_source,
                    {**evidence_base, "error_bound": window.sources.error},
                    began,
                )
            )
        for kind, sketch, threshold, prefix, signal in (
            ("net24", window.net24, detect.new_flows_per_net24, 24, SIGNAL_NET24),
            ("net64", window.net64, detect.new_flows_per_net64, 64, SIGNAL_NET64),
        ):
            for key, rate, began in over(kind, sketch, threshold):
                network = network_of(key.ljust(4 if prefix == 24 else 16, b"\0"), prefix)
                # what the single sources blocked this tick (or before) already explain
                explained = sum(
                    count / seconds
                    for src, count in window.sources.counts.items()
                    if isinstance(src, bytes)
                    and src[: len(key)] == key
                    and _covered(network_of(src), [*chosen, *active])
                )
                if rate - explained >= threshold:
                    candidates.append(
                        (
                            network,
                            signal,
                            rate,
                            threshold,
                            {**evidence_base, "explained_by_sources": round(explained, 1)},
                            began,
                        )
                    )
        fill = (obs.count / obs.max) if obs.count is not None and obs.max else None
        if obs.scan is not None and fill is not None and fill >= detect.table_fill:
            held_total = max(obs.count or 0, 1)
            for key, held in obs.scan.holders:
                share = held / held_total
                if held >= detect.min_entries and share > detect.table_share:
                    candidates.append(
                        (
                            network_of(key),
                            SIGNAL_SHARE,
                            share,
                            detect.table_share,
                            {
                                **evidence_base,
                                "entries": held,
                                "fill": round(fill, 4),
                                "scanned": obs.scan.scanned,
                                "scan_complete": obs.scan.complete,
                            },
                            window_start,
                        )
                    )
        self.streaks = streaks
        self.since = since
        decisions: list[Decision] = []
        seen: set[str] = set()
        for network, signal, value, limit, evidence, began in candidates:
            target = str(network)
            if target in seen or _covered(network, active):
                continue
            seen.add(target)
            repeat = repeats.get(target, 0)
            if callable(protected):
                protected = protected()
            guard = protection(network, protected)
            action, why_not, duration = ACTION_BLOCK, "", None
            if guard is not None:
                action = ACTION_ALLOWLISTED if guard.allowlisted else ACTION_PROTECTED
                why_not = f"covers {guard.network} ({guard.why})"
            elif dry_run:
                action, duration = ACTION_WOULD_BLOCK, ban_duration(policy, repeat)
            elif not budget.take(now):
                action = ACTION_RATE_CAPPED
                why_not = f"over ban.max_per_minute ({budget.per_minute})"
            else:
                duration = ban_duration(policy, repeat)
            if action != ACTION_BLOCK:
                quiet_key = f"{obs.netns} {target} {action}"
                if quiet_key in self.quiet:
                    continue
                self.quiet[quiet_key] = now + REPORT_QUIET
            decisions.append(
                Decision(
                    obs.netns,
                    target,
                    signal,
                    round(value, 4),
                    limit,
                    action,
                    duration,
                    repeat,
                    evidence,
                    why_not,
                    began,
                )
            )
        return decisions
