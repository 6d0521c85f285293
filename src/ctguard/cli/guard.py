"""`ctguard guard`: the always-on guard (foreground; systemd runs it), or its history."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ctguard.cli.common import write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.journal import state_dir_from
from ctguard.effects.session import etc_dir_from
from ctguard.errors import AccessDenied, UsageError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "guard",
        help="detect a connection flood or table pressure each second and block the source",
        description="Run in the foreground: every second read what `status` reads, count new "
        "entries per source, /24 and /64 in bounded memory, read the table under pressure, and "
        "block sources over the policy (guard.toml) at raw priority with a kernel timeout, "
        "deleting their entries. Bans are kept in a database and put back when the kernel "
        "loses them. SIGHUP reloads the policy; SIGTERM stops and leaves the bans until they "
        "expire. See docs/guard.md.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="the policy (default: ETC/ctguard/guard.toml)"
    )
    parser.add_argument(
        "--netns",
        metavar="NS",
        action="append",
        default=[],
        help="guard this namespace (NAME, PID or PATH; repeatable) instead of this process's own",
    )
    parser.add_argument(
        "--all-netns", action="store_true", help="guard every namespace, as they come and go"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="decide and log 'would-block'; change nothing"
    )
    parser.add_argument(
        "--listen",
        metavar="ADDR:PORT",
        help="serve Prometheus metrics here: the exporter's plus the guard's decisions, bans, "
        "detection latency and repairs (e.g. 127.0.0.1:10372; :PORT for every address)",
    )
    parser.add_argument("--history", action="store_true", help="list past decisions and exit")
    parser.add_argument("--json", action="store_true", help="with --history: print JSON")
    parser.add_argument(
        "--check", action="store_true", help="read the policy, say whether it is valid, exit"
    )


def config_path(args: argparse.Namespace, env: Environment) -> Path:
    if args.config:
        return Path(args.config)
    return etc_dir_from(env.environ) / "ctguard" / "guard.toml"


def _history(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ctguard.guard.state import GuardDb, db_path

    db = GuardDb.open_existing(db_path(state_dir_from(env.environ)))
    rows = [] if db is None else db.history()
    if args.json:
        write_json(env, {"decisions": rows})
        return ExitStatus.OK
    if not rows:
        env.stdout.write("no decisions recorded by the guard\n")
        return ExitStatus.OK
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["at"]))
        until = ""
        if row["until"] is not None:
            until = " until " + time.strftime("%H:%M:%S", time.localtime(row["until"]))
        why = f" ({row['why_not']})" if row["why_not"] else ""
        env.stdout.write(
            f"{when}  {row['netns']:<12} {row['target']:<20} {row['action']:<12} "
            f"{row['signal']} {row['seen']:g} > {row['threshold']:g}{until}{why}\n"
        )
    return ExitStatus.OK


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.history:
        return _history(args, env)
    from ctguard.guard.service import Guard, load_policy

    path = config_path(args, env)
    policy = load_policy(path)
    if args.check:
        env.stdout.write(f"{policy.source}: valid\n")
        return ExitStatus.OK
    if args.netns and args.all_netns:
        raise UsageError("--netns and --all-netns exclude each other")
    if not env.is_root:
        raise AccessDenied(
            "the guard reads netlink and loads rules: it needs root", hint="run: sudo ctguard guard"
        )
    server = None
    if args.listen:
        from prometheus_client import CollectorRegistry

        from ctguard.render.metrics_http import bind, landing_page

        # bound before anything else starts, so a bad --listen changes nothing
        registry = CollectorRegistry(auto_describe=False)
        server = bind(args.listen, registry, landing_page("ctguard guard", _about(args)))
    try:
        guard = Guard(
            config=path,
            policy=policy,
            state_dir=state_dir_from(env.environ),
            environ=env.environ,
            log=env.stderr,
            specs=tuple(args.netns),
            all_netns=args.all_netns,
            dry_run=args.dry_run,
        )
    except BaseException:
        if server is not None:
            server.server_close()
        raise
    if server is None:
        guard.run()
        return ExitStatus.OK
    from ctguard.guard.metrics import run_listening

    run_listening(guard, server, registry, env.stderr)
    return ExitStatus.OK


def _about(args: argparse.Namespace) -> str:
    what = (
        "every network namespace"
        if args.all_netns
        else (", ".join(args.netns) if args.netns else "this network namespace")
    )
    return (
        f"Connection tracking (nf_conntrack) of {what}, read at each scrape, and the "
        "guard's decisions, bans, detection latency and repairs."
    )
