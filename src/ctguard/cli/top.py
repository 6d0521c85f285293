"""`ctguard top`: who and what fills the table (live, a bundle, a file or stdin)."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.analyze.table_query import BASE_DIMENSIONS, parse_dimensions
from ctguard.cli.common import make_console, preload_renderer, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.table_options import (
    add_filter_options,
    add_table_source_options,
    check_strict,
    table_filter_from,
    table_source_from,
)
from ctguard.errors import UsageError
from ctguard.kernel.table_source import reading_started, scan_table


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "top",
        help="top talkers in the conntrack table: by source, destination, port, state, ...",
        description="Count conntrack entries grouped by one or more fields. Reads the live "
        "table (this netns or --netns), a capture bundle (--root), a dump file (.gz too) or "
        "stdin (-). Lines that are not entries are counted and reported, never fatal "
        "(unless --strict).",
    )
    add_table_source_options(parser)
    parser.add_argument(
        "--by",
        default="src",
        metavar="FIELDS",
        help="comma-separated: " + ", ".join(BASE_DIMENSIONS) + "; src/24, dst/64 ... for "
        "subnets (default: src)",
    )
    parser.add_argument(
        "-n", "--limit", type=int, default=10, metavar="N", help="groups to show (0 = all)"
    )
    parser.add_argument("--csv", action="store_true", help="print CSV (all shown groups)")
    add_filter_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.json and args.csv:
        raise UsageError("choose --json or --csv, not both")
    if args.limit < 0:
        raise UsageError("--limit must be 0 (all) or more")
    dims = parse_dimensions(args.by)
    table_filter = table_filter_from(args)
    with reading_started(table_source_from(args, env)) as source:
        # loaded while the kernel prints the live table
        from ctguard.analyze.table_top import build_top, top_scan_spec

        text = not (args.json or args.csv)
        later = preload_renderer("ctguard.render.top_text", source.kind) if text else None
        spec = top_scan_spec(dims, table_filter)
        scan = scan_table(source, spec, workers=args.workers or "auto", while_waiting=later)
    check_strict(args, scan, source)
    result = build_top(source.label, scan, dims, table_filter, args.limit)
    if args.json:
        from ctguard.render.top_json import top_json

        write_json(env, top_json(result))
    elif args.csv:
        from ctguard.render.top_json import write_top_csv

        write_top_csv(env.stdout, result)
    else:
        from ctguard.render.top_text import render_top

        render_top(make_console(env), result)
    return ExitStatus.OK
