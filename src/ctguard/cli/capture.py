"""`ctguard capture DIR|FILE.tar.gz`: a bundle to analyse later with `--root`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ctguard.cli.common import resolve_netns_option, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.journal import state_dir_from
from ctguard.gather.guard_db import db_path
from ctguard.kernel.root import KernelRoot
from ctguard.model.command import ctguard_command


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "capture",
        help="copy everything ctguard reads into a directory or .tar.gz for --root",
        description="Copy the conntrack state of this host (sysctls, statistics, slabinfo, the "
        "table, kernel log, ruleset) into DIR or FILE.tar.gz, so that any command can run "
        "later elsewhere with --root. The table and ruleset contain addresses: treat the "
        "bundle as sensitive.",
    )
    parser.add_argument("destination", metavar="DIR|FILE.tar.gz")
    parser.add_argument("--netns", metavar="NS", help="capture this network namespace instead")
    parser.add_argument("--no-table", action="store_true", help="leave out /proc/net/nf_conntrack")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ctguard.kernel.capture import capture_into, finish_destination, prepare_destination
    from ctguard.kernel.netns import entered_netns

    root = KernelRoot.live()
    netns = resolve_netns_option(root, args.netns)
    target = Path(args.destination)
    work = prepare_destination(target)
    with entered_netns(netns):
        result = capture_into(
            work,
            root,
            netns,
            with_table=not args.no_table,
            guard_db=db_path(state_dir_from(env.environ)),
        )
    finish_destination(work, target)
    if args.json:
        write_json(
            env,
            {
                "destination": str(target),
                "files": sorted(result.files),
                "missing": result.missing,
                "table_bytes": result.table_bytes,
            },
        )
    else:
        env.stdout.write(
            f"captured {len(result.files)} files into {target} "
            f"(table: {result.table_bytes:,} bytes)\n"
        )
        for rel, reason in sorted(result.missing.items()):
            env.stdout.write(f"  not captured: {rel}: {reason}\n")
        env.stdout.write(f"analyse it with: {ctguard_command('doctor', '--root', str(target))}\n")
    return ExitStatus.OK
