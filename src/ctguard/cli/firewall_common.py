"""Shared by notrack/block/unblock/trace: options, durations, plan-then---yes."""

from __future__ import annotations

import argparse
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctguard.cli.changing import (
    add_change_options,
    journal_for,
    live_system,
    recover_first,
    require_live_root,
)
from ctguard.cli.common import make_console, open_root, resolve_netns_option, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.commands import ipset_save, nft_list_table, run_tool
from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import state_dir_from
from ctguard.errors import UsageError
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import (
    FirewallTarget,
    load_firewall_state,
    plan_firewall,
    with_backend,
)
from ctguard.rules.backends.nft import TABLE
from ctguard.rules.model import FirewallState

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_firewall_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--netns", metavar="NS", help="act in this network namespace (NAME, PID or PATH)"
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "nft", "iptables"),
        default="auto",
        help="nft (ctguard's own table) or iptables (own chains + ipset); auto: the one "
        "ctguard already uses here, else nft when installed",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_change_options(parser)


def parse_duration(text: str, option: str) -> int | None:
    """'90s', '10m', '1h', '2d' -> seconds; 'never' or '0' -> None (no expiry)."""
    value = text.strip().lower()
    if value in ("never", "0", "permanent"):
        return None
    match = _DURATION.match(value)
    if not match or int(match.group(1)) == 0:
        raise UsageError(
            f"{option} {text!r} is not a duration", hint="e.g. 90s, 10m, 1h, 2d, or never"
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds > 365 * 86400:
        raise UsageError(f"{option} {text!r} is longer than a year")
    return seconds


@dataclass(frozen=True)
class LiveReader:
    """The rules in place, read with the tools (empty when a tool is missing)."""

    netns: NetnsRef | None

    def nft_table_exists(self) -> bool:
        return shutil.which("nft") is not None and nft_list_table(TABLE, self.netns) is not None

    def iptables_save(self, tool: str, table: str) -> str:
        if shutil.which(f"{tool}-save") is None:
            return ""
        done = run_tool([f"{tool}-save", "-t", table], self.netns)
        return done.stdout if done.returncode == 0 else ""

    def ipset_exists(self, name: str) -> bool:
        return shutil.which("ipset") is not None and ipset_save(name, self.netns) is not None


def current_state(target: FirewallTarget, args: argparse.Namespace) -> FirewallState:
    """The recorded state, live, with the backend this command should use."""
    state = load_firewall_state(target)
    return with_backend(state, args.backend, shutil.which("nft") is not None)


def firewall_plan(target: FirewallTarget, state: FirewallState, now: float, **details: Any) -> Plan:
    return plan_firewall(target, state, now, reader=LiveReader(target.netns), **details)


def firewall_target(args: argparse.Namespace, env: Environment) -> FirewallTarget:
    root = open_root(None)
    return FirewallTarget(resolve_netns_option(root, args.netns), state_dir_from(env.environ))


def run_firewall_plan(
    args: argparse.Namespace,
    env: Environment,
    command: str,
    build: Callable[[FirewallTarget, float], Plan],
) -> ExitStatus:
    """Print the plan, or with --yes (after crash recovery) run it through the executor."""
    target = firewall_target(args, env)
    change_id = None
    if args.yes:
        root = open_root(None)
        require_live_root(root, env, command)
        journal = journal_for(env)
        with journal.locked():
            recover_first(journal, root)
            plan = build(target, time.time())
            if not plan.empty:
                change_id = apply_plan(plan, journal, live_system(root)).id
    else:
        plan = build(target, time.time())
    if args.json:
        write_json(
            env, {"plan": plan.to_dict(), "applied": change_id is not None, "change_id": change_id}
        )
        return ExitStatus.OK
    from rich.text import Text

    from ctguard.render.plan_text import render_plan

    console = make_console(env)
    render_plan(console, plan, applied=change_id is not None)
    if change_id is not None:
        console.print(
            Text(f"change {change_id} recorded; undo: sudo ctguard rollback --yes", "cyan")
        )
    return ExitStatus.OK
