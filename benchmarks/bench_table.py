"""ctguard top/analyze against the shell pipeline people use, in one run.

    python -m benchmarks.bench_table [--entries 1000000] [--live] [--repeat 3]

Generates a procfs dump (mix of protocols and states, IPv4 and IPv6,
Zipf-distributed sources; cached under --workdir), then times, side by side:

- the pipeline:  LC_ALL=C awk '{...first src=...}' FILE | LC_ALL=C sort | LC_ALL=C uniq -c
  | LC_ALL=C sort -nr | head
- ``ctguard top FILE --by src``
- one awk pass keeping analyze's five tallies (src, dst, dport, state,
  proto), then the top 5 of each: the equal-work baseline for analyze
- ``ctguard analyze FILE``

``--shape`` picks the dump: ``busy`` (the mix above), ``portscan`` (the same
with one source probing 60,000 ports spread through it), ``spoofed`` (every
entry from a different source).

and reports wall time (best of --repeat), the ratio to the pipeline, and peak
RSS (sum over the process tree, sampled every 10 ms, and the largest single
process from the kernel's own accounting).  The commands take turns, one run
of each per round, so a slow spell of the machine hits them alike; the
sampler follows only the command's own process tree (its ``children``
files), so it costs little CPU beside a command that uses every core.
ctguard's modules are byte-compiled first, as an install leaves them.

With ``--live`` (root), it also fills a network namespace with 262,144 real
entries, from 4,096 sources and then each from a source of its own (a
spoofed flood), and compares ``ctguard top --netns`` and ``ctguard analyze
--netns`` with ``cat /proc/net/nf_conntrack > /dev/null`` there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.dumpgen import generate_dump

# what people type today, LC_ALL=C on every stage (sort in the C locale
# compares bytes: several times faster than in a UTF-8 one)
PIPELINE = (
    "LC_ALL=C awk '{for(i=1;i<=NF;i++) if($i ~ /^src=/){print substr($i,5); break}}' {file} "
    "| LC_ALL=C sort | LC_ALL=C uniq -c | LC_ALL=C sort -nr | head"
)
# the equal-work baseline for analyze: one pass keeping five tallies (source,
# destination, destination port, state, protocol), the top 5 of each
AWK_FIVE = (
    'LC_ALL=C awk \'{s=d=p=""; for(i=1;i<=NF;i++){f=$i; '
    'if(s=="" && f ~ /^src=/) s=substr(f,5); '
    'else if(d=="" && f ~ /^dst=/) d=substr(f,5); '
    "else if(f ~ /^dport=/){p=substr(f,7); break}} "
    't=($6 ~ /=/) ? "-" : $6; S[s]++; D[d]++; P[p]++; T[t]++; R[$3]++} '
    'END{for(k in S) print S[k], "src", k; for(k in D) print D[k], "dst", k; '
    'for(k in P) print P[k], "dport", k; for(k in T) print T[k], "state", k; '
    'for(k in R) print R[k], "proto", k}\' {file} '
    "| LC_ALL=C sort -k1,1nr | LC_ALL=C awk 'n[$2]++ < 5'"
)
CTGUARD = [sys.executable, "-m", "ctguard"]


@dataclass
class Timing:
    name: str
    seconds: float
    tree_rss_mib: float
    max_rss_mib: float


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (CONFIG_PROC_CHILDREN)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(child) for child in handle.read().split())
        except (OSError, ValueError):
            continue
    return found


def _tree_rss_kib(root: int) -> int:
    """VmRSS summed over ``root`` and its descendants (best effort)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(_children(pid))
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def run_once(name: str, argv: list[str], shell: bool = False) -> Timing:
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv if not shell else ["bash", "-c", argv[0]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"{name} failed with exit status {proc.returncode}")
    return Timing(name, seconds, peak / 1024, usage.ru_maxrss / 1024)


@dataclass
class Command:
    name: str
    argv: list[str]
    shell: bool = False


def best_of_each(repeat: int, commands: list[Command]) -> list[Timing]:
    """Each command's best time over ``repeat`` rounds (one run of each per
    round), with the largest RSS seen in any of its runs."""
    runs: list[list[Timing]] = [[] for _ in commands]
    for _ in range(repeat):
        for command, timings in zip(commands, runs, strict=True):
            timings.append(run_once(command.name, command.argv, command.shell))
    bests = []
    for timings in runs:
        best = min(timings, key=lambda t: t.seconds)
        best.tree_rss_mib = max(t.tree_rss_mib for t in timings)
        best.max_rss_mib = max(t.max_rss_mib for t in timings)
        bests.append(best)
    return bests


def ensure_bytecode() -> None:
    """Byte-compile ctguard's modules, as ``pip install`` leaves them.

    An editable install run with PYTHONDONTWRITEBYTECODE=1 (common in
    containers) never writes them, so every start would compile every module
    it imports again (~10 ms): a cost of that setup, not of ctguard.
    """
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("ctguard")
    for location in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(location, quiet=1)


SHAPES = ("busy", "portscan", "spoofed")
SCANNER_PORTS = 60_000


def reshape(line: str, number: int, entries: int, shape: str) -> str:
    """A line of the busy dump, made into ``shape``'s (see the module's doc)."""
    if shape == "spoofed":
        head, _, rest = line.partition(" src=")
        _, _, rest = rest.partition(" ")
        if line.startswith("ipv6"):  # expanded, as procfs prints it
            address = f"2001:0db8:ffff:{number >> 16:04x}:{number & 0xFFFF:04x}:0000:0000:0001"
        else:
            address = f"100.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"
        return f"{head} src={address} {rest}"
    step = max(1, entries // SCANNER_PORTS)
    if shape == "portscan" and number % step == 0 and number // step < SCANNER_PORTS:
        port = number // step + 1
        return (
            f"ipv4     2 tcp      6 110 SYN_SENT src=203.0.113.66 dst=192.0.2.80 sport=40000 "
            f"dport={port} [UNREPLIED] src=192.0.2.80 dst=203.0.113.66 sport={port} "
            "dport=40000 mark=0 zone=0 use=2"
        )
    return line


def ensure_dump(workdir: Path, entries: int, shape: str = "busy") -> Path:
    name = "procfs" if shape == "busy" else shape
    path = workdir / f"{name}-{entries}.txt"
    if not path.exists():
        print(f"generating {entries:,} entries ({shape}) -> {path}", file=sys.stderr)
        partial = path.with_suffix(".partial")
        if shape == "busy":
            with open(partial, "w") as out:
                generate_dump(out, entries, "procfs")
        else:
            with open(ensure_dump(workdir, entries)) as busy, open(partial, "w") as out:
                for number, line in enumerate(busy):
                    out.write(reshape(line.rstrip("\n"), number, entries, shape) + "\n")
        partial.rename(path)
    return path


def report(rows: list[Timing], baseline: Timing, title: str) -> list[dict[str, object]]:
    print(f"\n{title}")
    print(f"{'command':<42} {'wall s':>8} {'ratio':>7} {'tree RSS MiB':>13} {'max RSS MiB':>12}")
    out = []
    for row in rows:
        ratio = row.seconds / baseline.seconds
        print(
            f"{row.name:<42} {row.seconds:>8.3f} {ratio:>6.2f}x "
            f"{row.tree_rss_mib:>13.1f} {row.max_rss_mib:>12.1f}"
        )
        out.append({**row.__dict__, "ratio": round(ratio, 3)})
    return out


def bench_file(
    entries: int, workdir: Path, repeat: int, shape: str = "busy"
) -> list[dict[str, object]]:
    dump = ensure_dump(workdir, entries, shape)
    subprocess.run(["cat", str(dump)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    pipeline, top, five, analyze = best_of_each(
        repeat,
        [
            Command(
                "awk | sort | uniq -c | sort -nr", [PIPELINE.replace("{file}", str(dump))], True
            ),
            Command("ctguard top --by src", [*CTGUARD, "top", str(dump), "--by", "src"]),
            Command("awk, five tallies", [AWK_FIVE.replace("{file}", str(dump))], True),
            Command("ctguard analyze", [*CTGUARD, "analyze", str(dump)]),
        ],
    )
    size = dump.stat().st_size / 2**20
    title = f"{entries:,}-entry procfs dump, {shape} ({size:,.0f} MiB)"
    rows = report([pipeline, top], pipeline, title)
    return rows + report([five, analyze], five, "analyze against the equal-work awk")


def bench_live(repeat: int) -> list[dict[str, object]]:
    from ctguard.lab.fill import fill_table, synthetic_flows
    from ctguard.lab.namespaces import Lab

    max_entries = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    count = min(262_144, max_entries)
    rows: list[dict[str, object]] = []
    for label, sources in (("4,096 sources", 4096), ("a source per entry", count)):
        with Lab() as lab:
            ns = lab.add_namespace("bench")
            created, _ = fill_table(ns, synthetic_flows(count, sources=sources, timeout=3600))
            cat_argv = ["ip", "netns", "exec", ns.name, "cat", "/proc/net/nf_conntrack"]
            cat, top, analyze = best_of_each(
                repeat,
                [
                    Command("cat /proc/net/nf_conntrack", cat_argv),
                    Command("ctguard top --netns", [*CTGUARD, "top", "--netns", ns.name]),
                    Command("ctguard analyze --netns", [*CTGUARD, "analyze", "--netns", ns.name]),
                ],
            )
            title = f"live table in a namespace ({created:,} entries, {label})"
            rows += report([cat, top, analyze], cat, title)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/ctguard-bench"))
    parser.add_argument("--shape", choices=SHAPES, default="busy", help="the dump's shape")
    parser.add_argument("--live", action="store_true", help="also the live-table benchmark (root)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    ensure_bytecode()
    results = {"file": bench_file(args.entries, args.workdir, args.repeat, args.shape)}
    if args.live:
        results["live"] = bench_live(args.repeat)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
