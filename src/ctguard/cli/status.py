"""`ctguard status`: the state of connection tracking, cheap enough for every second."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.analyze.status_checks import Thresholds
from ctguard.analyze.status_report import StatusReport, build_status_report
from ctguard.cli.common import (
    add_read_options,
    make_console,
    open_root,
    resolve_netns_option,
    write_json,
)
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import UsageError
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.model.findings import Severity
from ctguard.model.netns_ref import NetnsRef

VERDICT_EXIT = {
    Severity.OK: ExitStatus.OK,
    Severity.INFO: ExitStatus.OK,
    Severity.WARN: ExitStatus.WARN,
    Severity.CRIT: ExitStatus.CRIT,
}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="count, max, buckets, drops, memory and timeouts, with a verdict",
        description="The state of connection tracking. Exit status 0/1/2 = ok/warn/crit "
        "(Nagios convention), 3 = could not tell.",
    )
    add_read_options(parser)
    parser.add_argument(
        "--all-netns",
        action="store_true",
        help="list every network namespace whose table is in use, with its count",
    )
    add_threshold_options(parser)


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


def read_report(root: KernelRoot, netns: NetnsRef | None, thresholds: Thresholds) -> StatusReport:
    from ctguard.kernel.snapshot import read_snapshot

    with entered_netns(netns):
        snapshot = read_snapshot(root, netns)
    return build_status_report(snapshot, thresholds)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    thresholds = thresholds_from(args)
    if args.all_netns:
        from ctguard.cli.status_all_netns import run_all_netns

        if args.netns:
            raise UsageError("--all-netns and --netns exclude each other")
        return run_all_netns(root, thresholds, args, env)
    report = read_report(root, resolve_netns_option(root, args.netns), thresholds)
    if args.json:
        from ctguard.render.status_json import status_json

        write_json(env, status_json(report))
    else:
        from ctguard.render.status_text import render_status

        render_status(make_console(env), report)
    return VERDICT_EXIT[report.verdict]
