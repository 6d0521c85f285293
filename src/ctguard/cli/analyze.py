"""`ctguard analyze`: floods, scans, orphans and pile-ups in the table itself."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.common import make_console, open_root, preload_renderer, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.table_options import add_table_source_options, check_strict, table_source_from
from ctguard.cli.verdict_options import VERDICT_EXIT
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.table_source import TableSource, reading_started, scan_table
from ctguard.model.findings import verdict_of


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "analyze",
        help="what fills the table: floods, scans, orphans, pile-ups, NAT load (findings)",
        description="Read the table once (live, --netns, --root bundle, a dump file or -) and "
        "report top talkers and findings CT501-CT509, each with evidence and the next "
        "command. Exit status 0/1/2 = ok/warn/crit, 3 = could not read.",
    )
    add_table_source_options(parser)


def established_timeout_of(root: KernelRoot, source: TableSource) -> int | None:
    """The established timeout in force, when the table is this host's or a bundle's."""
    if source.kind not in ("live-procfs", "live-tool", "bundle"):
        return None
    from ctguard.kernel.netns import entered_netns
    from ctguard.kernel.snapshot import read_snapshot

    with entered_netns(source.netns):
        snapshot = read_snapshot(root, source.netns, use_netlink=False)
    established = snapshot.timeout("tcp_timeout_established")
    return established.seconds if established else None


def source_args(args: argparse.Namespace) -> tuple[str, ...]:
    """How to name the same table again in a suggested command (argv words)."""
    if args.source and args.source != "-":
        return (str(args.source),)
    if args.root:
        return ("--root", str(args.root))
    if args.netns:
        return ("--netns", str(args.netns))
    return ()


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    with reading_started(table_source_from(args, env, root)) as source:
        # loaded while the kernel prints the live table
        from ctguard.analyze.table_analysis import ANALYZE_SPEC, build_profile, check_table

        later = None if args.json else preload_renderer("ctguard.render.analyze_text", source.kind)
        scan = scan_table(source, ANALYZE_SPEC, workers=args.workers or "auto", while_waiting=later)
    check_strict(args, scan, source)
    profile = build_profile(source.label, scan, established_timeout_of(root, source))
    findings = check_table(profile, source_args=source_args(args))
    verdict = verdict_of(findings)
    if args.json:
        from ctguard.render.analyze_json import analyze_json

        write_json(env, analyze_json(profile, findings, verdict))
    else:
        from ctguard.render.analyze_text import render_analyze

        render_analyze(make_console(env), profile, findings, verdict)
    return VERDICT_EXIT[verdict]
