"""The one executor: record originals, apply, verify, roll back on any failure.

The same function runs every plan (sysctls, module parameters, files), so
"dry run" is simply not calling it, and every change is undoable the same
way: write back what the journal recorded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from ctguard.effects.journal import ChangeSet, Journal, Step
from ctguard.effects.slots import (
    System,
    missing_dirs,
    normalized,
    precheck_slot,
    read_slot,
    remove_created_dirs,
    reversible,
    same_value,
    slot_label,
    verify_slot,
    wanted_value,
    write_slot,
)
from ctguard.errors import ChangeFailed, CtguardError, Terminated
from ctguard.plan.actions import LoadNftables, Plan


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into an exception while values are being changed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class RestoreReport:
    change: ChangeSet
    restored: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)  # changed by someone else since
    errors: list[str] = field(default_factory=list)


def apply_plan(
    plan: Plan, journal: Journal, system: System, *, unwind_on_signal: bool = True
) -> ChangeSet:
    """Run ``plan``; on any failure put every original back and raise ChangeFailed.

    ``unwind_on_signal``: SIGTERM/SIGHUP during the change undo it (a command
    stopped by its operator). A daemon whose own handlers only note the signal
    passes False: its change completes, and it stops between ticks."""
    # Read and check everything first: a slot that cannot be read, or a ruleset the
    # kernel would refuse, fails before any write.
    steps = [
        Step(action, read_slot(system, action), missing_dirs(action)) for action in plan.actions
    ]
    for action in plan.actions:
        precheck_slot(action)
    change = journal.create(plan.title, steps)
    try:
        with signals_unwind() if unwind_on_signal else contextlib.nullcontext():
            for step in steps:
                wanted = wanted_value(step.action)
                if normalized(step.original) != normalized(wanted):
                    write_slot(system, step.action, wanted)
            problems = verify_steps(system, steps)
            if problems:
                raise ChangeFailed(
                    "the kernel did not keep the new values: " + "; ".join(problems),
                    hint="every value was put back; the kernel may round or clamp it, "
                    "see `ctguard advise` for values it accepts",
                )
    except BaseException as err:
        report = _restore(system, change)
        journal.save(change, "failed")
        if report.errors:
            undo = "; could NOT restore: " + "; ".join(report.errors)
        else:
            undo = "; every original value was restored"
        if isinstance(err, ChangeFailed):
            raise ChangeFailed(err.what + undo, where=err.where, hint=err.hint) from err
        if isinstance(err, CtguardError):
            raise ChangeFailed(
                f"change failed: {err.what}{undo}", where=err.where, hint=err.hint
            ) from err
        if isinstance(err, Terminated | KeyboardInterrupt):
            raise
        raise ChangeFailed(f"change failed: {type(err).__name__}: {err}{undo}") from err
    journal.save(change, "applied")
    return change


def verify_steps(system: System, steps: list[Step]) -> list[str]:
    return [problem for step in steps if (problem := verify_slot(system, step.action))]


def rollback_change(change: ChangeSet, journal: Journal, system: System) -> RestoreReport:
    """Put back the originals of an applied change set (runtime values and files)."""
    journal.save(change, "rolling-back")
    with signals_unwind():
        report = _restore(system, change, detect_drift=True)
    journal.save(change, "rolled-back" if not report.errors else "rollback-failed")
    return report


def recover_interrupted(journal: Journal, system: System) -> list[RestoreReport]:
    """Finish what a crashed run left: restore originals of interrupted change sets."""
    reports = []
    for change in journal.interrupted():
        report = _restore(system, change)
        journal.save(change, "recovered" if not report.errors else "rollback-failed")
        reports.append(report)
    return reports


def _restore(system: System, change: ChangeSet, *, detect_drift: bool = False) -> RestoreReport:
    report = RestoreReport(change)
    for step in reversed(change.steps):
        if not reversible(step.action):
            continue
        label = slot_label(step.action)
        try:
            now = read_slot(system, step.action)
            if same_value(step.action, now, step.original):
                continue
            if (
                detect_drift
                and not isinstance(step.action, LoadNftables)
                and not same_value(step.action, now, wanted_value(step.action))
            ):
                report.drifted.append(f"{label} was changed since (now {_show(now)})")
            write_slot(system, step.action, step.original)
            if not same_value(step.action, read_slot(system, step.action), step.original):
                report.errors.append(f"{label} did not keep {_show(step.original)}")
                continue
            report.restored.append(f"{label} = {_show(step.original)}")
        except CtguardError as err:
            report.errors.append(f"{label}: {err.what}")
    # Once every file is back, the directories the change created go too (deepest first).
    removed, kept = remove_created_dirs(
        [path for step in change.steps for path in step.created_dirs]
    )
    report.restored.extend(f"{path} = (removed: the change created it)" for path in removed)
    report.drifted.extend(kept)
    return report


def _show(value: str | None) -> str:
    if value is None:
        return "(removed)"
    text = normalized(value) or ""
    return repr(text) if len(text) <= 60 else f"(content of {len(value)} bytes)"
