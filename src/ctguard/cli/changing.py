"""What every changing command shares: --yes, the journal, crash recovery, root checks.

Dry run is the default; ``--yes`` runs the very same plan through
``ctguard.effects``.  Before any change, change sets left half-done by a
crash are rolled back (they are listed in the dry run too); the session
itself lives in ``ctguard.effects.session``, shared with the daemons.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects import session
from ctguard.effects.executor import RestoreReport
from ctguard.effects.journal import Journal, state_dir_from
from ctguard.effects.session import live_system, pending_recovery, recover_first
from ctguard.kernel.root import KernelRoot

__all__ = [
    "add_change_options",
    "etc_dir",
    "journal_for",
    "live_system",
    "pending_recovery",
    "recover_first",
    "require_live_root",
    "restore_status",
]


def add_change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yes", action="store_true", help="apply the plan (without it: print it, change nothing)"
    )


def etc_dir(env: Environment) -> Path:
    return session.etc_dir_from(env.environ)


def journal_for(env: Environment) -> Journal:
    return Journal(state_dir_from(env.environ))


def require_live_root(root: KernelRoot, env: Environment, command: str) -> None:
    session.require_live_root(root, env.is_root, command)


def restore_status(reports: list[RestoreReport]) -> ExitStatus:
    return ExitStatus.CHANGE_FAILED if any(r.errors for r in reports) else ExitStatus.OK
