"""`ctguard report --root BUNDLE` on bundles of 20,000 to 2,000,000 entries: the
report's size, peak memory and time, which must stay bounded as the table grows.

    python -m benchmarks.bench_report [--entries 20000,200000,2000000] [--repeat 3] [--tar]

Each bundle is what `ctguard capture` leaves on a host whose table is 80%
full: the table (dumpgen's mix: protocols and states, IPv4 and IPv6,
Zipf-distributed sources; cached under --workdir), its sysctls
(``nf_conntrack_max`` = 1.25 x entries), per-CPU counters with drops, a
kernel log of 2,000 "table full" lines in 4 episodes, and a guard database
as a guard watching 10 namespaces leaves it after a week (per-tick rows of
the last 6 hours, per-minute rows of the 7 days, 5,000 decisions, 200
active bans).  ``--tar`` also makes the largest into a .tar.gz (the usual
way a bundle travels) and reports on that.

Side by side, on the same table: ``ctguard analyze FILE`` (the table reading
the report includes) and the awk | sort | uniq -c pipeline people use.
Reported: wall time (best of --repeat), the ratio to the pipeline, the
report's size in bytes, and peak RSS (sum over the process tree, sampled
every 10 ms, and the largest single process from the kernel's accounting).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.bench_table import (
    CTGUARD,
    PIPELINE,
    Command,
    best_of_each,
    ensure_bytecode,
    ensure_dump,
)
from ctguard.gather.guard_db import MIGRATIONS, SAMPLES_KEEP, SAMPLES_RAW_KEEP
from ctguard.kernel.snapshot import BUNDLE_GUARD_DB

CAPTURED = 1_800_000_000.0  # the bundle's capture time (epoch)
UPTIME = 8 * 86400.0
NAMESPACES = 10


def _write(base: Path, rel: str, text: str) -> None:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _stat_nf_conntrack(entries: int) -> str:
    header = (
        "entries  clashres found new invalid ignore delete chainlength insert insert_failed "
        "drop early_drop icmp_error expect_new expect_create expect_delete search_restart"
    )
    row = f"{entries:08x} " + " ".join(f"{v:08x}" for v in (3, 9, 0, 40, 0, 0, 0, 0, 7))
    row += " " + " ".join(f"{v:08x}" for v in (1200, 300, 0, 0, 0, 0, 1))
    return f"{header}\n{row}\n{row}\n"


def _kernel_log() -> str:
    lines = []
    for episode in range(4):
        start = UPTIME - 6 * 3600 + episode * 5400
        for i in range(500):
            lines.append(
                f"[{start + i * 0.5:.6f}] nf_conntrack: nf_conntrack: table full, dropping packet"
            )
        lines.append(f"[{start + 251:.6f}] net_ratelimit: 120 callbacks suppressed")
    return "\n".join(lines) + "\n"


def _samples(limit: int) -> Iterator[tuple[float, str, float, int, int, int, int, int, int]]:
    """Rows as the guard's retention leaves them, generated (this process stays small:
    its size would show in the children's peak RSS, which counts from the fork)."""
    for k in range(NAMESPACES):
        name = f"ns-{k:02d}"
        drops = 0
        raw_from = CAPTURED - SAMPLES_RAW_KEEP
        minute = CAPTURED - SAMPLES_KEEP
        while minute < raw_from:  # per-minute rows
            count = int(limit * (0.3 + 0.6 * ((minute // 3600 + k) % 24) / 24))
            drops += 5 if count > 0.85 * limit else 0
            yield (minute, name, 60.0, count, count, limit, drops, drops // 4, 0)
            minute += 60
        at = raw_from
        while at < CAPTURED:  # per-tick rows
            full = (at // 1800) % 4 == 0
            count = limit if full else int(limit * 0.5)
            drops += 40 if full else 0
            yield (at, name, 0.0, count, count, limit, drops, drops // 4, 0)
            at += 1


def _guard_db(path: Path, limit: int) -> None:
    """A week of a guard watching NAMESPACES namespaces, written as its retention leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    for _, script in MIGRATIONS:
        db.executescript(script)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version (version) VALUES (?)", (MIGRATIONS[-1][0],))
    db.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)", _samples(limit))
    decisions = [
        (
            CAPTURED - 7 * 86400 + i * 120,
            f"ns-{i % NAMESPACES:02d}",
            f"198.51.{i // 250 % 250}.{i % 250}/32",
            "new-flows-source",
            1500.0,
            1000.0,
            "block" if i % 3 else "would-block",
            600.0 if i % 3 else None,
            0,
            json.dumps({"events": 1500}),
            "" if i % 3 else "dry run",
        )
        for i in range(5000)
    ]
    db.executemany(
        "INSERT INTO decisions (at, netns, target, signal, seen, threshold, action, duration,"
        " repeat, evidence, why_not) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        decisions,
    )
    db.executemany(
        "INSERT INTO bans (netns, target, added, expires, decision_id, status, changed)"
        " VALUES (?,?,?,?,?,?,?)",
        [
            (
                f"ns-{i % NAMESPACES:02d}",
                f"203.0.{i // 250}.{i % 250}/32",
                CAPTURED - 60,
                CAPTURED + 3600,
                None,
                "applied",
                CAPTURED - 60,
            )
            for i in range(200)
        ],
    )
    db.commit()
    db.close()


def ensure_bundle(workdir: Path, entries: int) -> Path:
    bundle = workdir / f"bundle-{entries}"
    if (bundle / "manifest.json").exists():
        return bundle
    shutil.rmtree(bundle, ignore_errors=True)
    limit = entries * 5 // 4
    net = "proc/sys/net/netfilter"
    for key, value in {
        "nf_conntrack_max": limit,
        "nf_conntrack_count": entries,
        "nf_conntrack_buckets": max(1024, limit // 4),
        "nf_conntrack_tcp_timeout_established": 432000,
        "nf_conntrack_udp_timeout": 30,
        "nf_conntrack_udp_timeout_stream": 120,
        "nf_conntrack_tcp_timeout_time_wait": 120,
        "nf_conntrack_generic_timeout": 600,
    }.items():
        _write(bundle, f"{net}/{key}", f"{value}\n")
    _write(bundle, "proc/sys/net/nf_conntrack_max", f"{limit}\n")
    _write(bundle, "proc/sys/kernel/osrelease", "6.1.0-28-amd64\n")
    _write(bundle, "proc/meminfo", "MemTotal:       16318412 kB\nMemFree: 1 kB\n")
    _write(bundle, "proc/uptime", f"{UPTIME:.2f} 0.00\n")
    _write(bundle, "proc/net/stat/nf_conntrack", _stat_nf_conntrack(entries))
    _write(bundle, "cmd/dmesg.txt", _kernel_log())
    (bundle / "sys/module/nf_conntrack/parameters").mkdir(parents=True, exist_ok=True)
    _write(bundle, "sys/module/nf_conntrack/parameters/hashsize", f"{max(1024, limit // 4)}\n")
    table = bundle / "proc/net/nf_conntrack"
    shutil.copyfile(ensure_dump(workdir, entries), table)
    _guard_db(bundle / BUNDLE_GUARD_DB, limit)
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    manifest = {
        "format": 1,
        "captured_at": "2027-01-15T08:00:00+0000",
        "captured_at_epoch": CAPTURED,
        "hostname": f"bench-{entries}",
        "kernel": "6.1.0-28-amd64",
        "files": files,
        "missing": {"proc/slabinfo": "benchmark bundle"},
    }
    _write(bundle, "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return bundle


def ensure_archive(bundle: Path) -> Path:
    archive = bundle.with_name(bundle.name + ".tar.gz")
    if not archive.exists():
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w:gz", compresslevel=1) as out:
            out.add(bundle, arcname=bundle.name)
        partial.rename(archive)
    return archive


def bench(
    entries: int, workdir: Path, repeat: int, root: Path | None = None
) -> list[dict[str, object]]:
    bundle = ensure_bundle(workdir, entries)
    root = root or bundle
    dump = bundle / "proc/net/nf_conntrack"
    page = workdir / f"report-{entries}{'-tar' if root != bundle else ''}.html"
    pipeline, analyze, report = best_of_each(
        repeat,
        [
            Command(
                "awk | sort | uniq -c | sort -nr", [PIPELINE.replace("{file}", str(dump))], True
            ),
            Command("ctguard analyze FILE", [*CTGUARD, "analyze", str(dump)]),
            Command(
                "ctguard report --root " + ("FILE.tar.gz" if root != bundle else "DIR"),
                [*CTGUARD, "report", "--root", str(root), "-o", str(page)],
            ),
        ],
    )
    size = page.stat().st_size
    print(
        f"\n{entries:,} entries ({dump.stat().st_size / 2**20:,.0f} MiB table), "
        f"report {size:,} bytes"
    )
    print(f"{'command':<42} {'wall s':>8} {'ratio':>7} {'tree RSS MiB':>13} {'max RSS MiB':>12}")
    rows: list[dict[str, object]] = []
    for row in (pipeline, analyze, report):
        ratio = row.seconds / pipeline.seconds
        print(
            f"{row.name:<42} {row.seconds:>8.3f} {ratio:>6.2f}x "
            f"{row.tree_rss_mib:>13.1f} {row.max_rss_mib:>12.1f}"
        )
        rows.append({**row.__dict__, "entries": entries, "ratio": round(ratio, 3)})
    rows[-1]["report_bytes"] = size
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", default="20000,200000,2000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/ctguard-bench"))
    parser.add_argument("--tar", action="store_true", help="also the largest as a .tar.gz")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    ensure_bytecode()
    sizes = [int(n) for n in args.entries.split(",")]
    results = [row for n in sizes for row in bench(n, args.workdir, args.repeat)]
    if args.tar:
        largest = max(sizes)
        archive = ensure_archive(ensure_bundle(args.workdir, largest))
        results += bench(largest, args.workdir, args.repeat, archive)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
