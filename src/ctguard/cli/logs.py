"""`ctguard logs`: every "table full" episode in the kernel log, counted right."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ctguard.analyze.log_episodes import DEFAULT_GAP, LogReport, build_log_report
from ctguard.cli.common import add_read_options, make_console, open_root, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.time_options import parse_time
from ctguard.errors import UsageError
from ctguard.gather.kernel_log import live_netns_names
from ctguard.kernel.kernlog_sources import LogSource, bundle_source, files_source, live_source
from ctguard.model.command import ctguard_command
from ctguard.parse.kernlog import parse_log


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "logs",
        help="'table full' episodes in the kernel log: when, how long, how many, which netns",
        description="Find every conntrack 'table full' episode in the kernel log (ring buffer, "
        "journal, syslog files, .gz, a bundle, or FILEs / - for stdin). Exit status 0 = none "
        "found, 1 = episodes found, 3 = no log could be read.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="log files to read ('-' = stdin)")
    add_read_options(parser, netns=False)
    parser.add_argument("--journal", action="store_true", help="read `journalctl -k` (live)")
    parser.add_argument("--since", metavar="TIME", help="ISO time or age such as 30m, 6h, 2d")
    parser.add_argument("--until", metavar="TIME", help="ISO time or age such as 10m")
    parser.add_argument(
        "--gap",
        type=float,
        default=DEFAULT_GAP,
        metavar="SECONDS",
        help=f"silence that ends an episode ({DEFAULT_GAP:.0f})",
    )
    parser.add_argument(
        "--follow", action="store_true", help="watch the live kernel log for new episodes"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="rank the sources of new connections logged by `ctguard trace`",
    )
    parser.add_argument(
        "-n", "--limit", type=int, default=10, help="with --trace: how many rows (10)"
    )
    parser.add_argument(
        "--for", dest="duration", type=float, metavar="SECONDS", help="with --follow: stop after"
    )


def load_source(args: argparse.Namespace, env: Environment, since: datetime | None) -> LogSource:
    if args.files:
        if args.root or args.journal:
            raise UsageError("give FILEs, --root or --journal, not several")
        stdin = env.stdin.read() if "-" in args.files else None
        return files_source(args.files, stdin)
    if args.root:
        return bundle_source(open_root(args.root))
    return live_source(journal=args.journal, since=since)


def analyse(args: argparse.Namespace, env: Environment) -> tuple[LogReport, LogSource]:
    now = datetime.now(UTC)
    since, until = parse_time(args.since, now), parse_time(args.until, now)
    if args.gap <= 0:
        raise UsageError("--gap must be positive")
    source = load_source(args, env, since)
    records = parse_log(source.lines, source.reference)
    report = build_log_report(
        records, boot_time=source.boot_time, gap=args.gap, since=since, until=until
    )
    return report, source


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.follow:
        from ctguard.cli.logs_follow import follow

        if args.files or args.root:
            raise UsageError("--follow reads the live kernel log; it takes no FILE or --root")
        return follow(args, env)
    if args.duration is not None:
        raise UsageError("--for only applies with --follow")
    if args.trace:
        return run_trace(args, env)
    report, source = analyse(args, env)
    names = live_netns_names() if not args.files and not args.root else {}
    if args.json:
        from ctguard.render.logs_json import logs_json

        write_json(env, logs_json(report, source.label, names))
    else:
        from ctguard.render.logs_text import render_logs

        render_logs(make_console(env), report, source.label, names)
    return ExitStatus.WARN if report.episodes or report.neighbour_episodes else ExitStatus.OK


def run_trace(args: argparse.Namespace, env: Environment) -> ExitStatus:
    """Who opens the new connections: the LOG lines of `ctguard trace`, ranked."""
    from ctguard.parse.trace_log import summarize_trace

    now = datetime.now(UTC)
    source = load_source(args, env, parse_time(args.since, now))
    summary = summarize_trace(source.lines)
    limit = max(1, args.limit)

    def share(count: int) -> float:
        return round(count / summary.lines, 6) if summary.lines else 0.0

    if args.json:
        write_json(
            env,
            {
                "source": source.label,
                "lines": summary.lines,
                "unparsed": summary.unparsed,
                "by_src": [
                    {"src": k, "count": c, "share": share(c)}
                    for k, c in summary.by_src.most_common(limit)
                ],
                "by_dport": [
                    {"proto": p, "dport": d, "count": c, "share": share(c)}
                    for (p, d), c in summary.by_dport.most_common(limit)
                ],
                "by_src_dport": [
                    {"src": s, "proto": p, "dport": d, "count": c}
                    for (s, p, d), c in summary.by_src_dport.most_common(limit)
                ],
            },
        )
        return ExitStatus.WARN if summary.lines else ExitStatus.OK
    console = make_console(env)
    if not summary.lines:
        console.print(
            f"no `ctguard trace` lines in {source.label}; start one with: "
            "sudo ctguard trace --ttl 10m --yes"
        )
        return ExitStatus.OK
    console.print(f"{summary.lines:,} new connections logged by ctguard trace ({source.label})")
    console.print("top sources:")
    for src, count in summary.by_src.most_common(limit):
        console.print(f"  {count:>8,}  {share(count):6.1%}  {src}")
    console.print("top destination ports:")
    for (proto, dport), count in summary.by_dport.most_common(limit):
        console.print(f"  {count:>8,}  {share(count):6.1%}  {proto} {dport if dport else '-'}")
    top_src = summary.by_src.most_common(1)[0][0]
    block = ctguard_command(
        "block", str(top_src), "--ttl", "1h", "--reason", "trace", comment="if it is abusive"
    )
    console.print(f"next: {block}", markup=False)
    if summary.unparsed:
        console.print(f"note: {summary.unparsed} trace line(s) without a flow were skipped")
    return ExitStatus.WARN
