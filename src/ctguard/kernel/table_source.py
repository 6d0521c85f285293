"""Where a conntrack table comes from, and how it is read in chunks.

Sources: the live table of this or another network namespace
(``/proc/net/nf_conntrack``, legacy ``ip_conntrack``, or ``conntrack -L -o
extended`` when procfs is compiled out), a capture bundle, a file (plain or
gzip, detected by content), or stdin.

Reading is the expensive part on a live host: the kernel prints the table
one page per ``read()``, and only while ``read()`` runs.  So a ``cat`` child
reads it, started by :func:`reading_started` before the command has even
loaded its parser, and the parser reads cat's output in parallel.  A large
regular file is scanned by worker processes that claim blocks of it
(``range_scan``), only when the caller asks for them: a command that runs
once and exits may fork; a long-running process with threads must not
(``scan_table``'s ``workers``).  Chunking lives in ``table_chunks``.

The scanner (patterns compiled at import) is imported only where a scan
runs, so that the live table's reading can start without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Literal

from ctguard.errors import AccessDenied, ParseError, SourceMissing
from ctguard.kernel.netns import entered_netns
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.table_chunks import CHUNK_BYTES, iter_chunks_ahead
from ctguard.model.netns_ref import NetnsRef

if TYPE_CHECKING:
    from ctguard.parse.table_scan import ScanResult, ScanSpec

LIVE_READ_BYTES = 1 << 20
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20
SO_SNDBUFFORCE = 32  # Linux: a send buffer past net.core.wmem_max (CAP_NET_ADMIN)
SOCKET_BYTES = 8 << 20  # the kernel doubles it (bookkeeping): ~16 MiB of the table ahead
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class TableSource:
    """A resolved source: a label for reports and how to open it."""

    label: str
    kind: str  # "live-procfs" | "live-tool" | "bundle" | "file" | "stdin"
    path: Path | None = None
    netns: NetnsRef | None = None
    argv: tuple[str, ...] = ()
    stream: BinaryIO | None = field(default=None, compare=False, repr=False)
    # the live table's reader, when it was started ahead (reading_started)
    reader: LiveReader | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LiveReader:
    """A ``cat`` child printing the live table into ``stream``."""

    proc: subprocess.Popen[bytes]
    stream: IO[bytes]
    errors: IO[bytes]


def resolve_table_source(
    spec: str | None,
    root: KernelRoot,
    netns: NetnsRef | None = None,
    stdin: BinaryIO | None = None,
) -> TableSource:
    """FILE, ``-`` (stdin), or None: the table of ``root`` (live or a bundle)."""
    if spec == "-":
        return TableSource("stdin", "stdin", stream=stdin or sys.stdin.buffer)
    if spec is not None:
        path = Path(spec)
        if not path.exists():
            raise SourceMissing(
                "no such dump file",
                where=spec,
                hint="give a file saved from /proc/net/nf_conntrack or `conntrack -L`, "
                "or `-` for stdin",
            )
        if path.is_dir():
            raise ParseError(
                "a directory is not a dump", where=spec, hint="use --root DIR for a capture bundle"
            )
        return TableSource(str(path), "file", path=path)
    for rel in ("net/nf_conntrack", "net/ip_conntrack"):
        candidate = root.proc_path(rel)
        if root.is_live:
            with entered_netns(netns):
                exists = candidate.exists()
        else:
            exists = candidate.exists()
        if exists:
            where = "/proc/" + rel if root.is_live else str(candidate)
            kind = "live-procfs" if root.is_live else "bundle"
            label = where if netns is None else f"{where} in netns {netns.label}"
            return TableSource(label, kind, path=candidate, netns=netns)
    if not root.is_live:
        raise SourceMissing(
            "the bundle holds no conntrack table",
            where=root.label,
            hint="capture without --no-table, or pass a dump file",
        )
    tool = shutil.which("conntrack")
    if tool is None:
        raise SourceMissing(
            "this kernel has no /proc/net/nf_conntrack (CONFIG_NF_CONNTRACK_PROCFS off) "
            "and the conntrack tool is not installed",
            where="/proc/net/nf_conntrack",
            hint="install conntrack (conntrack-tools) or pass a dump file",
        )
    label = "conntrack -L" if netns is None else f"conntrack -L in netns {netns.label}"
    return TableSource(label, "live-tool", netns=netns, argv=(tool, "-L", "-o", "extended"))


def _open_raw(source: TableSource, stack: ExitStack) -> IO[bytes]:
    if source.kind == "stdin":
        return source.stream or sys.stdin.buffer
    if source.kind == "live-tool":
        errors = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the stack closes it
        with entered_netns(source.netns):
            proc = subprocess.Popen(source.argv, stdout=subprocess.PIPE, stderr=errors)
        stack.callback(_check_tool, proc, errors, source.label)
        assert proc.stdout is not None
        return proc.stdout
    assert source.path is not None
    if source.kind == "live-procfs" and shutil.which("cat"):
        return _procfs_through_cat(source, stack)
    try:
        with entered_netns(source.netns):
            raw: IO[bytes] = stack.enter_context(open(source.path, "rb", buffering=0))  # noqa: SIM115
    except PermissionError as err:
        raise AccessDenied(
            "may not read the conntrack table", where=str(source.path), hint="run as root"
        ) from err
    except FileNotFoundError as err:
        raise SourceMissing("the conntrack table vanished", where=str(source.path)) from err
    return raw


def _procfs_through_cat(source: TableSource, stack: ExitStack) -> IO[bytes]:
    """The live table read by a `cat` child (started now, or ahead by
    :func:`reading_started`), the parser reading its output.

    The kernel prints /proc/net/nf_conntrack one page per read() and only
    while read() runs; a reader thread here would have to win the GIL back
    from the parser ~12,000 times for 262,144 entries.  In its own process
    the kernel's printing and the parsing overlap for real.
    """
    reader = source.reader or stack.enter_context(_live_reader(source))
    stack.callback(_check_cat, reader, source)
    return reader.stream


@contextlib.contextmanager
def reading_started(source: TableSource) -> Iterator[TableSource]:
    """``source`` with its reading already under way, for the rest of the block.

    For the live procfs table, the ``cat`` child starts now: the kernel
    prints while the command loads its parser (~20 ms on a small machine),
    into a buffer that holds ~16 MiB when this process may enlarge it.  At
    the end of the block a reader still running is stopped.  Other sources
    are returned as they are (nothing to gain).
    """
    if source.kind != "live-procfs" or source.reader is not None or shutil.which("cat") is None:
        yield source
        return
    with _live_reader(source) as reader:
        yield replace(source, reader=reader)


@contextlib.contextmanager
def _live_reader(source: TableSource) -> Iterator[LiveReader]:
    """A `cat` child reading the live table; stopped and reaped at exit."""
    with ExitStack() as stack:
        errors = stack.enter_context(tempfile.TemporaryFile())
        read_fd, write_fd = _cat_output_channel()
        stream = stack.enter_context(open(read_fd, "rb", buffering=0))
        try:
            with entered_netns(source.netns):  # the child inherits this thread's namespace
                proc = subprocess.Popen(["cat", str(source.path)], stdout=write_fd, stderr=errors)
        finally:
            os.close(write_fd)
        stack.callback(_reap, proc)
        yield LiveReader(proc, stream, errors)


def _cat_output_channel() -> tuple[int, int]:
    """(read end, write end) for cat's output.

    A Unix socket whose send buffer is forced large (CAP_NET_ADMIN, which
    reading another namespace's table needs anyway) lets the kernel print
    ~16 MiB ahead of the parser; otherwise a pipe enlarged to
    ``fs.pipe-max-size`` (1 MiB by default; more needs CAP_SYS_RESOURCE).
    """
    import socket  # only the live table needs it: files start ~2 ms sooner

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        theirs.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SOCKET_BYTES)
    except OSError:
        ours.close()
        theirs.close()
    else:
        ours.shutdown(socket.SHUT_WR)
        return ours.detach(), theirs.detach()
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # a larger pipe: fewer, bigger reads
        fcntl.fcntl(read_fd, F_SETPIPE_SZ, PIPE_BYTES)
    return read_fd, write_fd


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _child_failure(
    proc: subprocess.Popen[bytes], errors: IO[bytes], *, finished: bool = False
) -> list[str] | None:
    """After reading: None when the child succeeded (or was stopped early on
    purpose: a sample, an exception), else its stderr lines.  A reader's own
    failure is an error, never an empty table.  ``finished``: its output was
    read to the end, so it is exiting by itself: wait for its status rather
    than stop it (on a busy machine it may not have exited yet)."""
    if finished:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    if proc.poll() is None:
        proc.kill()
    if proc.wait() in (0, -9):
        return None
    errors.seek(0)
    text = errors.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if line.strip()] or [f"exit {proc.returncode}"]


def _output_ended(stream: IO[bytes]) -> bool:
    """Whether the child closed its end of ``stream`` (it has written everything)."""
    import select

    try:
        readable, _, _ = select.select([stream], [], [], 0)
        return bool(readable) and os.read(stream.fileno(), 1) == b""
    except (OSError, ValueError):
        return False


def _check_cat(reader: LiveReader, source: TableSource) -> None:
    proc, errors = reader.proc, reader.errors
    lines = _child_failure(proc, errors, finished=_output_ended(reader.stream))
    if lines is None:
        return
    if any("denied" in line for line in lines):
        raise AccessDenied(
            "may not read the conntrack table", where=str(source.path), hint="run as root"
        )
    raise SourceMissing(f"cannot read the conntrack table: {lines[0]}", where=str(source.path))


def _check_tool(proc: subprocess.Popen[bytes], errors: IO[bytes], label: str) -> None:
    lines = _child_failure(proc, errors)
    if lines is None:
        return
    lines = [line for line in lines if "flow entries have been shown" not in line]
    raise AccessDenied(
        f"`conntrack -L` failed: {lines[0] if lines else f'exit status {proc.returncode}'}",
        where=label,
        hint="run as root (ctnetlink needs CAP_NET_ADMIN) with nf_conntrack_netlink loadable",
    )


def open_table_stream(source: TableSource, stack: ExitStack) -> io.BufferedIOBase:
    """The dump as a byte stream; gzip is recognised by its magic number."""
    raw = _open_raw(source, stack)
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[type-var]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        import gzip

        return gzip.GzipFile(fileobj=buffered)
    return buffered


def _is_plain_regular_file(path: Path) -> bool:
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with open(path, "rb") as handle:
            return handle.read(2) != GZIP_MAGIC
    except OSError:
        return False


def scan_table(
    source: TableSource,
    spec: ScanSpec,
    *,
    workers: int | Literal["auto"] = 1,
    sample_bytes: int | None = None,
    while_waiting: Callable[[], object] | None = None,
) -> ScanResult:
    """Scan a source with ``spec``: the one entry point for commands.

    ``workers`` is how many processes may scan a large plain file: 1 (the
    default) scans in this process and never forks; N forks N - 1 children;
    ``"auto"`` one per CPU, at most ``range_scan.MAX_WORKERS``, for a file
    over ``range_scan.PARALLEL_MIN_BYTES``.  Only a caller that is a
    process of its own to fork (a command run once) should ask: a fork
    copies one thread of a threaded daemon, locks held by the others
    included.  Any other source is read by this process alone.
    ``sample_bytes`` reads only the start of the source (the live table is
    printed in hash order, so its start is a fair sample of its content).
    ``while_waiting`` runs in this process while worker processes scan a
    file they share (not called otherwise): they take more of the file
    meanwhile, so the work is done on a CPU that would otherwise wait.
    """
    try:
        return _scan_source(source, spec, workers, sample_bytes, while_waiting)
    except (EOFError, OSError) as err:  # gzip.BadGzipFile is an OSError
        raise ParseError(
            f"cannot read the table: {err}",
            where=source.label,
            hint="a file: check it is complete (gzip: not truncated); the live table: retry",
        ) from err


def _scan_source(
    source: TableSource,
    spec: ScanSpec,
    workers: int | Literal["auto"],
    sample_bytes: int | None,
    while_waiting: Callable[[], object] | None,
) -> ScanResult:
    if (
        workers != 1
        and sample_bytes is None
        and source.kind == "file"
        and source.path is not None
        and _is_plain_regular_file(source.path)
    ):
        from ctguard.kernel import range_scan

        size = source.path.stat().st_size
        count = range_scan.worker_count(size) if workers == "auto" else max(1, workers)
        if count > 1:
            return range_scan.scan_file_parallel(source.path, size, spec, count, while_waiting)
    from ctguard.parse.table_scan import TableScanner

    with ExitStack() as stack:
        stream = open_table_stream(source, stack)
        chunk = CHUNK_BYTES if source.kind != "live-procfs" else LIVE_READ_BYTES
        return TableScanner(spec).feed_all(iter_chunks_ahead(stream, chunk, sample_bytes))
