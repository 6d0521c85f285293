"""Options shared by the commands that advise (advise, apply)."""

from __future__ import annotations

import argparse

from ctguard.advise.advice import Advice, AdviceOptions
from ctguard.cli.env import Environment
from ctguard.effects.journal import state_dir_from
from ctguard.errors import UsageError
from ctguard.gather.advice import EvidenceChoice, gather_advice
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef


def add_advice_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ram-share",
        type=float,
        default=3.0,
        metavar="PCT",
        help="memory budget for the table, in %% of MemTotal (default 3)",
    )
    parser.add_argument(
        "--headroom",
        type=float,
        default=2.0,
        metavar="X",
        help="recommended max, and the neighbour tables' gc_thresh2, = observed peak x this "
        "factor (default 2)",
    )
    parser.add_argument("--no-table", action="store_true", help="do not read the table's content")
    parser.add_argument("--no-logs", action="store_true", help="do not read the kernel log")
    parser.add_argument(
        "--runtime-only",
        action="store_true",
        help="only runtime values: no files under /etc (lost at reboot)",
    )


def advice_options(args: argparse.Namespace) -> AdviceOptions:
    if not 0 < args.ram_share <= 50:
        raise UsageError(f"--ram-share {args.ram_share} must be in (0, 50] percent")
    if not 1 <= args.headroom <= 100:
        raise UsageError(f"--headroom {args.headroom} must be between 1 and 100")
    return AdviceOptions(ram_share=args.ram_share / 100, headroom=args.headroom)


def advice_from_args(
    root: KernelRoot, netns: NetnsRef | None, args: argparse.Namespace, env: Environment
) -> Advice:
    """The advice for the options every advising command shares."""
    return gather_advice(
        root,
        netns,
        state_dir=state_dir_from(env.environ),
        is_root=env.is_root,
        options=advice_options(args),
        choice=EvidenceChoice(table=not args.no_table, logs=not args.no_logs),
    )
