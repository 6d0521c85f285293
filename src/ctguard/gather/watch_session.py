"""The live side of `ctguard watch`: what it reads and what its keys change.

One :class:`WatchSession` per view: the namespace shown (switchable from
the namespace list), the header and top models, the table reader and its
budget, and the actions (block, notrack, trace) built and applied with the
very functions `ctguard block|notrack|trace --yes` use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ctguard.analyze.status_checks import Thresholds
from ctguard.effects.journal import Journal, state_dir_from
from ctguard.effects.session import require_live_root
from ctguard.errors import AccessDenied, CtguardError, UsageError
from ctguard.gather import firewall_actions
from ctguard.gather.status import collect_namespace_reports, read_snapshot_in
from ctguard.gather.watch_model import (
    Header,
    HeaderModel,
    ReadBudget,
    TableRead,
    TableReader,
    TopModel,
)
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import Block, NotrackRule
from ctguard.rules.safety import parse_targets

BLOCK_TTL = 3600
BLOCK_TTL_TEXT = "1h"
TRACE_TTL = 600
TRACE_TTL_TEXT = "10m"


@dataclass(frozen=True)
class NamespaceRow:
    ref: NetnsRef | None  # None: this process's own namespace
    label: str
    count: int | None
    max: int | None
    fill: float | None
    verdict: str


@dataclass(frozen=True)
class Action:
    """What a key offers: the plan, and how to apply exactly that request."""

    kind: str  # "block" | "notrack" | "trace"
    subject: str
    plan: Plan
    build: Callable[[float], Plan]
    summary: str = ""  # what the operator decides on, in one line (expiry, reason)


class WatchSession:
    def __init__(
        self,
        root: KernelRoot,
        netns: NetnsRef | None,
        *,
        environ: dict[str, str],
        is_root: bool,
        interval: float,
        thresholds: Thresholds | None = None,
        clock: Callable[[], float] = time.monotonic,
        kernel_log: bool = True,
    ) -> None:
        self.root = root
        self.environ = environ
        self.is_root = is_root
        self.interval = interval
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self._lock = threading.Lock()
        self._follower: object | None = None
        self.log_note = ""
        self.kernel_log = kernel_log
        self.select(netns)

    # --- what is shown -------------------------------------------------------

    def select(self, netns: NetnsRef | None) -> None:
        """Show ``netns`` from now on (fresh history and changes)."""
        with self._lock:
            self.netns = netns
            self.header_model = HeaderModel(self.thresholds)
            self.top = TopModel()
            self.budget = ReadBudget(self.interval)
            self.reader = TableReader(self.root, netns)
            self.last_snapshot: Snapshot | None = None
        self._restart_log()

    @property
    def label(self) -> str:
        return "this namespace" if self.netns is None else self.netns.label

    def _restart_log(self) -> None:
        self.stop()
        if not self.kernel_log or not self.root.is_live:
            return
        from ctguard.gather.kmsg_follow import KmsgFollower
        from ctguard.gather.watch_model import LogLineTally

        follower = KmsgFollower(tally=LogLineTally(self.header_model))
        try:
            follower.start()
        except CtguardError as err:
            self.log_note = f"'table full' lines not followed: {err.what}"
            return
        self._follower = follower

    def stop(self) -> None:
        follower, self._follower = self._follower, None
        if follower is not None:
            from ctguard.gather.kmsg_follow import KmsgFollower

            assert isinstance(follower, KmsgFollower)
            follower.stop()

    def read_header(self) -> Header:
        """A snapshot (small procfs files only: never the table) and the header."""
        snapshot = read_snapshot_in(self.root, self.netns)
        with self._lock:
            self.last_snapshot = snapshot
            return self.header_model.update(snapshot)

    @property
    def can_read_table(self) -> bool:
        return not self.root.is_live or self.is_root

    def table_due(self) -> bool:
        return self.can_read_table and self.budget.due(self.clock())

    def read_table(self) -> TableRead:
        """One read of the table (the caller runs it off the UI thread)."""
        snapshot = self.last_snapshot or read_snapshot_in(self.root, self.netns)
        started = self.clock()
        try:
            read = self.reader.read(snapshot, self.clock)
        finally:
            self.budget.spent(self.clock(), self.clock() - started)
        with self._lock:
            self.top.update(read)
        return read

    def namespaces(self) -> list[NamespaceRow]:
        from ctguard.kernel.netns import current_netns_inode

        own = current_netns_inode()
        rows = []
        for report in collect_namespace_reports(self.root, self.thresholds):
            snap = report.snapshot
            ref = snap.netns
            label = "this namespace" if ref is None or ref.inode == own else ref.label
            rows.append(
                NamespaceRow(
                    ref, label, snap.count, snap.max, report.metrics.fill, report.verdict.label
                )
            )
        return rows

    # --- acting ----------------------------------------------------------------

    @property
    def target(self) -> FirewallTarget:
        return FirewallTarget(self.netns, state_dir_from(self.environ))

    def blocks(self) -> tuple[Block, ...]:
        try:
            return firewall_actions.blocks_in_force(self.target, time.time())
        except CtguardError:
            return ()

    def _need_root(self, what: str) -> None:
        if not self.is_root:
            raise AccessDenied(
                f"{what} changes the firewall, which needs root",
                hint="run: sudo ctguard watch",
            )

    def block_action(self, source: str, reason: str = "") -> Action:
        self._need_root("blocking")
        networks = parse_targets([source])
        target, environ = self.target, self.environ
        why = reason or f"from ctguard watch: top source in {self.label}"

        def build(now: float) -> Plan:
            return firewall_actions.block_plan(
                target, now, networks, ttl=BLOCK_TTL, reason=why, environ=environ
            )

        now = time.time()
        until = time.strftime("%H:%M:%S", time.localtime(now + BLOCK_TTL))
        summary = (
            f"block {source} in {self.label} for {BLOCK_TTL_TEXT} (expires {until}), "
            f"reason: {why}; its entries are deleted"
        )
        return Action("block", source, build(now), build, summary)

    def notrack_action(self, port: int) -> Action:
        self._need_root("NOTRACK")
        if not 1 <= port <= 65535:
            raise UsageError(f"{port} is not a port")
        rule = NotrackRule("any", (port,))
        target, is_root = self.target, self.is_root

        def build(now: float) -> Plan:
            return firewall_actions.notrack_plan(target, now, rule, is_root=is_root)

        summary = f"stop tracking port {port} (tcp and udp, both directions) in {self.label}"
        return Action("notrack", str(port), build(time.time()), build, summary)

    def trace_action(self, src: str | None = None, dport: int | None = None) -> Action:
        self._need_root("tracing")
        target = self.target
        network = str(parse_targets([src])[0]) if src else None

        def build(now: float) -> Plan:
            return firewall_actions.trace_plan(
                target, now, ttl=TRACE_TTL, ttl_text=TRACE_TTL_TEXT, src=network, dport=dport
            )

        subject = src or (f"port {dport}" if dport else "all new connections")
        summary = (
            f"log new connections ({subject}) in {self.label} for {TRACE_TTL_TEXT}, "
            "10 lines/s; rank them with `ctguard logs --trace`"
        )
        return Action("trace", subject, build(time.time()), build, summary)

    def apply(self, action: Action) -> tuple[Plan, str | None]:
        """Apply what was shown, rebuilt against the state of now, journaled."""
        require_live_root(self.root, self.is_root, f"watch: {action.kind}")
        return firewall_actions.apply_firewall_plan(
            self.root, Journal(state_dir_from(self.environ)), action.build, time.time
        )
