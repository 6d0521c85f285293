"""`ctguard capture`: copy everything ctguard reads into a bundle.

The bundle mirrors the kernel's layout (``proc/...``, ``sys/...``) so every
reader works on it unchanged through ``--root DIR``; tool outputs go to
``cmd/``, ctguard's own extractions to ``ctguard/``, and ``manifest.json``
says what was captured, what was missing and why.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ctguard import __version__
from ctguard.errors import CtguardError
from ctguard.kernel.root import KernelRoot, list_dir_or_empty
from ctguard.kernel.snapshot import BUNDLE_CONNTRACK_S, BUNDLE_GUARD_DB, BUNDLE_NETLINK_STATS
from ctguard.model.netns_ref import NetnsRef

PROC_FILES = (
    "sys/kernel/osrelease",
    "version",
    "meminfo",
    "slabinfo",
    "uptime",
    "sys/net/nf_conntrack_max",
    "sys/net/core/message_cost",
    "sys/net/core/message_burst",
    "net/stat/nf_conntrack",
    "net/stat/ip_conntrack",
    "net/stat/arp_cache",
    "net/stat/ndisc_cache",
    *(
        f"sys/net/{family}/neigh/default/{key}"
        for family in ("ipv4", "ipv6")
        for key in ("gc_thresh1", "gc_thresh2", "gc_thresh3", "gc_stale_time")
    ),
)
PROC_DIRS = ("sys/net/netfilter", "sys/net/ipv4/netfilter")
TABLE_FILES = ("net/nf_conntrack", "net/ip_conntrack")
SYS_MODULES = ("nf_conntrack", "ip_conntrack", "nf_conntrack_netlink")

# (bundle file, argv) of tool outputs worth keeping; missing tools are noted.
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cmd/dmesg.txt", ("dmesg",)),
    ("cmd/journalctl_-k.txt", ("journalctl", "-k", "--no-pager", "-o", "short-iso", "-n", "50000")),
    ("cmd/nft_list_ruleset.txt", ("nft", "list", "ruleset")),
    ("cmd/nft_-j_list_ruleset.json", ("nft", "-j", "list", "ruleset")),
    ("cmd/iptables-save.txt", ("iptables-save",)),
    ("cmd/ip6tables-save.txt", ("ip6tables-save",)),
    (BUNDLE_CONNTRACK_S, ("conntrack", "-S")),
    ("cmd/ip_netns_list.txt", ("ip", "netns", "list")),
)
COMMAND_TIMEOUT = 30.0


@dataclass
class CaptureResult:
    directory: Path
    files: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    table_bytes: int = 0


def _copy_file(source: Path, target: Path) -> int:
    """Stream-copy (proc files report size 0, so no shutil.copyfile size tricks)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)
            written += len(chunk)
    return written


def _capture_path(
    root: KernelRoot, rel: str, source: Path, dest: Path, result: CaptureResult
) -> int:
    try:
        size = _copy_file(source, dest / rel)
    except FileNotFoundError:
        result.missing[rel] = "not present on this host"
        return 0
    except OSError as err:
        result.missing[rel] = os.strerror(err.errno or 0)
        (dest / rel).unlink(missing_ok=True)
        return 0
    result.files.append(rel)
    return size


def _run_tool(argv: tuple[str, ...]) -> tuple[bytes | None, str]:
    if shutil.which(argv[0]) is None:
        return None, f"{argv[0]} not installed"
    try:
        done = subprocess.run(argv, capture_output=True, timeout=COMMAND_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {COMMAND_TIMEOUT:.0f}s"
    except OSError as err:
        return None, os.strerror(err.errno or 0)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        return None, f"exit {done.returncode}: {reason[0] if reason else 'no message'}"
    return done.stdout, ""


def capture_into(
    dest: Path,
    root: KernelRoot,
    netns: NetnsRef | None,
    *,
    with_table: bool,
    with_tools: bool = True,
    guard_db: Path | None = None,
) -> CaptureResult:
    """Copy the live state into ``dest`` (call inside the netns to capture);
    ``guard_db``: the guard's database, copied consistently if it exists."""
    result = CaptureResult(dest)
    if guard_db is not None:
        _capture_guard_db(guard_db, dest, result)
    for rel in PROC_FILES:
        _capture_path(root, f"proc/{rel}", root.proc_path(rel), dest, result)
    for directory in PROC_DIRS:
        for name in list_dir_or_empty(root.proc_path(directory)):
            rel = f"{directory}/{name}"
            _capture_path(root, f"proc/{rel}", root.proc_path(rel), dest, result)
    if with_table:
        for rel in TABLE_FILES:
            result.table_bytes += _capture_path(
                root, f"proc/{rel}", root.proc_path(rel), dest, result
            )
    for module in SYS_MODULES:
        base = f"module/{module}"
        if not root.sys_path(base).is_dir():
            continue
        (dest / "sys" / base).mkdir(parents=True, exist_ok=True)
        for name in list_dir_or_empty(root.sys_path(f"{base}/parameters")):
            rel = f"{base}/parameters/{name}"
            _capture_path(root, f"sys/{rel}", root.sys_path(rel), dest, result)
        for holder in list_dir_or_empty(root.sys_path(f"{base}/holders")):
            (dest / "sys" / base / "holders" / holder).mkdir(parents=True, exist_ok=True)
    if not (dest / "proc/net/stat/nf_conntrack").exists():
        _capture_netlink_stats(dest, result)
    if with_tools:
        for rel, argv in COMMANDS:
            output, reason = _run_tool(argv)
            if output is None:
                result.missing[rel] = reason
                continue
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(output)
            result.files.append(rel)
    _write_manifest(dest, netns, result)
    return result


def _capture_guard_db(source: Path, dest: Path, result: CaptureResult) -> None:
    """A consistent copy of the guard's database, through SQLite's backup API: the
    guard may be writing it; the source is opened read-only and never locked for
    writing.  The copy is one self-contained file (no write-ahead log)."""
    import sqlite3

    if not source.exists():
        result.missing[BUNDLE_GUARD_DB] = f"the guard has not run on this host (no {source})"
        return
    target = dest / BUNDLE_GUARD_DB
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(source, "rb"):  # a clear "permission denied" rather than sqlite's wording
            pass
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            writer = sqlite3.connect(target)
            try:
                reader.backup(writer)
                writer.execute("PRAGMA journal_mode=DELETE")
            finally:
                writer.close()
        finally:
            reader.close()
    except (OSError, sqlite3.Error) as err:
        reason = os.strerror(err.errno or 0) if isinstance(err, OSError) else str(err)
        result.missing[BUNDLE_GUARD_DB] = f"{source}: {reason}"
        target.unlink(missing_ok=True)
        return
    result.files.append(BUNDLE_GUARD_DB)


def _capture_netlink_stats(dest: Path, result: CaptureResult) -> None:
    from ctguard.kernel.ctnetlink import CtnetlinkSocket

    try:
        with CtnetlinkSocket() as sock:
            rows = sock.stats_per_cpu()
    except CtguardError as err:
        result.missing[BUNDLE_NETLINK_STATS] = err.what
        return
    target = dest / BUNDLE_NETLINK_STATS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows))
    result.files.append(BUNDLE_NETLINK_STATS)


def _write_manifest(dest: Path, netns: NetnsRef | None, result: CaptureResult) -> None:
    manifest = {
        "format": 1,
        "ctguard": __version__,
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "captured_at_epoch": time.time(),
        "hostname": platform.node(),
        "kernel": platform.release(),
        "netns": None
        if netns is None
        else {"inode": netns.inode, "path": netns.path, "names": list(netns.names)},
        "files": sorted(result.files),
        "missing": dict(sorted(result.missing.items())),
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def is_archive_name(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def prepare_destination(path: Path) -> Path:
    """The directory to write into: ``path`` itself, or a temp dir for an archive."""
    if is_archive_name(path):
        return Path(tempfile.mkdtemp(prefix="ctguard-capture-")) / path.name.split(".")[0]
    if path.exists() and any(path.iterdir()):
        raise CtguardError(
            "capture directory is not empty",
            where=str(path),
            hint="give a new or empty directory (nothing is overwritten), "
            "or a name ending in .tar.gz",
        )
    return path


def finish_destination(work: Path, path: Path) -> None:
    if not is_archive_name(path):
        return
    with tarfile.open(path, "w:gz") as archive:
        archive.add(work, arcname=work.name)
    shutil.rmtree(work.parent, ignore_errors=True)
