"""Options and exit codes of the commands that give a verdict (status, doctor, analyze)."""

from __future__ import annotations

import argparse

from ctguard.analyze.status_checks import Thresholds
from ctguard.cli.env import ExitStatus
from ctguard.errors import UsageError
from ctguard.model.findings import Severity

VERDICT_EXIT = {
    Severity.OK: ExitStatus.OK,
    Severity.INFO: ExitStatus.OK,
    Severity.WARN: ExitStatus.WARN,
    Severity.CRIT: ExitStatus.CRIT,
}


def add_threshold_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warn", type=float, default=75.0, metavar="PCT", help="warn at this fill %% (75)"
    )
    parser.add_argument(
        "--crit", type=float, default=90.0, metavar="PCT", help="crit at this fill %% (90)"
    )


def thresholds_from(args: argparse.Namespace) -> Thresholds:
    if not 0 < args.warn <= args.crit <= 100:
        raise UsageError(f"need 0 < --warn ({args.warn}) <= --crit ({args.crit}) <= 100")
    return Thresholds(warn=args.warn / 100, crit=args.crit / 100)
