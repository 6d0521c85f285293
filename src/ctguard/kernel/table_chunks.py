"""A dump read as newline-aligned chunks, the unit the scanner takes.

Shared by the one-process scan (``table_source``) and the processes that
scan blocks of one file (``range_scan``); imports neither.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctguard.parse.table_scan import Chunk

CHUNK_BYTES = 128 << 10  # fits in a core's cache: faster than larger, and less memory
MAX_LINE_BYTES = 64 << 10


def iter_chunks(
    stream: io.BufferedIOBase,
    chunk_bytes: int = CHUNK_BYTES,
    limit: int | None = None,
    *,
    sample: bool = False,
) -> Iterator[Chunk]:
    """Newline-aligned chunks ``(buffer, end, declared)``: in ``buffer[:end]``
    each line is preceded by ``\\n`` and none trails the last.

    The buffer is one ``bytearray``, read into again for the next chunk, so
    a chunk is valid only until the next one is asked for (a consumer that
    keeps chunks copies them, as :func:`iter_chunks_ahead` does).  Reading
    in place spares a new buffer and a copy per chunk: reading a 215 MB dump
    took 45 ms that way against 17 ms in place.  ``end`` is short of the
    buffer's length, except for a last line without a newline, which comes
    in a buffer of its own (see ``TableScanner.feed``).

    Summaries conntrack printed into the stream are cut out, and their
    declared counts passed along: here when one ends a chunk's last line
    (before the alignment, so one spliced across a line joins that line up
    again), by the scanner anywhere else (there a summary always fails the
    whole-chunk checks: see ``TableScanner._feed``), which spares a search
    of every chunk.  A line longer than 64 KiB is cut there; the scanner
    reports it as malformed.  With ``sample``, reading
    stops at ``limit`` bytes and the line cut there is dropped, not reported.
    """
    from ctguard.parse.conntrack_table import SUMMARY_MARK
    from ctguard.parse.table_scan import split_summaries

    # "\n", the line the last chunk left unfinished (at most MAX_LINE_BYTES
    # with its newline), then what one read adds
    buffer = bytearray(MAX_LINE_BYTES + chunk_bytes)
    view = memoryview(buffer)
    buffer[0] = 0x0A
    held = 1
    remaining = limit
    while True:
        size = chunk_bytes if remaining is None else min(chunk_bytes, remaining)
        got = stream.readinto(view[held : held + size]) if size > 0 else 0
        if not got:
            break
        if remaining is not None:
            remaining -= got
        total = held + got
        data: bytes | bytearray = buffer
        declared: list[int] = []
        cut = buffer.rfind(b"\n", 0, total)
        if cut > 0 and buffer.find(SUMMARY_MARK, buffer.rfind(b"\n", 0, cut) + 1, cut) >= 0:
            # only through the last newline: a summary after it may not have
            # been read to its end (its newline joins a line it splits)
            head, declared = split_summaries(bytes(view[: cut + 1]))
            data = head + view[cut + 1 : total]
            total = len(data)
            cut = data.rfind(b"\n")
        if cut <= 0:  # no line ends in it yet: hold it all (cut at MAX_LINE_BYTES)
            held = min(total, MAX_LINE_BYTES)
            if data is not buffer:
                _hold(buffer, data[:held])
            if declared:
                yield b"", 0, declared
            continue
        carry = data[cut : min(total, cut + MAX_LINE_BYTES)]
        yield data, cut, declared
        held = _hold(buffer, carry)
    if sample and remaining == 0:
        return
    carry = bytes(view[:held])
    if carry.strip():
        declared = []
        if SUMMARY_MARK in carry:
            carry, declared = split_summaries(carry)
        last = carry.rstrip(b"\n") if carry.strip() else b""
        yield last, len(last), declared


def _hold(buffer: bytearray, line: bytes | bytearray) -> int:
    """Put ``line`` at the start of ``buffer``; return its length."""
    buffer[: len(line)] = line
    return len(line)


def iter_chunks_ahead(
    stream: io.BufferedIOBase, chunk_bytes: int = CHUNK_BYTES, sample_bytes: int | None = None
) -> Iterator[Chunk]:
    """``iter_chunks`` read one chunk ahead in a thread (at most two chunks in
    memory besides the reader's buffer)."""
    import queue

    slots: queue.Queue[Chunk | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def reader() -> None:
        try:
            chunks = iter_chunks(stream, chunk_bytes, sample_bytes, sample=sample_bytes is not None)
            for data, end, declared in chunks:
                # the reader's buffer is read into again: the queue takes a copy
                copy = bytes(memoryview(data)[: end + 1]) if isinstance(data, bytearray) else data
                item = (copy, end, declared)
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(None)
        except BaseException as err:
            slots.put(err)

    thread = threading.Thread(target=reader, name="ctguard-table-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
