"""Shared fixtures: the in-process CLI and fixture roots."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.main import main


@dataclass
class CliResult:
    status: ExitStatus
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    *argv: str, euid: int = 0, stdin: str = "", environ: dict[str, str] | None = None
) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out,
        stderr=err,
        stdin=io.StringIO(stdin),
        stdout_isatty=False,
        euid=euid,
        environ=dict(environ or {}),
    )
    status = main(list(argv), env)
    return CliResult(status, out.getvalue(), err.getvalue())


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli
