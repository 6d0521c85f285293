"""What every changing command shares: --yes, the journal, crash recovery, root checks.

Dry run is the default; ``--yes`` runs the very same plan through
``ctguard.effects``.  Before any change, change sets left half-done by a
crash are rolled back (they are listed in the dry run too).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.executor import RestoreReport, recover_interrupted
from ctguard.effects.journal import Journal, state_dir_from
from ctguard.effects.slots import System
from ctguard.errors import AccessDenied, UsageError
from ctguard.kernel.root import KernelRoot


def add_change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", action="store_true", help="apply the plan (without it: print it, change nothing)"
    )


def etc_dir(env: Environment) -> Path:
    """Where persistent files go: /etc, or CTGUARD_ETC_DIR (tests, image builds)."""
    return Path(env.environ.get("CTGUARD_ETC_DIR") or "/etc")


def journal_for(env: Environment) -> Journal:
    return Journal(state_dir_from(env.environ))


def live_system(root: KernelRoot) -> System:
    return System(proc=root.proc, sys=root.sys)


def require_live_root(root: KernelRoot, env: Environment, command: str) -> None:
    """--yes changes this host: no bundle, root, and a writable /proc/sys."""
    if not root.is_live:
        raise UsageError(
            f"`{command} --yes` changes this host and cannot be combined with --root",
            hint="without --yes it prints the plan for the captured host",
        )
    if not env.is_root:
        raise AccessDenied(
            f"`{command} --yes` writes kernel settings, which needs root",
            hint=f"run: sudo ctguard {command} ... --yes",
        )
    proc_sys = root.proc / "sys"
    try:
        read_only = bool(os.statvfs(proc_sys).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        raise AccessDenied(
            "/proc/sys is mounted read-only",
            where=str(proc_sys),
            hint="this looks like a container: change conntrack settings on the host, or in "
            "the container runtime's sysctl settings",
        )


def recover_first(journal: Journal, root: KernelRoot) -> list[RestoreReport]:
    """Roll back change sets a crash interrupted (before doing anything new)."""
    return recover_interrupted(journal, live_system(root))


def pending_recovery(journal: Journal) -> list[str]:
    """Interrupted change sets the next --yes will roll back (empty if unreadable)."""
    try:
        return [f"{c.id} ({c.title}, left {c.status})" for c in journal.interrupted()]
    except AccessDenied:
        return []  # a dry run without root: the --yes run (as root) will see them


def restore_status(reports: list[RestoreReport]) -> ExitStatus:
    return ExitStatus.CHANGE_FAILED if any(r.errors for r in reports) else ExitStatus.OK
