"""`ctguard exporter` scrapes of 1 and of N namespaces, empty and full, beside a shell read.

    sudo python -m benchmarks.bench_exporter [--namespaces 100] [--entries 200000]
        [--first-entries N] [--scrapes 100] [--runs 20] [--json FILE] [--hold SECONDS]

Makes ``--namespaces`` network namespaces and starts two exporters on
127.0.0.1: one watching the first namespace (``--netns``), one watching
every namespace (``--all-netns``, as an operator of containers runs it; it
also reads the host's own and any other namespace of this machine, and the
report says how many it read).  Each is scraped ``--scrapes`` times (HTTP
GET /metrics, turn about), first with every table empty, then after each
namespace's table is filled through ctnetlink with ``--entries`` entries
(``--first-entries`` in the first one; ASSURED TCP entries, timeout one
hour, documentation addresses: no traffic).  It prints the median and
worst wall time of a scrape as the client sees it, the exporter's own
collection time (``ctguard_scrape_duration_seconds``) and each exporter's
RSS (now and peak).

Beside them, what an operator runs today, each a whole command timed the
same way: node_exporter's conntrack collector reads
``nf_conntrack_count``, ``nf_conntrack_max`` and ``/proc/net/stat/nf_conntrack``
of its own namespace only, so its shell equivalent is ``ip netns exec NS cat``
of those three files, in a loop over the namespaces for N; and
``conntrack -C`` per namespace, the count people type.

Many namespaces of many entries share the kernel's one hash table: past 8
entries per bucket the benchmark raises the hash size (global) for the
run, only while the host's own table is empty, through the journaled
executor, and the run's close (also on Ctrl-C or SIGTERM; `ctguard lab
clean` after a crash) puts it back, then deletes the namespaces.  Kernel
memory: about 400 B per entry (256 B of slab and more).  Mind the
teardown at full size: the kernel frees a deleted namespace's entries by
walking the whole shared hash, once per namespace, holding the lock a
hash resize waits for; 100 x 200,000 entries took it 20-25 minutes of
one CPU, during which others' hash-size changes stall.  Run that size on a
machine of your own; ``--entries 20000 --first-entries 200000`` costs a
tenth.  ``--hold`` keeps the full tables and the exporters up that many
seconds at the end, so any whole-command harness can time a scrape
against its baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ctguard.effects.executor import apply_plan
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.lab.fill import fill_table, synthetic_flows
from ctguard.lab.global_max import current_buckets, current_max, global_change_refusal
from ctguard.lab.namespaces import Lab, LabNamespace, clean_leftovers
from ctguard.plan.actions import Plan, SetModuleParam

CTGUARD = [sys.executable, "-m", "ctguard"]
ENTRIES_PER_BUCKET = 8  # above this the run raises the hash size (chains stay short)
NF = "/proc/sys/net/netfilter"
NODE_EXPORTER_FILES = [
    f"{NF}/nf_conntrack_count",
    f"{NF}/nf_conntrack_max",
    "/proc/net/stat/nf_conntrack",
]


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(seconds) * 1000,
        "worst_ms": max(seconds) * 1000,
        "runs": len(seconds),
    }


def rss_mib(pid: int) -> dict[str, float]:
    """The process's resident set now (VmRSS) and its peak (VmHWM), MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {
        key: int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) / 1024  # type: ignore[union-attr]
        for key, field in (("rss_mib", "VmRSS"), ("peak_rss_mib", "VmHWM"))
    }


@contextmanager
def exporter(args: list[str]) -> Iterator[tuple[str, int]]:
    """A running exporter on a free loopback port: (metrics URL, pid); stopped on exit."""
    process = subprocess.Popen(
        [*CTGUARD, "exporter", *args, "--listen", "127.0.0.1:0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = ""
        deadline = time.monotonic() + 30
        while "listening on" not in line:
            line = process.stderr.readline()
            if (not line and process.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit(f"the exporter did not start: {line.strip()}")
        match = re.search(r"(http://127\.0\.0\.1:\d+/metrics)", line)
        assert match, line
        yield match.group(1), process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scrape(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - started, body


def collection_seconds(body: bytes) -> float:
    match = re.search(rb"^ctguard_scrape_duration_seconds (\S+)$", body, re.M)
    assert match, "no ctguard_scrape_duration_seconds in the scrape"
    return float(match.group(1))


def namespaces_read(body: bytes) -> int:
    return len(re.findall(rb"^ctguard_netns_info\{", body, re.M))


def entries_read(body: bytes) -> float:
    return sum(
        float(v) for v in re.findall(rb"^ctguard_conntrack_entries\{[^}]*\} (\S+)$", body, re.M)
    )


def bench_scrapes(urls: dict[str, str], scrapes: int) -> dict[str, dict[str, float]]:
    """Each exporter scraped ``scrapes`` times, turn about."""
    walls: dict[str, list[float]] = {name: [] for name in urls}
    rounds: dict[str, list[float]] = {name: [] for name in urls}
    last: dict[str, bytes] = {}
    for url in urls.values():
        scrape(url)  # a first scrape (imports, the first namespace listing) not counted
    for _ in range(scrapes):
        for name, url in urls.items():
            wall, body = scrape(url)
            walls[name].append(wall)
            rounds[name].append(collection_seconds(body))
            last[name] = body
    return {
        name: {
            **summary(walls[name]),
            "collection_median_ms": statistics.median(rounds[name]) * 1000,
            "collection_worst_ms": max(rounds[name]) * 1000,
            "namespaces_read": namespaces_read(last[name]),
            "entries_read": entries_read(last[name]),
        }
        for name in urls
    }


def bench_commands(commands: dict[str, list[str]], runs: int) -> dict[str, dict[str, float]]:
    """Whole commands, turn about, ``runs`` times each (plus one not counted)."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for index in range(runs + 1):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            if index:
                walls[name].append(time.perf_counter() - started)
    return {name: summary(seconds) for name, seconds in walls.items()}


def baselines(namespaces: list[LabNamespace], runs: int) -> dict[str, dict[str, float]]:
    first = namespaces[0].name
    names = " ".join(ns.name for ns in namespaces)
    files = " ".join(NODE_EXPORTER_FILES)
    loop = f'for ns in {names}; do ip netns exec "$ns" cat {files}; done'
    count_loop = f'for ns in {names}; do ip netns exec "$ns" conntrack -C; done'
    return bench_commands(
        {
            "cat count max stat, 1 netns": [
                "ip",
                "netns",
                "exec",
                first,
                "cat",
                *NODE_EXPORTER_FILES,
            ],
            "conntrack -C, 1 netns": ["ip", "netns", "exec", first, "conntrack", "-C"],
            f"cat count max stat, {len(namespaces)} netns": ["sh", "-c", loop],
            f"conntrack -C, {len(namespaces)} netns": ["sh", "-c", count_loop],
        },
        runs,
    )


def raise_hash_for(total: int, lab: Lab) -> int | None:
    """Raise the global hash size for ``total`` entries (undone by the lab's close)."""
    buckets = current_buckets()
    if total <= buckets * ENTRIES_PER_BUCKET:
        return None
    refusal = global_change_refusal()
    if refusal:
        raise SystemExit(f"{total:,} entries need a larger hash (global), but {refusal}")
    wanted = 1 << (total // ENTRIES_PER_BUCKET - 1).bit_length()
    plan = Plan(
        "bench: temporary hash size",
        (
            SetModuleParam(
                "nf_conntrack", "hashsize", str(wanted), why="benchmark; restored at its end"
            ),
        ),
    )
    journal = Journal(lab.state_dir)
    with journal.locked():
        apply_plan(plan, journal, System())
    return wanted


def fill_all(
    namespaces: list[LabNamespace], first: int, entries: int, progress: Callable[[str], None]
) -> float:
    started = time.monotonic()
    for index, ns in enumerate(namespaces):
        wanted = first if index == 0 else entries
        created, failures = fill_table(ns, synthetic_flows(wanted, sources=4096, timeout=3600))
        if created != wanted:
            raise SystemExit(f"{ns.name}: {created:,} of {wanted:,} entries created ({failures})")
        if index % 10 == 9 or index == len(namespaces) - 1:
            progress(f"filled {index + 1} of {len(namespaces)} namespaces")
    return time.monotonic() - started


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: exporters, tables, hash, namespaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--entries", type=int, default=200_000, help="per namespace")
    parser.add_argument(
        "--first-entries",
        type=int,
        help="in the first namespace (the one the --netns exporter reads), if not --entries",
    )
    parser.add_argument("--scrapes", type=int, default=100, help="per exporter and phase")
    parser.add_argument("--runs", type=int, default=20, help="of each baseline command")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--hold", type=float, default=0, help="seconds to keep everything up at the end"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, ctnetlink)")
    first = args.entries if args.first_entries is None else args.first_entries
    if max(first, args.entries) > current_max():
        raise SystemExit(
            f"{max(first, args.entries):,} entries are above nf_conntrack_max ({current_max():,})"
        )
    signal.signal(signal.SIGTERM, _terminate)
    results: dict[str, object] = {}

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
        if args.json:  # what is measured so far survives an interrupted run
            args.json.write_text(json.dumps(results, indent=2))

    clean_leftovers()
    results.update(
        namespaces=args.namespaces,
        entries_first_namespace=first,
        entries_per_other_namespace=args.entries,
        hash_buckets_before=current_buckets(),
    )
    with Lab(kmsg=None) as lab:
        namespaces = [lab.add_namespace(f"b{i}") for i in range(args.namespaces)]
        progress(f"{len(namespaces)} namespaces made")
        results["hash_buckets_during"] = raise_hash_for(
            first + (args.namespaces - 1) * args.entries, lab
        )
        with (
            exporter(["--netns", namespaces[0].name]) as (one_url, one_pid),
            exporter(["--all-netns"]) as (all_url, all_pid),
        ):
            urls = {"1 netns": one_url, "all netns": all_url}
            results["empty"] = bench_scrapes(urls, args.scrapes)
            progress(f"empty tables: {json.dumps(results['empty'])}")
            results["fill_seconds"] = fill_all(namespaces, first, args.entries, progress)
            results["full"] = bench_scrapes(urls, args.scrapes)
            progress(f"full tables: {json.dumps(results['full'])}")
            results["rss"] = {"1 netns": rss_mib(one_pid), "all netns": rss_mib(all_pid)}
            results["baselines"] = baselines(namespaces, args.runs)
            progress(f"exporters' RSS {json.dumps(results['rss'])}; baselines measured")
            if args.hold > 0:
                progress(
                    f"holding {args.hold:.0f} s: {one_url} {all_url}; namespaces "
                    f"{namespaces[0].name} .. {namespaces[-1].name}"
                )
                time.sleep(args.hold)
        progress("deleting the namespaces, putting the hash size back")
    results["hash_buckets_after"] = current_buckets()
    progress("done")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
