"""What every scenario shares: the run context, measured phases, checks, the result."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctguard.lab.measure import KernelLogWatch, TableReading, probe, read_table
from ctguard.lab.namespaces import Lab, LabNamespace
from ctguard.lab.remedy import RemedyRun, run_ctguard
from ctguard.lab.topology import GatewayTopology

Extra = dict[str, int | str]
RATELIMIT_WINDOW = 5.5  # net_ratelimit: 10 messages per 5 s (net.core.message_cost/burst)


@dataclass
class PhaseResult:
    """One measured phase on the gateway: counters are deltas over the phase."""

    count: int
    max: int
    drop: int
    early_drop: int
    insert_failed: int
    log_lines: int | None  # None: no kernel ring buffer to read
    probes_ok: int
    probes: int
    extra: Extra = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "max": self.max,
            "drop": self.drop,
            "early_drop": self.early_drop,
            "insert_failed": self.insert_failed,
            "log_lines": self.log_lines,
            "probes_ok": self.probes_ok,
            "probes": self.probes,
            "extra": dict(self.extra),
            "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class Check:
    """One behaviour the scenario expects the kernel to show."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class ScenarioResult:
    name: str
    title: str
    scale: int
    table_max: int
    max_lowered: bool
    remedy: str
    before: PhaseResult
    after: PhaseResult
    remedies: list[RemedyRun]
    checks: list[Check]
    notes: list[str]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "title": self.title,
            "scale": self.scale,
            "table_max": self.table_max,
            "max_lowered": self.max_lowered,
            "remedy": self.remedy,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "remedies": [run.to_dict() for run in self.remedies],
            "checks": [check.to_dict() for check in self.checks],
            "passed": self.passed,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 2),
        }


@dataclass
class Run:
    """A scenario's handle on the lab: topology, scale, measuring and remedies."""

    lab: Lab
    topology: GatewayTopology
    scale: int
    table_max: int
    remedy: str
    log: KernelLogWatch
    probe_attempts: int = 3
    notes: list[str] = field(default_factory=list)
    remedies: list[RemedyRun] = field(default_factory=list)
    progress: Callable[[str], None] = lambda message: None

    @property
    def gateway(self) -> LabNamespace:
        return self.topology.gateway

    @property
    def state_dir(self) -> Path:
        return self.lab.state_dir

    def gateway_inode(self) -> int:
        return self.gateway.ref.inode

    def measure(
        self, load: Callable[[], Extra | None], extra: Callable[[], Extra] | None = None
    ) -> PhaseResult:
        """Run ``load``, probe from the innocent client, and measure the gateway."""
        started = time.monotonic()
        start = read_table(self.gateway)
        self.log.table_full_lines(self.gateway_inode())  # forget older lines
        details: Extra = dict(load() or {})
        innocent = self.topology.client("innocent")
        probes_ok = probe(
            innocent.namespace, self.topology.server_address, attempts=self.probe_attempts
        )
        lines = self._log_lines(start)
        end = read_table(self.gateway)
        if extra is not None:
            details.update(extra())
        return _phase(start, end, self, probes_ok, lines, details, time.monotonic() - started)

    def _log_lines(self, start: TableReading) -> int | None:
        """'table full' lines of this phase; when drops left none, wait out the rate limit.

        The kernel logs at most 10 such lines per 5 s for every net_ratelimit
        user together, so drops right after someone else's can go unlogged;
        one more probe after the window shows whether this table logs.
        """
        if not self.log.available:
            return None
        lines = self.log.table_full_lines(self.gateway_inode())
        if lines == 0 and read_table(self.gateway).drop > start.drop:
            self.progress("drops but no 'table full' line yet: waiting out the kernel's rate limit")
            time.sleep(RATELIMIT_WINDOW)
            innocent = self.topology.client("innocent")
            probe(innocent.namespace, self.topology.server_address, attempts=1)
            lines = self.log.table_full_lines(self.gateway_inode())
        return lines

    def ctguard(self, *args: str) -> RemedyRun:
        self.progress("remedy: ctguard " + shlex.join(args))
        run = run_ctguard(list(args), self.state_dir)
        self.remedies.append(run)
        return run


def _phase(
    start: TableReading,
    end: TableReading,
    run: Run,
    probes_ok: int,
    lines: int | None,
    extra: Extra,
    seconds: float,
) -> PhaseResult:
    return PhaseResult(
        count=end.count,
        max=end.max,
        drop=end.drop - start.drop,
        early_drop=end.early_drop - start.early_drop,
        insert_failed=end.insert_failed - start.insert_failed,
        log_lines=lines,
        probes_ok=probes_ok,
        probes=run.probe_attempts,
        extra=extra,
        seconds=seconds,
    )


def check(name: str, passed: bool, detail: str) -> Check:
    return Check(name, bool(passed), detail)
