"""`ctguard status`: the state of connection tracking, cheap enough for every second."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.common import (
    add_read_options,
    make_console,
    open_root,
    resolve_netns_option,
    write_json,
)
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.verdict_options import VERDICT_EXIT, add_threshold_options, thresholds_from
from ctguard.errors import AccessDenied, UsageError
from ctguard.gather.status import collect_namespace_reports, read_report
from ctguard.model.findings import Severity


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


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    thresholds = thresholds_from(args)
    if args.all_netns:
        return run_all_netns(args, env)
    report = read_report(root, resolve_netns_option(root, args.netns), thresholds)
    if args.json:
        from ctguard.render.status_json import status_json

        write_json(env, status_json(report))
    else:
        from ctguard.render.status_text import render_status

        render_status(make_console(env), report)
    return VERDICT_EXIT[report.verdict]


def run_all_netns(args: argparse.Namespace, env: Environment) -> ExitStatus:
    """`status --all-netns`: every namespace's share of the (global) max."""
    if args.netns:
        raise UsageError("--all-netns and --netns exclude each other")
    root = open_root(args.root)
    if not root.is_live:
        raise UsageError("--all-netns reads live namespaces and cannot be combined with --root")
    if not env.is_root:
        raise AccessDenied(
            "--all-netns must enter every network namespace, which needs root",
            hint="run as root: sudo ctguard status --all-netns",
        )
    reports = collect_namespace_reports(root, thresholds_from(args))
    verdict = max((r.verdict for r in reports), default=Severity.OK)
    if args.json:
        from ctguard.render.namespaces_json import namespaces_json

        write_json(env, namespaces_json(reports, verdict))
    else:
        from ctguard.render.namespaces_text import render_namespaces

        render_namespaces(make_console(env), reports, verdict)
    return VERDICT_EXIT[verdict]
