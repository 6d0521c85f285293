"""Run one scenario: set up, load, measure, remedy, measure, tear down."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

from ctguard.errors import CtguardError, UsageError
from ctguard.lab.global_max import current_max, global_change_refusal, set_temporary_max
from ctguard.lab.measure import PROBE_PORT, KernelLogWatch
from ctguard.lab.namespaces import Lab, clean_leftovers, lab_preflight
from ctguard.lab.scenario import Run, ScenarioResult
from ctguard.lab.scenarios import SCENARIOS, ScenarioSpec
from ctguard.lab.topology import build_gateway
from ctguard.lab.traffic import TcpServer

MIN_TABLE = 512


def scenario_spec(name: str) -> ScenarioSpec:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UsageError(
            f"no lab scenario {name!r}",
            hint="choose one of: " + ", ".join(SCENARIOS) + " (`ctguard lab list`)",
        ) from None


def choose_remedy(spec: ScenarioSpec, remedy: str | None) -> str:
    if remedy is None:
        return spec.remedies[0]
    if remedy not in spec.remedies:
        raise UsageError(
            f"scenario {spec.name} has no remedy {remedy!r}",
            hint="its remedies: " + ", ".join(spec.remedies),
        )
    return remedy


def table_size(spec: ScenarioSpec, scale: int | None, host_max: int) -> tuple[int, int]:
    """(scale, table max) for the run; a table max below the host's means lowering it."""
    if not spec.fills_table:
        wanted = scale if scale is not None else spec.default_scale or 0
        limit = spec.max_scale or wanted
        if not 1 <= wanted <= limit:
            raise UsageError(f"--scale for {spec.name} is 1..{limit:,} connections")
        return wanted, host_max
    wanted = scale if scale is not None else (spec.default_scale or host_max)
    wanted = min(wanted, spec.max_scale or wanted)
    if wanted > host_max:
        raise UsageError(
            f"--scale {wanted:,} is above this host's nf_conntrack_max ({host_max:,})",
            hint="the lab never raises the global max to set a scenario up; "
            f"use --scale {host_max:,} or less",
        )
    if wanted < MIN_TABLE:
        raise UsageError(f"--scale must be at least {MIN_TABLE}")
    return wanted, wanted


def raise_open_files_limit() -> None:
    """Real connections need two descriptors each (client and server side)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_scenario(
    name: str,
    *,
    scale: int | None = None,
    remedy: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> ScenarioResult:
    spec = scenario_spec(name)
    chosen = choose_remedy(spec, remedy)
    lab_preflight()
    for leftover in clean_leftovers():
        progress(f"removed {leftover}, left by a run that crashed")
    host_max = current_max()
    scale, table_max = table_size(spec, scale, host_max)
    lowering = table_max < host_max
    if lowering or spec.needs_global(chosen):
        refusal = global_change_refusal()
        if refusal:
            why = f"--scale {scale:,} lowers" if lowering else f"remedy {chosen!r} raises"
            raise CtguardError(
                f"scenario {name}: {why} the global nf_conntrack_max, but {refusal}",
                hint="run it on a test machine whose own table is empty"
                + (f", or without --scale (the real max, {host_max:,})" if lowering else ""),
            )
    raise_open_files_limit()
    started = time.monotonic()
    log = KernelLogWatch()
    try:
        with Lab() as lab:
            progress(f"building the lab (run {lab.run_id})")
            topology = build_gateway(lab, spec.clients)
            if lowering:
                buckets = set_temporary_max(table_max, lab.state_dir)
                progress(f"global nf_conntrack_max {host_max:,} -> {table_max:,} for this run")
            run = Run(lab, topology, scale, table_max, chosen, log, progress=progress)
            if lowering:
                run.notes.append(
                    f"nf_conntrack_max was {table_max:,} (hash {buckets:,}) during the run "
                    f"and is back to {host_max:,}"
                )
            listener = TcpServer(topology.server, topology.server_address, PROBE_PORT).start()
            try:
                before, after, checks = spec.body(run)
            finally:
                listener.stop()
            progress("tearing down")
    finally:
        log.close()
    return ScenarioResult(
        name=spec.name,
        title=spec.title,
        scale=scale,
        table_max=table_max,
        max_lowered=lowering,
        remedy=chosen,
        before=before,
        after=after,
        remedies=run.remedies,
        checks=checks,
        notes=run.notes,
        seconds=time.monotonic() - started,
    )
