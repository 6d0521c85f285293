"""Shared by notrack/block/unblock/trace: options, durations, plan-then---yes."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from typing import Any

from ctguard.cli.changing import add_change_options, journal_for, require_live_root
from ctguard.cli.common import make_console, open_root, resolve_netns_option, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.journal import state_dir_from
from ctguard.errors import UsageError
from ctguard.gather import firewall_actions
from ctguard.plan.actions import Plan
from ctguard.plan.firewall import FirewallTarget
from ctguard.rules.model import MATCH_PROTOCOLS, FirewallState, check_match, parse_port

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


def add_match_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--proto/--sport/--dport of `block` and `unblock` (ports need tcp/udp/sctp/dccp)."""
    parser.add_argument(
        "--proto",
        choices=MATCH_PROTOCOLS,
        help=f"{what} only this protocol of the source's packets (default: every packet)",
    )
    parser.add_argument(
        "--sport", metavar="PORT", help="only packets from this port of the source (needs --proto)"
    )
    parser.add_argument("--dport", metavar="PORT", help="only packets to this port (needs --proto)")


def parse_match(
    args: argparse.Namespace, versions: set[int]
) -> tuple[str | None, int | None, int | None]:
    """(proto, sport, dport) of the options, checked (a usage error, exit 64, when wrong)."""
    sport = parse_port(args.sport, "--sport")
    dport = parse_port(args.dport, "--dport")
    check_match(args.proto, sport, dport, versions)
    return args.proto, sport, dport


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


def current_state(target: FirewallTarget, args: argparse.Namespace) -> FirewallState:
    """The recorded state, live, with the backend this command should use."""
    return firewall_actions.current_state(target, args.backend)


def firewall_plan(target: FirewallTarget, state: FirewallState, now: float, **details: Any) -> Plan:
    return firewall_actions.firewall_plan(target, state, now, **details)


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
        plan, change_id = firewall_actions.apply_firewall_plan(
            root, journal_for(env), lambda now: build(target, now), time.time
        )
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
