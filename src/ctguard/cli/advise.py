"""`ctguard advise`: sizing and timeouts from the kernel's real rules and this host."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.advice_options import add_advice_options, advice_from_args
from ctguard.cli.changing import etc_dir
from ctguard.cli.common import add_read_options, make_console, open_root, resolve_netns_option
from ctguard.cli.env import Environment, ExitStatus
from ctguard.model.command import ctguard_command
from ctguard.plan.advice_plan import plan_advice


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "advise",
        help="recommended max, buckets, timeouts and neighbour thresholds, every number explained",
        description="Recommend nf_conntrack_max, the hash size and timeouts from this host's "
        "RAM, measured entry size, observed peak and table content, and the neighbour tables' "
        "gc_thresh1/2/3 from the host's neighbours; correct the common formulas; show the exact "
        "plan `ctguard apply` would run.",
    )
    add_read_options(parser)
    add_advice_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    advice = advice_from_args(root, netns, args, env)
    plan = plan_advice(advice, etc_dir=etc_dir(env), persist=not args.runtime_only)
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
        target = ("--netns", netns.path) if netns else ()
        command = ctguard_command("apply", *target, "--yes", sudo=True)
        console.print(Text(f"apply with: {command}", style="cyan"))
    return ExitStatus.OK
