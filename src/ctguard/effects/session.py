"""What every change to this host goes through: the live system, the journal's
crash recovery first, and the checks that a change can be made at all.

The faces (the changing commands, the guard, the live view) call these, so a
change made from any of them is journaled and recovered the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ctguard.effects.executor import RestoreReport, recover_interrupted
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.errors import AccessDenied, UsageError
from ctguard.kernel.root import KernelRoot


def etc_dir_from(environ: Mapping[str, str]) -> Path:
    """Where persistent files go: /etc, or CTGUARD_ETC_DIR (tests, image builds)."""
    return Path(environ.get("CTGUARD_ETC_DIR") or "/etc")


def live_system(root: KernelRoot) -> System:
    return System(proc=root.proc, sys=root.sys)


def require_live_root(root: KernelRoot, is_root: bool, command: str) -> None:
    """A change needs this host (no bundle), root, and a writable /proc/sys."""
    if not root.is_live:
        raise UsageError(
            f"`{command} --yes` changes this host and cannot be combined with --root",
            hint="without --yes it prints the plan for the captured host",
        )
    if not is_root:
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
