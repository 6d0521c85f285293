"""`ctguard exporter`: Prometheus metrics of every namespace's table, read at scrape time."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import AccessDenied, CtguardError, UsageError

DEFAULT_LISTEN = "127.0.0.1:10371"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "exporter",
        help="serve Prometheus metrics (count, max, drops, 'table full' lines) per namespace",
        description="Serve connection-tracking metrics for Prometheus: a landing page at /, "
        "the metrics at /metrics, read from the kernel at each scrape (never the table). "
        "SIGTERM stops it. Metrics, alerts and dashboard: docs/monitoring.md.",
    )
    parser.add_argument(
        "--listen",
        metavar="ADDR:PORT",
        default=DEFAULT_LISTEN,
        help=f"where to listen ({DEFAULT_LISTEN}; :PORT for every address)",
    )
    parser.add_argument(
        "--netns",
        action="append",
        default=[],
        metavar="NS",
        help="watch this network namespace (an `ip netns` NAME, a PID or a path); repeatable",
    )
    parser.add_argument(
        "--all-netns",
        action="store_true",
        help="watch every network namespace, listed again at each scrape",
    )
    parser.add_argument(
        "--textfile",
        metavar="PATH",
        help="write the metrics once to PATH (atomically, for node_exporter's textfile "
        "collector) and exit",
    )


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.netns and args.all_netns:
        raise UsageError("--all-netns and --netns exclude each other")
    if (args.netns or args.all_netns) and not env.is_root:
        raise AccessDenied(
            "watching other network namespaces means entering them, which needs root",
            hint="run as root: sudo ctguard exporter --all-netns",
        )
    textfile = Path(args.textfile) if args.textfile else None
    if textfile is not None and not textfile.name.endswith(".prom"):
        raise UsageError(
            f"--textfile {args.textfile!r} must end in .prom (node_exporter reads only those)"
        )
    from ctguard.exporter.server import bind, make_registry, serve, write_textfile
    from ctguard.gather.collect import Collector
    from ctguard.gather.kmsg_follow import KmsgFollower

    collector = Collector(specs=args.netns, all_netns=args.all_netns)
    if textfile is not None:
        write_textfile(textfile, make_registry(collector, None))
        env.stderr.write(f"ctguard: wrote {textfile}\n")
        return ExitStatus.OK
    follower: KmsgFollower | None = KmsgFollower()
    try:
        assert follower is not None
        follower.open()
    except CtguardError as err:
        env.stderr.write(f"ctguard: no 'table full' log counter: {err.what}\n")
        follower = None
    what = (
        "every network namespace"
        if args.all_netns
        else (", ".join(args.netns) if args.netns else "this network namespace")
    )
    server = bind(args.listen, make_registry(collector, follower), what)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        if follower is not None:
            follower.start()
        host, port = server.server_address[:2]
        shown = f"[{host!s}]" if ":" in str(host) else str(host)
        env.stderr.write(f"ctguard: exporter listening on http://{shown}:{port}/metrics\n")
        env.stderr.flush()
        serve(server, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if follower is not None:
            follower.stop()
    return ExitStatus.OK
