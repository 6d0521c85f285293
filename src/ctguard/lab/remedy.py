"""Run ctguard's own commands as the remedy, exactly as an operator would.

Each remedy is a separate `ctguard ...` process with the lab run's private
state directory (journal, firewall state) and etc directory, so nothing it
does touches the host's ctguard state or /etc, and the run's close rolls
back whatever it changed outside the lab's namespaces.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ctguard.errors import CtguardError

REMEDY_TIMEOUT = 120.0


@dataclass(frozen=True)
class RemedyRun:
    command: str  # as the operator would type it
    status: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def to_dict(self) -> dict[str, object]:
        return {"command": self.command, "status": self.status, "output": self.output}


def run_ctguard(args: list[str], state_dir: Path) -> RemedyRun:
    environ = dict(os.environ)
    environ["CTGUARD_STATE_DIR"] = str(state_dir)
    environ["CTGUARD_ETC_DIR"] = str(state_dir / "etc")
    environ.pop("CTGUARD_ALLOWLIST", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ctguard", *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=REMEDY_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        command = "ctguard " + shlex.join(args)
        raise CtguardError(f"`{command}` took over {REMEDY_TIMEOUT:.0f} s") from err
    run = RemedyRun("ctguard " + shlex.join(args), done.returncode, done.stdout, done.stderr)
    if done.returncode != 0:
        raise CtguardError(
            f"the remedy `{run.command}` failed (exit {done.returncode})",
            hint=run.output.strip()[-600:],
        )
    return run
