"""A large regular file scanned by byte ranges in parallel processes.

This process scans the first range and a forked child each other one (no
pool: its threads and queues cost more than they give for a handful of long
tasks).  A child sends its result back through a pipe: its counts first,
then its tallies in slices, so the parent holds one slice besides its own
tallies and keeps them within the key budget as slices arrive.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctguard.errors import ParseError
from ctguard.kernel.table_source import iter_chunks

if TYPE_CHECKING:
    from ctguard.parse.table_scan import ScanResult, ScanSpec

PARALLEL_MIN_BYTES = 32 << 20
# Processes of a parallel scan: each may hold a full key budget (see
# parse.table_scan.KEY_BUDGET), and all together stay under 128 MiB.
MAX_WORKERS = 2


def worker_count(size: int) -> int:
    """Processes for a file of ``size`` bytes: one per CPU, at most MAX_WORKERS."""
    if size < PARALLEL_MIN_BYTES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus, size // PARALLEL_MIN_BYTES))


def scan_range(path: str, start: int, end: int, spec: ScanSpec) -> ScanResult:
    """Scan the lines that begin in [start, end) of a regular file."""
    from ctguard.parse.table_scan import TableScanner

    with open(path, "rb") as handle:
        if start > 0:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # that line belongs to the previous range
        begin = handle.tell()
        # the last line may run past ``end``: read up to its newline
        handle.seek(end)
        if end > 0 and end < os.fstat(handle.fileno()).st_size:
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                handle.readline()
        stop = handle.tell()
        handle.seek(begin)
        return TableScanner(spec).feed_all(iter_chunks(handle, limit=stop - begin))


def scan_file_parallel(
    path: Path,
    size: int,
    spec: ScanSpec,
    count: int,
    while_waiting: Callable[[], object] | None = None,
) -> ScanResult:
    """Scan ``count`` byte ranges at once; a child's exception is raised here.
    ``while_waiting`` runs between this process's own range and the merge."""
    bounds = [size * i // count for i in range(count + 1)]
    children: list[tuple[int, int]] = []
    try:
        for i in range(1, count):
            children.append(_fork_range_scan(str(path), bounds[i], bounds[i + 1], spec))
        total = scan_range(str(path), bounds[0], bounds[1], spec)
        if while_waiting is not None:
            while_waiting()
        while children:
            pid, read_fd = children.pop(0)
            _merge_child_result(total, pid, read_fd)
        return total
    finally:
        for pid, read_fd in children:  # only after an error: stop the rest
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(read_fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _fork_range_scan(path: str, start: int, end: int, spec: ScanSpec) -> tuple[int, int]:
    """A child scanning one range; returns (pid, the pipe its result comes through)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    code = 1
    try:  # the child: never returns
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            _send_range_scan(pipe, path, start, end, spec)
        code = 0
    finally:
        os._exit(code)


def pack_slice(counts: dict[Any, int], keys: list[Any]) -> tuple[Any, bytes]:
    """``keys`` of a tally and their counts, in a form quick to send.

    Keys that are single captured values (bytes, which never hold a newline)
    go as one newline-joined string, which splits back at C speed; the counts
    as an array of 64-bit integers.  Pickling the same as (key, count) pairs
    took ~9 ms per worker for 34,000 sources, and loading them again ~2 ms.
    """
    packed: Any = keys
    if keys and isinstance(keys[0], bytes):
        try:
            joined = b"\n".join(keys)
        except TypeError:  # pragma: no cover - a tally's keys are all of one shape
            joined = None
        if joined is not None and joined.count(b"\n") == len(keys) - 1:
            packed = joined
    return packed, array("q", map(counts.__getitem__, keys)).tobytes()


def unpack_slice(packed: Any, counts: bytes) -> Iterable[tuple[Any, int]]:
    """The (key, count) pairs of :func:`pack_slice`."""
    keys = packed.split(b"\n") if isinstance(packed, bytes) else packed
    numbers = array("q")
    numbers.frombytes(counts)
    return zip(keys, numbers, strict=True)


def _send_range_scan(pipe: IO[bytes], path: str, start: int, end: int, spec: ScanSpec) -> None:
    """The child's reply: ("ok", the result without its tallies, how many
    follow), then per tally its error bounds and its keys in slices of
    PRUNE_SLICE (see :func:`pack_slice`); or ("error", the exception)."""
    import pickle

    try:
        result = scan_range(path, start, end, spec)
    except BaseException as err:  # handed to the parent, which raises it
        try:
            payload = pickle.dumps(("error", err), pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot be pickled
            payload = pickle.dumps(("error", RuntimeError(repr(err))))
        pipe.write(payload)
        return
    from ctguard.parse.table_scan import PRUNE_SLICE, Tally

    tallies, result.tallies = result.tallies, {}
    pickle.dump(("ok", result, len(tallies)), pipe, pickle.HIGHEST_PROTOCOL)
    for key, tally in tallies.items():
        bounds = Tally(
            max_error=tally.max_error,
            pruned_entries=tally.pruned_entries,
            by_first=tally.by_first,
            folded_max_error=tally.folded_max_error,
        )
        parts = ((False, tally.counts), (True, tally.folded))
        count = sum(-(-len(keys) // PRUNE_SLICE) for _, keys in parts)
        pickle.dump((key, bounds, count), pipe, pickle.HIGHEST_PROTOCOL)
        for folded, counts in parts:  # a slice at a time: no copy of a whole tally
            keys = iter(counts)
            while piece := list(itertools.islice(keys, PRUNE_SLICE)):
                pickle.dump((folded, *pack_slice(counts, piece)), pipe, pickle.HIGHEST_PROTOCOL)


def _merge_child_result(total: ScanResult, pid: int, read_fd: int) -> None:
    """Merge a child's reply into ``total`` as it arrives (see ``_send_range_scan``)."""
    import pickle

    from ctguard.parse.table_scan import ScanResult

    died = False
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            try:
                kind, value, *rest = pickle.load(pipe)
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                assert isinstance(value, ScanResult)
                total.merge_counts(value)
                for _ in range(rest[0]):
                    key, bounds, slices = pickle.load(pipe)
                    total.merge_tally_bounds(key, bounds)
                    for _ in range(slices):
                        folded, packed, counts = pickle.load(pipe)
                        total.merge_keys(key, unpack_slice(packed, counts), folded=folded)
            except EOFError:
                died = True
    finally:  # the child exits once its pipe is read or closed
        _, status = os.waitpid(pid, 0)
    if died:
        raise ParseError(
            f"a table-scanning child process died ({_wait_text(status)})",
            hint="retry (out of memory? see dmesg); or scan in one process with --workers 1",
        )


def _wait_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
