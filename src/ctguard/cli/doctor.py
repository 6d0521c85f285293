"""`ctguard doctor`: the first command to run; every capability adds a section.

Sections today: status of this namespace, the other network namespaces
(live, as root), the kernel log of this boot checked against the drop
counters, then the combined findings with next commands.
"""

from __future__ import annotations

import argparse
from typing import Any

from ctguard.cli.common import (
    add_read_options,
    make_console,
    open_root,
    resolve_netns_option,
    write_json,
)
from ctguard.cli.env import Environment, ExitStatus
from ctguard.cli.verdict_options import VERDICT_EXIT, add_threshold_options, thresholds_from
from ctguard.effects.journal import state_dir_from
from ctguard.gather.diagnosis import gather_diagnosis


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="diagnose this host: what is wrong, why, and the exact next command",
        description="Run every diagnosis ctguard has and print what is wrong, why, and the "
        "next command. Exit status like `status`: 0 ok, 1 warn, 2 crit, 3 could not tell.",
    )
    add_read_options(parser)
    add_threshold_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    root = open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    diagnosis = gather_diagnosis(
        root,
        netns,
        thresholds_from(args),
        is_root=env.is_root,
        state_dir=state_dir_from(env.environ),
    )
    if args.json:
        from ctguard.render.doctor_json import doctor_json

        write_json(env, doctor_json(diagnosis))
    else:
        from ctguard.render.doctor_text import render_doctor

        render_doctor(make_console(env), diagnosis)
    return VERDICT_EXIT[diagnosis.verdict]
