"""Options shared by the commands that read the table itself (top, analyze)."""

from __future__ import annotations

import argparse
import io
from typing import TYPE_CHECKING, BinaryIO

from ctguard.analyze.table_query import TableFilter, parse_networks, parse_ports, split_list
from ctguard.cli.common import add_read_options, open_root, resolve_netns_option
from ctguard.cli.env import Environment
from ctguard.errors import ParseError, UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.table_source import TableSource, resolve_table_source

if TYPE_CHECKING:
    from ctguard.parse.table_scan import ScanResult


def add_table_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="a dump file (procfs, ip_conntrack, conntrack -L/-o extended/-E; plain or .gz) "
        "or - for stdin; default: the live table",
    )
    add_read_options(parser)
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 3) if any line is not a conntrack entry instead of skipping it",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes for a large dump file (default: 2 on 2+ CPUs, for files over 32 MiB)",
    )


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (comma-separated lists; repeatable)")
    group.add_argument("--proto", action="append", default=[], help="tcp, udp, icmp, ...")
    group.add_argument("--state", action="append", default=[], help="ESTABLISHED, SYN_SENT, ...")
    group.add_argument("--src", action="append", default=[], metavar="CIDR")
    group.add_argument("--dst", action="append", default=[], metavar="CIDR")
    group.add_argument("--port", action="append", default=[], help="source or destination port")
    group.add_argument("--sport", action="append", default=[])
    group.add_argument("--dport", action="append", default=[])
    assured = group.add_mutually_exclusive_group()
    assured.add_argument("--assured", dest="assured", action="store_true", default=None)
    assured.add_argument("--not-assured", dest="assured", action="store_false")
    unreplied = group.add_mutually_exclusive_group()
    unreplied.add_argument("--unreplied", dest="unreplied", action="store_true", default=None)
    unreplied.add_argument("--replied", dest="unreplied", action="store_false")
    group.add_argument("--zone", action="append", default=[])
    group.add_argument("--mark", action="append", default=[])


def _numbers(values: list[str], option: str) -> frozenset[int]:
    out: set[int] = set()
    for part in split_list(values):
        try:
            out.add(int(part, 0))
        except ValueError as err:
            raise UsageError(
                f"{option}: {part!r} is not a number", hint="decimal, or hex as 0x..."
            ) from err
    return frozenset(out)


def table_filter_from(args: argparse.Namespace) -> TableFilter:
    return TableFilter(
        protos=frozenset(p.lower() for p in split_list(args.proto)),
        states=frozenset(s.upper() for s in split_list(args.state)),
        src_nets=parse_networks(args.src, "--src"),
        dst_nets=parse_networks(args.dst, "--dst"),
        ports=parse_ports(args.port, "--port"),
        sports=parse_ports(args.sport, "--sport"),
        dports=parse_ports(args.dport, "--dport"),
        assured=args.assured,
        unreplied=args.unreplied,
        zones=_numbers(args.zone, "--zone"),
        marks=_numbers(args.mark, "--mark"),
    )


def _stdin_bytes(env: Environment) -> BinaryIO:
    buffer = getattr(env.stdin, "buffer", None)
    if buffer is not None:
        return buffer  # type: ignore[no-any-return]
    return io.BytesIO(env.stdin.read().encode())


def table_source_from(
    args: argparse.Namespace, env: Environment, root: KernelRoot | None = None
) -> TableSource:
    """The table the options name; ``root``: the already opened ``--root`` (a packed
    bundle is unpacked once per command)."""
    if args.source is not None and (args.root or args.netns):
        raise UsageError("give a SOURCE file, or --root/--netns for a table, not both")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    root = root or open_root(args.root)
    netns = resolve_netns_option(root, args.netns)
    stdin = _stdin_bytes(env) if args.source == "-" else None
    return resolve_table_source(args.source, root, netns, stdin)


def check_strict(args: argparse.Namespace, scan: ScanResult, source: TableSource) -> None:
    if not args.strict or not scan.skipped.count:
        return
    first_line, reason, _ = scan.skipped.examples[0]
    raise ParseError(
        f"{scan.skipped.count:,} line(s) are not conntrack entries (first: {reason})",
        where=source.label,
        line=first_line,
        hint="fix the input, or drop --strict to skip and count such lines",
    )
