"""Where kernel log lines come from, live or from a bundle.

Live, in order of preference: the ring buffer (/dev/kmsg, then the
``dmesg`` tool), the journal (``journalctl -k``), then the classic files
(/var/log/kern.log, messages, syslog, with rotated and .gz siblings, oldest
first).  Reading the ring buffer needs root where kernel.dmesg_restrict=1.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import re
import select
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctguard.errors import AccessDenied, CtguardError, SourceMissing
from ctguard.kernel.root import KernelRoot

SYSLOG_FILES = ("kern.log", "messages", "syslog")
TOOL_TIMEOUT = 60.0


@dataclass(frozen=True)
class LogSource:
    """Lines plus what is known about their clock."""

    label: str
    lines: list[str]
    boot_time: datetime | None
    reference: datetime  # "now" for the log: capture time or the current time


def read_kmsg(path: str = "/dev/kmsg") -> list[str]:
    """Every record currently in the ring buffer (``pri,seq,usec,flags;msg``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as err:
        raise SourceMissing("no kernel ring buffer device", where=path) from err
    except PermissionError as err:
        raise AccessDenied(
            "reading the kernel ring buffer needs root (kernel.dmesg_restrict=1)",
            where=path,
            hint="run as root, or give log files: ctguard logs /var/log/kern.log",
        ) from err
    lines: list[str] = []
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EPIPE:  # overwritten while reading: skip ahead
                    continue
                raise
            if not record:
                break
            lines.append(record.decode("utf-8", "replace").split("\n", 1)[0])
    finally:
        os.close(fd)
    return lines


def follow_kmsg(path: str = "/dev/kmsg", poll: float = 1.0) -> Iterator[str | None]:
    """New ring-buffer records as they arrive; ``None`` every ``poll`` s of silence."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError as err:
        raise AccessDenied("following the kernel log needs root", where=path) from err
    try:
        os.lseek(fd, 0, os.SEEK_END)
        while True:
            ready, _, _ = select.select([fd], [], [], poll)
            if not ready:
                yield None
                continue
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                continue
            except OSError as err:
                if err.errno == errno.EPIPE:
                    continue
                raise
            yield record.decode("utf-8", "replace").split("\n", 1)[0]
    finally:
        os.close(fd)


def _run(argv: list[str]) -> list[str]:
    if shutil.which(argv[0]) is None:
        raise SourceMissing(f"{argv[0]} is not installed")
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise CtguardError(f"{argv[0]} did not answer within {TOOL_TIMEOUT:.0f}s") from err
    if done.returncode != 0:
        message = done.stderr.strip().splitlines()
        raise CtguardError(f"{' '.join(argv)} failed: {message[0] if message else done.returncode}")
    return done.stdout.splitlines()


def read_dmesg_tool() -> list[str]:
    return _run(["dmesg"])


def read_journal(since: datetime | None = None) -> list[str]:
    argv = ["journalctl", "-k", "--no-pager", "-o", "short-iso"]
    if since is not None:
        argv += ["--since", since.astimezone().strftime("%Y-%m-%d %H:%M:%S")]
    return _run(argv)


def rotated_files(base: Path) -> list[Path]:
    """base.N.gz ... base.1, base: oldest first."""
    siblings = []
    pattern = re.compile(re.escape(base.name) + r"\.(\d+)(\.gz)?$")
    for candidate in base.parent.glob(base.name + ".*"):
        match = pattern.match(candidate.name)
        if match:
            siblings.append((int(match.group(1)), candidate))
    ordered = [path for _n, path in sorted(siblings, reverse=True)]
    return [*ordered, base] if base.exists() else ordered


def read_log_file(path: Path) -> list[str]:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
                return handle.read().splitlines()
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except FileNotFoundError as err:
        raise SourceMissing("log file not found", where=str(path)) from err
    except PermissionError as err:
        raise AccessDenied("cannot read log file", where=str(path), hint="run as root") from err
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise CtguardError(f"cannot read log file: {err}", where=str(path)) from err


def boot_time_live(proc: Path = Path("/proc")) -> datetime | None:
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return datetime.fromtimestamp(int(line.split()[1]), tz=UTC)
    except OSError:
        return None
    return None


def live_source(*, journal: bool = False, since: datetime | None = None) -> LogSource:
    now = datetime.now(UTC)
    if journal:
        return LogSource("journalctl -k", read_journal(since), boot_time_live(), now)
    errors: list[str] = []
    readers: list[tuple[str, Callable[[], list[str]]]] = [
        ("/dev/kmsg", read_kmsg),
        ("dmesg", read_dmesg_tool),
    ]
    for label, reader in readers:
        try:
            return LogSource(label, reader(), boot_time_live(), now)
        except CtguardError as err:
            errors.append(f"{label}: {err.what}")
    for name in SYSLOG_FILES:
        files = rotated_files(Path("/var/log") / name)
        if files:
            lines = [line for path in files for line in read_log_file(path)]
            return LogSource(", ".join(map(str, files)), lines, boot_time_live(), now)
    raise SourceMissing(
        "no kernel log could be read: " + "; ".join(errors),
        hint="run as root, or pass log files: ctguard logs /var/log/kern.log*",
    )


def bundle_source(root: KernelRoot) -> LogSource:
    """The dmesg (or journal) captured in a bundle, on the bundle's clock."""
    manifest_text = root.read_bundle("manifest.json")
    captured = datetime.now(UTC)
    if manifest_text:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            captured = datetime.fromtimestamp(
                float(json.loads(manifest_text)["captured_at_epoch"]), tz=UTC
            )
    boot: datetime | None = None
    uptime = root.read_proc("uptime")
    if uptime and manifest_text:
        try:
            boot = captured - timedelta(seconds=float(uptime.split()[0]))
        except (ValueError, IndexError):
            boot = None
    for rel in ("cmd/dmesg.txt", "cmd/journalctl_-k.txt"):
        text = root.read_bundle(rel)
        if text is not None:
            return LogSource(f"{root.label}: {rel}", text.splitlines(), boot, captured)
    raise SourceMissing(
        "this bundle holds no kernel log", where=str(root.bundle), hint="capture as root"
    )


def files_source(paths: list[str], stdin_text: str | None) -> LogSource:
    lines: list[str] = []
    for name in paths:
        if name == "-":
            lines += (stdin_text or "").splitlines()
        else:
            lines += read_log_file(Path(name))
    return LogSource(", ".join(paths), lines, None, datetime.now(UTC))
