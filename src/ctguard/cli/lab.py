"""`ctguard lab`: reproduce conntrack failures in network namespaces and prove the fixes."""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.common import make_console, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import AccessDenied


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "lab",
        help="rehearse: reproduce each failure on this kernel in namespaces, prove each fix",
        description="Build network namespaces (clients, a gateway, a server), drive real "
        "traffic, fill the gateway's table, measure, apply ctguard's own remedy, measure "
        "again, and remove everything. Needs root. Run it on a test machine.",
    )
    lab_sub = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    listing = lab_sub.add_parser("list", help="the scenarios and their remedies")
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    run = lab_sub.add_parser("run", help="run one scenario")
    run.add_argument("scenario", help="a name from `ctguard lab list`")
    run.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="table size (default: this host's nf_conntrack_max; a smaller one lowers the "
        "global max for the run, only while the host's own table is empty), or the number "
        "of connections for 'orphans'",
    )
    run.add_argument("--remedy", help="another of the scenario's remedies (see `lab list`)")
    run.add_argument("--json", action="store_true", help="print JSON instead of text")
    lab_sub.add_parser("clean", help="remove whatever a crashed run left (namespaces, changes)")


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.lab_command == "list":
        return _list(env, as_json=args.json)
    if not env.is_root:
        raise AccessDenied(
            "the lab needs root (network namespaces, netlink, firewall rules)",
            hint="run it as root, on a test machine",
        )
    if args.lab_command == "clean":
        return _clean(env)
    return _run(args, env)


def _list(env: Environment, *, as_json: bool) -> ExitStatus:
    from ctguard.lab.scenarios import SCENARIOS

    if as_json:
        write_json(env, {"scenarios": [spec.to_dict() for spec in SCENARIOS.values()]})
        return ExitStatus.OK
    console = make_console(env)
    for spec in SCENARIOS.values():
        remedies = ", ".join(spec.remedies)
        console.print(f"[bold]{spec.name}[/bold]  {spec.title}")
        console.print(f"    {spec.summary}; remedies: {remedies}")
    return ExitStatus.OK


def _clean(env: Environment) -> ExitStatus:
    from ctguard.lab.namespaces import clean_leftovers

    removed = clean_leftovers()
    env.stdout.write(
        "removed: " + ", ".join(removed) + "\n" if removed else "nothing left behind\n"
    )
    return ExitStatus.OK


def _run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ctguard.effects.executor import signals_unwind
    from ctguard.lab.runner import run_scenario
    from ctguard.render.lab_text import render_lab_result

    def progress(message: str) -> None:
        if not args.json:
            env.stderr.write(f"lab: {message}\n")
            env.stderr.flush()

    with signals_unwind():  # SIGTERM/SIGHUP unwind through the teardown too
        result = run_scenario(
            args.scenario, scale=args.scale, remedy=args.remedy, progress=progress
        )
    if args.json:
        write_json(env, result.to_dict())
    else:
        render_lab_result(make_console(env), result)
    return ExitStatus.OK if result.passed else ExitStatus.WARN
