"""`ctguard advise`: sizing and timeouts from the kernel's real rules and this host."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.advise.advice import Advice, AdviceOptions
from ctguard.cli.advise_evidence import EvidenceChoice, gather_advice
from ctguard.cli.changing import etc_dir
from ctguard.cli.common import add_read_options, make_console, open_root, resolve_netns_option
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import Plan
from ctguard.plan.conntrack_settings import SettingTargets, plan_settings


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
        help="recommended max = observed peak x this factor (default 2)",
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


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "advise",
        help="recommended max, buckets and timeouts, every number explained",
        description="Recommend nf_conntrack_max, the hash size and timeouts from this host's "
        "RAM, measured entry size, observed peak and table content; correct the common "
        "formulas; show the exact plan `ctguard apply` would run.",
    )
    add_read_options(parser)
    add_advice_options(parser)


def advice_targets(advice: Advice, with_global: bool) -> SettingTargets:
    sizing = advice.global_targets if with_global else {}
    return SettingTargets(
        max=sizing.get("max"), buckets=sizing.get("buckets"), timeouts=advice.timeout_targets
    )


def advice_plan(
    advice: Advice, args: argparse.Namespace, env: Environment, *, force: bool = False
) -> Plan:
    netns = advice.snapshot.netns
    return plan_settings(
        advice.snapshot,
        advice_targets(advice, with_global=netns is None),
        netns=netns,
        etc_dir=etc_dir(env),
        persist=not args.runtime_only,
        force=force,
        title="apply ctguard's advice",
    )


def advice_from_args(
    root: KernelRoot, netns: NetnsRef | None, args: argparse.Namespace, env: Environment
) -> Advice:
    """The advice for the options every advising command shares."""
    return gather_advice(
        root,
        netns,
        env,
        advice_options(args),
        EvidenceChoice(table=not args.no_table, logs=not args.no_logs),
    )


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    advice = advice_from_args(root, netns, args, env)
    plan = advice_plan(advice, args, env)
    if args.json:
        from ctguard.cli.common import write_json
        from ctguard.render.advise_json import advise_json

        write_json(env, advise_json(advice, plan))
        return ExitStatus.OK
    from rich.text import Text

    from ctguard.render.advise_text import render_advice
    from ctguard.render.plan_text import render_plan

    console = make_console(env)
    render_advice(console, advice)
    console.print(Text("\nwhat `ctguard apply` would do", style="bold"))
    render_plan(console, plan)
    if not plan.empty:
        target = f" --netns {netns.path}" if netns else ""
        console.print(Text(f"apply with: sudo ctguard apply{target} --yes", style="cyan"))
    return ExitStatus.OK
