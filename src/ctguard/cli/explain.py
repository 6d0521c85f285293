"""`ctguard explain [TOPIC]`: what a conntrack state, flag, sysctl or counter is."""

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
from ctguard.errors import UsageError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "explain",
        help="what a conntrack state, flag, sysctl or counter is, with this host's value",
        description="Without TOPIC, list the topics. With one (NEW, SYN_RECV, ASSURED, "
        "nf_conntrack_max, tcp_timeout_established, early_drop, ...; case and the "
        "net.netfilter.nf_conntrack_ prefix do not matter), say what it is and this "
        "host's current value.",
    )
    parser.add_argument("topic", nargs="?", metavar="TOPIC", help="what to explain")
    add_read_options(parser)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    from ctguard.explain.topics import find_topic, host_value, near_matches
    from ctguard.render.explain import (
        render_topic,
        render_topic_list,
        topic_json,
        topic_list_json,
    )

    if args.topic is None:
        if args.json:
            write_json(env, topic_list_json())
        else:
            render_topic_list(make_console(env))
        return ExitStatus.OK
    topic = find_topic(args.topic)
    if topic is None:
        near = near_matches(args.topic)
        raise UsageError(
            f"no topic {args.topic!r}"
            + (f"; did you mean: {', '.join(near)}?" if near else "")
            + " (`ctguard explain` lists every topic)"
        )
    host = where = None
    if topic.value is not None:
        from ctguard.gather.status import read_snapshot_in

        root = open_root(args.root)
        netns = resolve_netns_option(root, args.netns)
        snapshot = read_snapshot_in(root, netns)
        host = host_value(topic, snapshot)
        where = netns.label if netns else ("this host" if root.is_live else root.label)
    if args.json:
        write_json(env, topic_json(topic, host, where))
    else:
        render_topic(make_console(env), topic, host, where)
    return ExitStatus.OK
