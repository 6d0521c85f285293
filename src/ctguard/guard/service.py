"""The guard's loop: read every tick, decide, block through the plan/effects path, reconcile.

Per tick and namespace it reads what `ctguard status` reads (the collection
round of ``gather.collect``: count, max, per-CPU counters; never the
table), drains the new-entry events into a fresh bounded :class:`Window`,
and lets :class:`Detector` decide.  The table itself is read (a budgeted
dump) once at start and then only under pressure: when the fill reaches
``detect.table_fill``, the drop counter moved or events were lost, at most
every ``detect.scan_interval``.

A block is recorded in the database first (``pending``), then loaded as a
block of ctguard's firewall state (the same table, journal and undo as
`ctguard block`), then marked ``applied``.  The reconcile pass (at start and
every ``service.reconcile_interval``) compares the database with the state
file and the kernel's sets and puts back, in one transaction per
namespace, every active ban the kernel lost; a ban the operator removed
with `ctguard unblock` is marked ``lifted`` instead.
"""

from __future__ import annotations

import functools
import json
import select
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from ctguard.effects.commands import run_tool
from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import Journal
from ctguard.effects.session import live_system, recover_first
from ctguard.errors import CtguardError, Terminated
from ctguard.gather.collect import Collector
from ctguard.gather.firewall_actions import RulesReader
from ctguard.guard.detect import (
    ACTION_BLOCK,
    Budget,
    Decision,
    Detector,
    Observation,
    Protected,
    TableScan,
    Window,
)
from ctguard.guard.metrics import GuardMetrics
from ctguard.guard.policy import Policy, parse_policy
from ctguard.guard.sketch import HeavyHitters
from ctguard.guard.state import (
    STATUS_APPLIED,
    STATUS_LIFTED,
    STATUS_PENDING,
    BanRow,
    GuardDb,
    db_path,
)
from ctguard.kernel.ctevents import NewEntryEvents, count_sources
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.model.collection import NetnsSample
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import DeleteEntries, Plan
from ctguard.plan.firewall import FirewallTarget, load_firewall_state, plan_firewall, with_backend
from ctguard.rules import safety
from ctguard.rules.backends.nft import TABLE
from ctguard.rules.model import Block, merge_blocks, parse_network

REASON_PREFIX = "guard:"
DRAIN_EVERY = 0.05  # seconds between drains of the event sockets while events come


def load_policy(path: Path) -> Policy:
    """The policy in ``path``; a missing file is the default policy."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Policy(source=f"{path} (absent: defaults)")
    except OSError as err:
        raise CtguardError(
            f"cannot read the guard's policy: {err.strerror}", where=str(path)
        ) from err
    return parse_policy(text, str(path))


def log_line(fields: dict[str, Any]) -> str:
    """One key=value line; values with spaces are quoted."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if not text or any(c in text for c in ' "='):
            text = json.dumps(text)
        parts.append(f"{key}={text}")
    return "ctguard-guard: " + " ".join(parts)


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass
class Watch:
    """One namespace followed by the guard."""

    label: str
    netns: NetnsRef | None
    events: NewEntryEvents | None
    detector: Detector = field(default_factory=Detector)
    last_drop: int | None = None
    last_scan: float = -1e18
    last_tick: float = 0.0
    unverified: dict[int, float] = field(default_factory=dict)  # ban id -> applied at
    window: Window | None = None  # events drained since the last tick


def _nft_elements(netns: NetnsRef | None) -> tuple[set[str], int] | None:
    """CIDRs in ctguard's block sets and the packets their rules dropped; None: no table."""
    if shutil.which("nft") is None:
        return None
    done = run_tool(["nft", "-j", "list", "table", *TABLE.split()], netns)
    if done.returncode != 0:
        return None
    elements: set[str] = set()
    dropped = 0
    for item in json.loads(done.stdout).get("nftables", []):
        if "set" in item and item["set"].get("name") in ("block4", "block6"):
            for elem in item["set"].get("elem", []):
                value = elem["elem"]["val"] if isinstance(elem, dict) and "elem" in elem else elem
                if isinstance(value, dict) and "prefix" in value:
                    value = f"{value['prefix']['addr']}/{value['prefix']['len']}"
                elements.add(str(parse_network(str(value))))
        if "rule" in item:
            for expr in item["rule"].get("expr", []):
                if "counter" in expr and isinstance(expr["counter"], dict):
                    dropped += int(expr["counter"].get("packets", 0))
    return elements, dropped


class Guard:
    def __init__(
        self,
        *,
        config: Path,
        policy: Policy,
        state_dir: Path,
        environ: dict[str, str],
        log: IO[str],
        specs: tuple[str, ...] = (),
        all_netns: bool = False,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.policy = policy
        self.state_dir = state_dir
        self.environ = environ
        self.log = log
        self.dry_run = dry_run
        self.clock = clock
        self.root = KernelRoot.live()
        self.collector = Collector(self.root, specs=specs, all_netns=all_netns)
        self.db = GuardDb(db_path(state_dir))
        self.journal = Journal(state_dir)
        self.budget = Budget(policy.ban.max_per_minute)
        self.watches: dict[str, Watch] = {}
        self.stopping = False
        self.reload_wanted = False
        self.last_reconcile = -1e18
        self.nft = shutil.which("nft") is not None
        self.metrics = GuardMetrics()  # read by --listen's HTTP thread

    # -- lifecycle ---------------------------------------------------------------------

    def emit(self, **fields: Any) -> None:
        self.log.write(log_line(fields) + "\n")
        self.log.flush()

    def install_signals(self) -> None:
        def stop(signum: int, frame: object) -> None:
            self.stopping = True

        def hup(signum: int, frame: object) -> None:
            self.reload_wanted = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hup)

    def reload(self) -> None:
        self.reload_wanted = False
        try:
            policy = load_policy(self.config)
        except CtguardError as err:
            self.emit(event="reload-refused", config=str(self.config), why=err.message)
            return
        self.policy = policy
        self.budget.per_minute = policy.ban.max_per_minute
        self.emit(event="reloaded", config=str(self.config))

    def run(self, max_ticks: int | None = None) -> None:
        self.install_signals()
        if not self.dry_run:
            with self.journal.locked():
                recover_first(self.journal, self.root)
        self.emit(
            event="start",
            config=self.policy.source,
            dry_run="yes" if self.dry_run else "no",
            tick=self.policy.service.tick,
        )
        ticks = 0
        next_tick = self.clock()
        while not self.stopping and (max_ticks is None or ticks < max_ticks):
            if self.reload_wanted:
                self.reload()
            self.tick()
            self.metrics.ticked(self.clock(), self.bans_in_force())
            ticks += 1
            next_tick += self.policy.service.tick
            delay = next_tick - self.clock()
            if delay > 0:
                self.wait(delay)
            else:
                next_tick = self.clock()
        self.emit(event="stop", bans_left_in_kernel="yes")
        for watch in self.watches.values():
            if watch.events is not None:
                watch.events.close()
        self.db.close()

    # -- between ticks -----------------------------------------------------------------

    def wait(self, seconds: float) -> None:
        """Sleep until the next tick, draining new-entry events as they come.

        A socket's buffer holds some 13,000 events (16 MiB of ~1.3 KiB
        skbs): drained once a tick, a flood faster than that loses the rest
        (ENOBUFS).  Drained at most every DRAIN_EVERY seconds while they
        come, the events keep up to the rate the parsing itself sustains;
        with no events the guard sleeps in poll().
        """
        end = time.monotonic() + seconds
        watches = {w.events.fileno(): w for w in self.watches.values() if w.events is not None}
        poller = select.poll()  # no FD_SETSIZE limit: --all-netns may watch thousands
        for fd in watches:
            poller.register(fd, select.POLLIN)
        while not self.stopping:
            left = end - time.monotonic()
            if left <= 0:
                return
            if not watches:
                time.sleep(left)
                return
            ready = poller.poll(left * 1000)
            for fd, _ in ready:
                self._drain(watches[fd])
            if ready:
                time.sleep(min(DRAIN_EVERY, max(end - time.monotonic(), 0.0)))

    def _drain(self, watch: Watch) -> Window:
        """The namespace's pending events counted into its window of this tick."""
        if watch.window is None:
            watch.window = Window(self.policy.for_netns(watch.label).detect.tracked_sources)
        window = watch.window
        if watch.events is not None:
            overruns = watch.events.overruns
            _, lost = watch.events.drain(window.add)
            if lost:
                window.lost = True
                self.metrics.lost(watch.label, watch.events.overruns - overruns)
        return window

    # -- one tick ----------------------------------------------------------------------

    def bans_in_force(self) -> dict[str, int]:
        """Applied, unexpired bans per namespace."""
        counts: dict[str, int] = {}
        for ban in self.db.active_bans(self.clock()):
            if ban.status == STATUS_APPLIED:
                counts[ban.netns] = counts.get(ban.netns, 0) + 1
        return counts

    def _follow(self, samples: tuple[NetnsSample, ...]) -> None:
        """Open a watch for each namespace that appeared, close those that vanished."""
        present = {s.label for s in samples if s.max is not None}
        for label in list(self.watches):
            if label not in present:
                watch = self.watches.pop(label)
                if watch.events is not None:
                    watch.events.close()
                self.metrics.gone(label)
                self.emit(event="netns-gone", netns=label)
        for sample in samples:
            if sample.label in self.watches or sample.max is None:
                continue
            events = None
            try:
                with entered_netns(sample.netns):
                    events = NewEntryEvents()
            except CtguardError as err:
                self.emit(event="no-events", netns=sample.label, why=err.what)
            self.watches[sample.label] = Watch(sample.label, sample.netns, events)
            self.metrics.watching(sample.label)
            self.emit(event="watching", netns=sample.label)

    def tick(self) -> None:
        collection = self.collector.collect()
        self._follow(collection.samples)
        now = self.clock()
        try:
            self.db.record_samples(now, collection.samples)
        except sqlite3.Error as err:
            # the history is not worth the protection: a full disk must not stop the guard
            self.emit(event="samples-failed", why=str(err))
        blocks: dict[str, list[tuple[Decision, int]]] = {}
        for sample in collection.samples:
            watch = self.watches.get(sample.label)
            if watch is None:
                continue
            policy = self.policy.for_netns(watch.label)
            window = self._drain(watch)
            watch.window = None  # the next tick counts afresh
            if window.lost and watch.events is not None:
                self.emit(event="events-lost", netns=watch.label, overruns=watch.events.overruns)
            seconds = now - watch.last_tick if watch.last_tick else self.policy.service.tick
            watch.last_tick = now
            scan = self._maybe_scan(watch, sample, policy.detect, now, window.lost)
            obs = Observation(watch.label, seconds, window, sample.count, sample.max, scan)
            active = [
                parse_network(b.target) for b in self.db.active_bans(now) if b.netns == watch.label
            ]
            remember = now - policy.ban.remember
            decisions = watch.detector.decide(
                obs,
                policy,
                now=now,
                protected=functools.partial(self._protected, watch, policy.allow.networks),
                active=active,
                repeats=self.db.repeats(watch.label, remember),
                budget=self.budget,
                dry_run=self.dry_run,
            )
            for decision in decisions:
                decision_id = self.db.record(decision, now)
                self.metrics.decided(decision.action, decision.signal)
                until = None if decision.duration is None else now + decision.duration
                self.emit(
                    netns=decision.netns,
                    source=decision.target,
                    signal=decision.signal,
                    seen=decision.seen,
                    threshold=decision.threshold,
                    action=decision.action,
                    until=None if until is None else _utc(until),
                    repeat=decision.repeat,
                    why_not=decision.why_not or None,
                    evidence=json.dumps(decision.evidence, sort_keys=True),
                )
                if decision.action == ACTION_BLOCK and until is not None:
                    ban_id = self.db.add_ban(
                        watch.label,
                        None if watch.netns is None else watch.netns.path,
                        decision.target,
                        now,
                        until,
                        decision_id,
                    )
                    blocks.setdefault(watch.label, []).append((decision, ban_id))
        for label, items in blocks.items():
            self._apply(self.watches[label], items, now)
        if not self.dry_run:
            self._verify(now)
            if now - self.last_reconcile >= self.policy.service.reconcile_interval:
                self.last_reconcile = now
                self.reconcile(now)

    def _protected(self, watch: Watch, allow: tuple[Any, ...]) -> list[Protected]:
        result = [Protected(n, "allow.networks in the guard's policy", True) for n in allow]
        try:
            from ctguard.kernel.host_addresses import read_protected

            host = safety.protected_networks(
                read_protected(watch.netns, self.environ), self.environ
            )
        except CtguardError as err:
            self.emit(event="protected-unread", netns=watch.label, why=err.what)
            host = safety.loopback()
        result += [Protected(p.network, p.why, "allowlist" in p.why) for p in host]
        return result

    def _maybe_scan(
        self, watch: Watch, sample: NetnsSample, detect: Any, now: float, lost: bool
    ) -> TableScan | None:
        drop = (sample.counters or {}).get("drop")
        dropped = drop is not None and watch.last_drop is not None and drop != watch.last_drop
        watch.last_drop = drop
        fill = (sample.count or 0) / sample.max if sample.max else 0.0
        first = watch.last_scan < -1e17
        pressure = fill >= detect.table_fill or dropped or lost
        if not first and not (pressure and now - watch.last_scan >= detect.scan_interval):
            return None
        watch.last_scan = now
        sketch = HeavyHitters(detect.tracked_sources)
        t0 = time.perf_counter()
        try:
            with entered_netns(watch.netns):
                read, complete = count_sources(sketch.add, detect.scan_budget)
        except CtguardError as err:
            self.emit(event="scan-failed", netns=watch.label, why=err.what)
            return None
        self.emit(
            event="scan",
            netns=watch.label,
            entries=read,
            complete="yes" if complete else "no",
            fill=round(fill, 4),
            seconds=round(time.perf_counter() - t0, 3),
        )
        holders = tuple((k, v) for k, v in sketch.top(16) if isinstance(k, bytes))
        return TableScan(holders, read, complete)

    # -- effects -----------------------------------------------------------------------

    def _target(self, netns: NetnsRef | None) -> FirewallTarget:
        return FirewallTarget(netns, self.state_dir)

    def _load(
        self, watch: Watch, wanted: list[Block], now: float, title: str, delete: tuple[str, ...]
    ) -> None:
        """Merge ``wanted`` into ctguard's firewall state of the namespace and load it
        whole; then delete the ``delete`` sources' entries, in a plan of its own: a
        deletion that fails (a huge table past the tool's timeout) leaves the block in
        place, and the entries then expire behind it."""
        target = self._target(watch.netns)
        with self.journal.locked():
            state = with_backend(load_firewall_state(target), "auto", self.nft).live(now)
            blocks, _notes = merge_blocks(state.blocks, tuple(wanted))
            plan = plan_firewall(
                target,
                replace(state, blocks=blocks),
                now,
                title=title,
                reader=RulesReader(watch.netns),
            )
            self._apply_plan(plan, "nothing changed")
            if not delete:
                return
            deletion = Plan(
                f"{title}: delete their entries",
                (DeleteEntries(delete, watch.netns, "the blocked sources' existing entries"),),
            )
            try:
                self._apply_plan(deletion, "the block stays; their entries were not deleted")
            except CtguardError as err:
                self.emit(event="delete-failed", netns=watch.label, why=err.what)

    def _apply_plan(self, plan: Plan, if_interrupted: str) -> None:
        try:
            # the guard's handlers only note SIGTERM/SIGHUP: a ban being put in
            # completes, and the signal is honoured between ticks
            apply_plan(plan, self.journal, live_system(self.root), unwind_on_signal=False)
        except Terminated as err:
            # the executor put the plan's changes back; a ban stays pending for the
            # next reconcile, and the signal is honoured as between ticks
            if str(err) == "SIGHUP":
                self.reload_wanted = True
            else:
                self.stopping = True
            raise CtguardError(f"interrupted by {err}; {if_interrupted}") from err

    def _apply(self, watch: Watch, items: list[tuple[Decision, int]], now: float) -> None:
        policy = self.policy.for_netns(watch.label)
        wanted = [
            Block(d.target, now, now + (d.duration or 0), f"{REASON_PREFIX} {d.signal} {d.seen:g}")
            for d, _ in items
        ]
        targets = tuple(d.target for d, _ in items)
        try:
            self._load(
                watch,
                wanted,
                now,
                f"guard: block {', '.join(targets)} in {watch.label}",
                targets if policy.ban.delete_entries else (),
            )
        except CtguardError as err:
            for _, ban_id in items:
                self.emit(event="block-failed", netns=watch.label, ban=ban_id, why=err.what)
            return  # pending: the next reconcile tries again
        in_kernel = self.clock()
        for decision, ban_id in items:
            if decision.first_sign is not None:
                self.metrics.blocked_after(in_kernel - decision.first_sign)
            self.db.set_status(ban_id, STATUS_APPLIED, now)
            watch.unverified[ban_id] = now
            self.emit(event="blocked", netns=watch.label, source=decision.target, ban=ban_id)

    def _verify(self, now: float) -> None:
        """A ban is verified once its block rule's drop counter has moved."""
        for watch in self.watches.values():
            if not watch.unverified:
                continue
            try:
                found = _nft_elements(watch.netns)
            except CtguardError:
                continue
            if found is None or found[1] == 0:
                for ban_id, at in list(watch.unverified.items()):
                    if now - at > 30:
                        del watch.unverified[ban_id]
                        self.emit(
                            event="not-verified",
                            netns=watch.label,
                            ban=ban_id,
                            why="no packet dropped in 30 s (the source stopped?)",
                        )
                continue
            for ban_id in list(watch.unverified):
                self.db.set_verified(ban_id)
                del watch.unverified[ban_id]
                self.emit(event="verified", netns=watch.label, ban=ban_id, dropped=found[1])

    def reconcile(self, now: float) -> None:
        """Put back the active bans the kernel lost; mark those lifted by hand."""
        by_netns: dict[str, list[BanRow]] = {}
        for ban in self.db.active_bans(now):
            by_netns.setdefault(ban.netns, []).append(ban)
        for label, bans in by_netns.items():
            watch = self.watches.get(label)
            if watch is None:
                continue
            try:
                recorded = {
                    b.network
                    for b in load_firewall_state(self._target(watch.netns)).live(now).blocks
                }
                found = _nft_elements(watch.netns) if self.nft else None
            except CtguardError as err:
                self.emit(event="reconcile-failed", netns=label, why=err.what)
                continue
            in_kernel = found[0] if found is not None else set()
            missing: list[BanRow] = []
            for ban in bans:
                if ban.status == STATUS_APPLIED and ban.target not in recorded:
                    self.db.set_status(ban.id, STATUS_LIFTED, now, "removed from ctguard's state")
                    self.emit(event="lifted-by-hand", netns=label, source=ban.target, ban=ban.id)
                    continue
                if ban.status == STATUS_PENDING or ban.target not in in_kernel:
                    missing.append(ban)
            if not missing:
                continue
            protected = self._protected(watch, self.policy.for_netns(label).allow.networks)
            from ctguard.guard.detect import protection

            keep = []
            for ban in missing:
                guard = protection(parse_network(ban.target), protected)
                if guard is not None:
                    self.db.set_status(ban.id, STATUS_LIFTED, now, f"now protected: {guard.why}")
                    self.emit(
                        event="restore-refused",
                        netns=label,
                        source=ban.target,
                        why=f"covers {guard.network} ({guard.why})",
                    )
                else:
                    keep.append(ban)
            if not keep:
                continue
            wanted = [Block(b.target, b.added, b.expires, b.reason) for b in keep]
            try:
                self._load(watch, wanted, now, f"guard: restore {len(keep)} bans in {label}", ())
            except CtguardError as err:
                self.emit(event="restore-failed", netns=label, why=err.what)
                continue
            for ban in keep:
                self.db.set_status(ban.id, STATUS_APPLIED, now)
                watch.unverified[ban.id] = now
            self.metrics.repaired(label, len(keep))
            self.emit(
                event="restored",
                netns=label,
                bans=len(keep),
                sources=",".join(b.target for b in keep),
            )
