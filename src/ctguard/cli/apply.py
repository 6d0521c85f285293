"""`ctguard apply`: set max, the hash size and timeouts — plan first, then --yes.

Without value options it applies `ctguard advise`'s recommendations (the
same computation); with ``--max``/``--buckets``/``--timeout`` it applies
those.  Runtime values and persistent files change together, through one
journaled executor; `ctguard rollback` undoes it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.advise.sizing import hash_convention, round_up_to_page
from ctguard.analyze.table_pressure import kernel_major_minor
from ctguard.cli.advice_options import add_advice_options, advice_from_args
from ctguard.cli.changing import (
    add_change_options,
    etc_dir,
    journal_for,
    live_system,
    pending_recovery,
    recover_first,
    require_live_root,
)
from ctguard.cli.common import add_read_options, make_console, open_root, resolve_netns_option
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.executor import RestoreReport, apply_plan
from ctguard.gather.status import read_snapshot_in
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import Plan
from ctguard.plan.advice_plan import plan_advice
from ctguard.plan.conntrack_settings import (
    SettingTargets,
    parse_timeout_assignments,
    plan_settings,
)


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "apply",
        help="set max, buckets and timeouts (runtime + persistent), journaled and reversible",
        description="Apply conntrack settings. Prints the plan; --yes runs it: originals are "
        "journaled first, values verified after, everything rolled back on failure. "
        "Without --max/--buckets/--timeout, applies `ctguard advise`'s recommendations.",
    )
    add_read_options(parser)
    add_change_options(parser)
    parser.add_argument("--max", type=int, metavar="N", help="nf_conntrack_max")
    parser.add_argument(
        "--buckets",
        type=int,
        metavar="N",
        help="hash size (default with --max: the kernel's own max:buckets convention)",
    )
    parser.add_argument(
        "--keep-buckets", action="store_true", help="with --max: leave the hash size alone"
    )
    parser.add_argument(
        "--timeout",
        action="append",
        default=[],
        metavar="KEY=SECONDS",
        help="a timeout, e.g. tcp_timeout_established=86400 (repeatable; SECONDS, not hours)",
    )
    parser.add_argument(
        "--force", action="store_true", help="allow a max below the current entry count"
    )
    add_advice_options(parser)


def explicit_targets(args: argparse.Namespace, snapshot: Any) -> tuple[SettingTargets, list[str]]:
    notes = []
    buckets = args.buckets
    if args.max is not None and buckets is None and not args.keep_buckets:
        ratio, convention = hash_convention(
            kernel_major_minor(snapshot.kernel_release), snapshot.legacy
        )
        buckets = round_up_to_page(-(-args.max // ratio))
        notes.append(f"buckets {buckets:,} follow max ({convention}); --keep-buckets to skip")
    timeouts = parse_timeout_assignments(args.timeout)
    return SettingTargets(max=args.max, buckets=buckets, timeouts=timeouts), notes


def build_plan(
    root: KernelRoot, netns: NetnsRef | None, args: argparse.Namespace, env: Environment
) -> Plan:
    persist = not args.runtime_only
    if args.max is not None or args.buckets is not None or args.timeout:
        snapshot = read_snapshot_in(root, netns)
        targets, notes = explicit_targets(args, snapshot)
        plan = plan_settings(
            snapshot,
            targets,
            netns=netns,
            etc_dir=etc_dir(env),
            persist=persist,
            force=args.force,
            title="set conntrack values",
        )
        return Plan(plan.title, plan.actions, plan.warnings, (*notes, *plan.notes), plan.unchanged)
    advice = advice_from_args(root, netns, args, env)
    return plan_advice(advice, etc_dir=etc_dir(env), persist=persist, force=args.force)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    journal = journal_for(env)
    recovered: list[RestoreReport] = []
    if not args.yes:
        plan = build_plan(root, netns, args, env)
        pending = pending_recovery(journal) if root.is_live else []
        return report(env, args, plan, None, recovered, pending)
    require_live_root(root, env, "apply")
    with journal.locked():
        recovered = recover_first(journal, root)
        plan = build_plan(root, netns, args, env)
        change_id = None
        if not plan.empty:
            change_id = apply_plan(plan, journal, live_system(root)).id
    return report(env, args, plan, change_id, recovered, [])


def report(
    env: Environment,
    args: argparse.Namespace,
    plan: Plan,
    change_id: str | None,
    recovered: list[RestoreReport],
    pending: list[str],
) -> ExitStatus:
    from ctguard.render.plan_text import render_plan, render_restore, restore_json

    if args.json:
        from ctguard.cli.common import write_json

        write_json(
            env,
            {
                "plan": plan.to_dict(),
                "applied": change_id is not None,
                "change_id": change_id,
                "recovered": [restore_json(r) for r in recovered],
                "pending_recovery": pending,
            },
        )
        return ExitStatus.OK
    from rich.text import Text

    console = make_console(env)
    for item in recovered:
        render_restore(console, item, "recovered interrupted")
    for pending_id in pending:
        console.print(
            Text(f"interrupted change {pending_id} will be rolled back first", style="yellow")
        )
    render_plan(console, plan, applied=change_id is not None)
    if change_id is not None:
        console.print(
            Text(f"change {change_id} recorded; undo with: sudo ctguard rollback --yes", "cyan")
        )
    return ExitStatus.OK
