"""`ctguard blocked`: what ctguard blocks, time left, reason, and whether it is loaded."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ctguard.cli.common import make_console, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.firewall_common import firewall_target
from ctguard.errors import CtguardError
from ctguard.model.kernel_defaults import humanize_seconds
from ctguard.plan.firewall import load_firewall_state


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("blocked", help="list ctguard's blocks with time left and reason")
    parser.add_argument("--netns", metavar="NS", help="that network namespace's blocks")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    target = firewall_target(args, env)
    now = time.time()
    state = load_firewall_state(target).live(now)
    loaded: bool | None = None
    if state.blocks and env.is_root:
        from ctguard.gather.firewall_actions import RulesReader
        from ctguard.rules.backends.iptables import set_name

        reader = RulesReader(target.netns)
        try:
            if state.backend == "nft":
                loaded = reader.nft_table_exists()
            else:
                versions = {b.version for b in state.blocks if not b.qualified}
                loaded = all(reader.ipset_exists(set_name(v)) for v in versions)
                if any(b.qualified for b in state.blocks):
                    saved = reader.iptables_save("iptables", "raw")
                    saved += reader.iptables_save("ip6tables", "raw")
                    loaded = loaded and "CTGUARD-PRE" in saved
        except CtguardError:
            loaded = None
    rows = [
        {
            "network": b.network,
            "proto": b.proto,
            "sport": b.sport,
            "dport": b.dport,
            "seconds_left": b.seconds_left(now),
            "reason": b.reason,
            "origin": "guard" if b.reason.startswith("guard:") else "manual",
            "added": b.added,
        }
        for b in sorted(state.blocks, key=lambda b: b.added)
    ]
    labels = [b.label() for b in sorted(state.blocks, key=lambda b: b.added)]
    if args.json:
        write_json(
            env,
            {"netns": target.label, "backend": state.backend, "loaded": loaded, "blocks": rows},
        )
        return ExitStatus.OK
    console = make_console(env)
    if not rows:
        console.print(f"nothing blocked by ctguard in {target.label}")
        return ExitStatus.OK
    for label, row in zip(labels, rows, strict=True):
        left = row["seconds_left"]
        when = "until unblocked" if left is None else f"{humanize_seconds(int(left))} left"
        reason = f"  {row['reason']}" if row["reason"] else ""
        if row["origin"] == "manual":
            reason = "  manual" + (f": {row['reason']}" if row["reason"] else "")
        console.print(f"{label:<44} {when:<16}{reason}")
    if loaded is False:
        console.print(
            f"warning: ctguard's {state.backend} rules are not loaded (a reboot, or removed by "
            "hand): these blocks "
            "are not in force; `ctguard block` any of them again to reload all"
        )
    return ExitStatus.OK
