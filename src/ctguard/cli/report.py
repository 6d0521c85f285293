"""`ctguard report`: a post-mortem in one HTML file, from this host or a bundle."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ctguard.cli.common import add_read_options, open_root, resolve_netns_option, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.time_options import parse_time
from ctguard.effects.journal import state_dir_from
from ctguard.errors import UsageError
from ctguard.gather.report import gather_report


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "report",
        help="write a post-mortem as one self-contained HTML file (plots, findings, advice)",
        description="Gather what doctor, logs, top, advise and audit know about this host (or "
        "a bundle from `ctguard capture`) and write it as one HTML file that opens offline, "
        "prints, and attaches to a ticket: the verdict and findings, when the table was "
        "full, who held it, what to change and the commands to run next.",
    )
    add_read_options(parser)
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE.html",
        help="where to write it (default: ctguard-report-HOST-TIME.html here); - for stdout",
    )
    parser.add_argument(
        "--since", metavar="TIME", help="kernel log from TIME (ISO 8601 or age: 6h, 2d)"
    )
    parser.add_argument("--until", metavar="TIME", help="kernel log until TIME")


def default_name(host: str, when: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", host)[:60] or "host"
    return f"ctguard-report-{safe}-{when.strftime('%Y%m%dT%H%M%SZ')}.html"


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    now = datetime.now(UTC)
    since, until = parse_time(args.since, now), parse_time(args.until, now)
    if since and until and since > until:
        raise UsageError(f"--since ({args.since}) is after --until ({args.until})")
    if args.output and args.output != "-" and not args.output.endswith((".html", ".htm")):
        raise UsageError(f"-o {args.output}: the report is HTML; name it FILE.html")
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    data = gather_report(
        root,
        netns,
        is_root=env.is_root,
        state_dir=state_dir_from(env.environ),
        since=since,
        until=until,
        now=now,
    )
    from ctguard.render.report_json import report_json

    payload = report_json(data)
    if args.json:
        write_json(env, payload)
        return ExitStatus.OK
    from ctguard.render.report_html import render_report_html

    html = render_report_html(payload)
    if args.output == "-":
        env.stdout.write(html)
        return ExitStatus.OK
    from ctguard.effects.output import write_output_file

    path = Path(args.output or default_name(data.host, now))
    write_output_file(path, html)
    env.stdout.write(
        f"report written: {path} ({len(html.encode()):,} bytes; verdict {payload['verdict']}, "
        f"{len(payload['doctor']['findings'])} finding(s))\n"
    )
    return ExitStatus.OK
