"""The environment a command runs in, injectable so tests run the CLI in-process."""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass, field
from typing import TextIO


class ExitStatus(enum.IntEnum):
    """Documented exit codes (docs/exit-codes.md).

    0-3 follow the Nagios plugin convention so `ctguard status` works as a
    check: OK, WARNING, CRITICAL, UNKNOWN.
    """

    OK = 0
    WARN = 1
    CRIT = 2
    UNKNOWN = 3  # could not find out: missing source, no permission, bad input
    CHANGE_FAILED = 4  # a change was attempted and rolled back
    USAGE = 64  # bad command line
    INTERRUPTED = 130


@dataclass
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout_isatty: bool = field(default_factory=lambda: sys.stdout.isatty())
    euid: int = field(default_factory=os.geteuid)
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def is_root(self) -> bool:
        return self.euid == 0

    @property
    def color(self) -> bool:
        return self.stdout_isatty and "NO_COLOR" not in self.environ
