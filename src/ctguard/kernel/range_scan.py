"""A large regular file scanned by several processes at once.

The file is cut into blocks of about a megabyte, and each process claims
the next block as soon as it is done with one, so they all finish within a
block of each other whatever each block costs (a flood in one part of the
file, the other process of this machine, the text renderer this process
imports meanwhile).  The blocks' numbers wait in a pipe, written before
the fork: a read of one number from a pipe is atomic, so no two processes
get the same block and no lock is needed.

A block holds the lines that begin in it.  Each block is counted apart
(lines, entries, bad lines and where they are), and the parent adds those
up in the file's order, so line numbers come out as one pass would give
them; the tallies of a process take every block it scanned.  No pool: a
fork per process and a pipe of block numbers are all the scheduling needed.
A child sends its result back through a pipe: its blocks' counts first,
then its tallies in slices, so the parent holds one slice besides its own
tallies and keeps them within the key budget as slices arrive.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from array import array
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ctguard.errors import ParseError
from ctguard.kernel.table_chunks import MAX_LINE_BYTES, iter_chunks

if TYPE_CHECKING:
    from ctguard.parse.table_scan import ScanResult, ScanSpec, TableScanner

PARALLEL_MIN_BYTES = 32 << 20
# Processes of a parallel scan: each may hold a full key budget (see
# parse.table_scan.KEY_BUDGET), and all together stay under 128 MiB.
MAX_WORKERS = 2
# A block: small enough that the processes finish close together (~3 ms of
# top's scan, ~9 ms of analyze's), large enough that claiming one costs
# nothing.  A file of more than MAX_BLOCKS of them gets larger blocks: their
# numbers, 4 bytes each, must fit in the pipe (64 KiB) before anyone reads.
BLOCK_BYTES = 1 << 20
MAX_BLOCKS = 8192
_CLAIM = 4  # bytes of one block number in the pipe

# (block number, what was counted in it: a ScanResult without tallies)
Part = tuple[int, "ScanResult"]


def worker_count(size: int) -> int:
    """Processes for a file of ``size`` bytes: one per CPU, at most MAX_WORKERS."""
    if size < PARALLEL_MIN_BYTES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus, size // PARALLEL_MIN_BYTES))


def block_bytes(size: int) -> int:
    """The block size for a file of ``size`` bytes."""
    return max(BLOCK_BYTES, -(-size // MAX_BLOCKS))


def scan_file_parallel(
    path: Path,
    size: int,
    spec: ScanSpec,
    count: int,
    while_waiting: Callable[[], object] | None = None,
) -> ScanResult:
    """Scan with ``count`` processes at once; a child's exception is raised here.
    ``while_waiting`` runs in this process before it claims its first block."""
    from ctguard.parse.table_scan import ScanResult

    block = block_bytes(size)
    claims = _claim_pipe(-(-size // block))
    children: list[tuple[int, int]] = []
    try:
        for _ in range(1, count):
            children.append(_fork_block_scan(str(path), size, block, spec, claims))
        if while_waiting is not None:
            while_waiting()
        holder, parts = scan_blocks(str(path), size, block, spec, claims)
        while children:
            pid, read_fd = children.pop(0)
            parts += _merge_child_result(holder, pid, read_fd)
    finally:
        os.close(claims)
        for pid, read_fd in children:  # only after an error: stop the rest
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.close(read_fd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    total = ScanResult(spec, tallies=holder.tallies)
    for _, part in sorted(parts, key=itemgetter(0)):
        total.merge_counts(part)
    return total


def _claim_pipe(blocks: int) -> int:
    """A pipe holding the numbers 0 .. blocks-1, its write end closed: read
    ``_CLAIM`` bytes to claim the next block; end of file when none is left."""
    read_fd, write_fd = os.pipe()
    try:
        numbers = array("I", range(blocks)).tobytes()
        written = os.write(write_fd, numbers)
        if written != len(numbers):  # pragma: no cover - MAX_BLOCKS keeps it under 64 KiB
            raise OSError(f"only {written} of {len(numbers)} bytes of block numbers written")
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return read_fd


def scan_blocks(
    path: str, size: int, block: int, spec: ScanSpec, claims: int
) -> tuple[ScanResult, list[Part]]:
    """Scan blocks claimed from ``claims`` until none is left: a result holding
    the tallies of them all, and what was counted in each block."""
    from ctguard.parse.table_scan import ScanResult, TableScanner

    scanner = TableScanner(spec)
    holder = scanner.result
    parts: list[Part] = []
    with open(path, "rb") as handle:
        while claim := os.read(claims, _CLAIM):
            number = array("I", claim)[0]
            part = ScanResult(spec, tallies=holder.tallies)
            scanner.result = part
            _scan_block(scanner, handle, number * block, min(size, (number + 1) * block))
            part.tallies = {}
            parts.append((number, part))
    scanner.result = holder
    return holder, parts


def _scan_block(scanner: TableScanner, handle: io.BufferedIOBase, start: int, end: int) -> None:
    """Feed ``scanner`` the lines that begin in [start, end) of the file."""
    begin = _line_end(handle, start - 1, end) if start > 0 else 0
    if begin >= end:
        return  # one line runs through the whole block: the block of its start reads it
    stop = _line_end(handle, end - 1, None)
    handle.seek(begin)
    scanner.feed_all(iter_chunks(handle, limit=stop - begin))


def _line_end(handle: io.BufferedIOBase, at: int, limit: int | None) -> int:
    """Where the line holding offset ``at`` ends (after its newline, or at the
    end of the file), looking no further than ``limit``.  Read in pieces: a
    line may be as long as the file."""
    handle.seek(at)
    position = at
    while limit is None or position < limit:
        piece = handle.readline(MAX_LINE_BYTES)
        position += len(piece)
        if not piece or piece.endswith(b"\n"):
            break
    return position


def _fork_block_scan(
    path: str, size: int, block: int, spec: ScanSpec, claims: int
) -> tuple[int, int]:
    """A child scanning blocks; returns (pid, the pipe its result comes through)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    code = 1
    try:  # the child: never returns
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            _send_block_scan(pipe, path, size, block, spec, claims)
        code = 0
    finally:
        os._exit(code)


def pack_slice(keys: list[Any], counts: array[int]) -> tuple[Any, bytes]:
    """``keys`` of a tally and their ``counts``, in a form quick to send.

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
    return packed, counts.tobytes()


def unpack_slice(packed: Any, counts: bytes) -> Iterable[tuple[Any, int]]:
    """The (key, count) pairs of :func:`pack_slice`."""
    keys = packed.split(b"\n") if isinstance(packed, bytes) else packed
    numbers = array("q")
    numbers.frombytes(counts)
    return zip(keys, numbers, strict=True)


def _send_block_scan(
    pipe: IO[bytes], path: str, size: int, block: int, spec: ScanSpec, claims: int
) -> None:
    """The child's reply: ("ok", what it counted in each of its blocks, how
    many tallies follow), then per tally its error bounds and its keys in
    slices of PRUNE_SLICE (see :func:`pack_slice`), its port bitmaps in
    slices of EXACT_SLICE; or ("error", the exception)."""
    import pickle

    try:
        result, blocks = scan_blocks(path, size, block, spec, claims)
    except BaseException as err:  # handed to the parent, which raises it
        try:
            payload = pickle.dumps(("error", err), pickle.HIGHEST_PROTOCOL)
        except Exception:  # an exception that cannot be pickled
            payload = pickle.dumps(("error", RuntimeError(repr(err))))
        pipe.write(payload)
        return
    from ctguard.parse.table_scan import EXACT_SLICE, PRUNE_SLICE, Tally

    tallies = result.tallies
    pickle.dump(("ok", blocks, len(tallies)), pipe, pickle.HIGHEST_PROTOCOL)
    for key, tally in tallies.items():
        bounds = Tally(
            max_error=tally.max_error,
            pruned_entries=tally.pruned_entries,
            by_first=tally.by_first,
            folded_max_error=tally.folded_max_error,
        )
        parts = (("counts", tally.counts), ("folded", tally.folded))
        count = sum(-(-len(keys) // PRUNE_SLICE) for _, keys in parts)
        count += -(-len(tally.exact) // EXACT_SLICE)
        pickle.dump((key, bounds, count), pipe, pickle.HIGHEST_PROTOCOL)
        for part, counts in parts:  # in slices: the parent merges one at a time
            # the keys and counts in one pass each (a dict's keys and values
            # come in the same order): ~2 ms less than a lookup per key
            keys, numbers = list(counts), array("q", counts.values())
            for at in range(0, len(keys), PRUNE_SLICE):
                piece = pack_slice(keys[at : at + PRUNE_SLICE], numbers[at : at + PRUNE_SLICE])
                pickle.dump((part, *piece), pipe, pickle.HIGHEST_PROTOCOL)
        bitmaps = list(tally.exact.items())
        for at in range(0, len(bitmaps), EXACT_SLICE):
            some = [(first, bytes(bits)) for first, bits in bitmaps[at : at + EXACT_SLICE]]
            pickle.dump(("exact", some, b""), pipe, pickle.HIGHEST_PROTOCOL)


def _merge_child_result(total: ScanResult, pid: int, read_fd: int) -> list[Part]:
    """Merge a child's tallies into ``total`` as they arrive (see
    ``_send_block_scan``); return what it counted in each of its blocks."""
    import pickle

    died = False
    parts: list[Part] = []
    try:
        with os.fdopen(read_fd, "rb") as pipe:
            try:
                kind, value, *rest = pickle.load(pipe)
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                assert isinstance(value, list)
                parts = value
                for _ in range(rest[0]):
                    key, bounds, slices = pickle.load(pipe)
                    total.merge_tally_bounds(key, bounds)
                    for _ in range(slices):
                        part, packed, counts = pickle.load(pipe)
                        if part == "exact":
                            total.merge_exact(key, packed)
                        else:
                            items = unpack_slice(packed, counts)
                            total.merge_keys(key, items, folded=part == "folded")
            except EOFError:
                died = True
    finally:  # the child exits once its pipe is read or closed
        _, status = os.waitpid(pid, 0)
    if died:
        raise ParseError(
            f"a table-scanning child process died ({_wait_text(status)})",
            hint="retry (out of memory? see dmesg); or scan in one process with --workers 1",
        )
    return parts


def _wait_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
