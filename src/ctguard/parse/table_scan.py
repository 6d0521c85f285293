"""Streaming aggregation of a conntrack dump: chunks in, tallies out.

A chunk is many complete lines of a dump, starting with ``\\n`` (see
``kernel.table_source``).  Per chunk, one ``findall`` captures only the
columns the query needs; ``Counter`` aggregates them.  Nothing is kept per
entry, so memory depends on the number of distinct keys, which is bounded in
bytes: past ``key_budget`` (estimated from each key's width), the tally that
holds the most drops its rarest half and says by how much its counts may be
low (``Tally.max_error``).  Heavy hitters, which are what a "top" answers,
always survive.  The budget holds whatever the input: a flood of spoofed
IPv6 sources to random ports fills it as fast as anything can.  Every prune
frees bytes (``ScanResult.fit_budget`` checks it), so a scan's time is linear
in its input whatever the keys: a source that alone holds more (source,
port) pairs than a prune keeps has its ports moved into one exact bitmap
(see ``Tally.exact``) instead of being kept whole or dropped.

Chunks that fail the cheap whole-chunk checks are read line by line with the
same rule (``line_is_entry``); lines that are not entries are counted, the
strict grammar says why, and the first few are reported with their line
numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from ctguard.parse.conntrack_table import (
    ENTRY_RE,
    SUMMARY_MARK,
    SUMMARY_RE,
    build_procfs_scan_pattern,
    build_reject_pattern,
    build_scan_pattern,
    classify_rejected_line,
    expected_shape,
    line_is_entry,
    line_shape,
    rows_account_for_every_line,
    tuple_marks,
)

# Bytes of distinct keys one scanning process may hold (estimated, worst
# case).  With the interpreter (~22 MiB), a prune's transient and the chunks
# in flight, a process stays under ~60 MiB, so the two processes of a
# parallel scan stay under 128 MiB together.
KEY_BUDGET = 16 << 20
# estimated bytes of one value of each column held in a key (a bytes object:
# 33 bytes of header + the text, widest case: an expanded IPv6 address)
_VALUE_BYTES = {
    **dict.fromkeys(("src", "dst", "reply_src", "reply_dst"), 33 + 39),
    **dict.fromkeys(("timeout", "sport", "dport", "mark", "zone"), 33 + 10),
    **dict.fromkeys(("proto", "state", "status"), 33 + 11),
    "unreplied": 33 + 12,
    "nat": 0,  # b"" or b"s": shared one-byte objects
}
_ENTRY_BYTES = 56  # a dict entry with its share of the table, and the count
FOLDED_KEY_BYTES = _ENTRY_BYTES + 33 + 20  # a source's subnet
PRUNE_SLICE = 16384  # keys per pickle when a worker hands its tallies back
# A source's destination ports as one bitmap (Tally.exact): bit p for port p,
# and one more bit for "no port" (ICMP, GRE) or a value no port has.  8 KiB
# whatever the number of ports, exact, where the (source, port) pairs of a
# scanner probing 60,000 ports hold ~13 MiB.
PORT_SLOTS = 1 << 16
NO_PORT = PORT_SLOTS
PORT_BITMAP_BYTES = (PORT_SLOTS + 1 + 7) // 8
# a dict entry, the source (widest: an expanded IPv6 address) and a bytearray
EXACT_KEY_BYTES = _ENTRY_BYTES + 33 + 39 + 57 + PORT_BITMAP_BYTES
EXACT_SLICE = 64  # bitmaps per pickle (512 KiB) when a worker hands them back

ADDRESS_COLUMNS = ("src", "dst", "reply_src", "reply_dst")
PORT_COLUMNS = ("sport", "dport")
Fold = Callable[[Any], Any]
# (buffer, end offset, counts from conntrack summaries cut out of it)
Chunk = tuple[bytes | bytearray, int, Sequence[int]]
SKIP_EXAMPLES = 5
# control characters (C0, DEL, C1) of a skipped line, shown as escapes: a
# dump from elsewhere must not drive the terminal that prints the report
_VISIBLE = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x09}


@lru_cache(maxsize=64)
def key_bytes(columns: tuple[str, ...]) -> int:
    """Estimated bytes one distinct key of a tally over ``columns`` holds."""
    values = sum(_VALUE_BYTES[c] for c in columns)
    return _ENTRY_BYTES + values + (40 + 8 * len(columns) if len(columns) > 1 else 0)


@dataclass(frozen=True)
class ScanSpec:
    """What to capture (``columns``, in line order) and which combinations to count."""

    columns: tuple[str, ...]
    tallies: tuple[tuple[str, ...], ...]
    key_budget: int = KEY_BUDGET
    # (address, port) tallies whose distinct pairs matter more than their counts
    # (the ports each source reaches): pruned by their first column, see
    # Tally.prune
    distinct_tallies: tuple[tuple[str, ...], ...] = ()
    # tally -> a function from its key to a coarser one (a source's subnet):
    # the keys a prune drops are counted under their coarse key, so totals
    # by the coarse key stay exact (see Tally.folded)
    folds: tuple[tuple[tuple[str, ...], Fold], ...] = ()

    def fold_of(self, tally: tuple[str, ...]) -> Fold | None:
        return next((fold for key, fold in self.folds if key == tally), None)

    def __post_init__(self) -> None:
        for tally in self.tallies:
            missing = set(tally) - set(self.columns)
            if missing:
                raise ValueError(f"tally {tally} uses columns not captured: {sorted(missing)}")
        for tally in self.distinct_tallies:  # (see dense_pairs)
            if len(tally) != 2 or tally[0] not in ADDRESS_COLUMNS or tally[1] not in PORT_COLUMNS:
                raise ValueError(f"a distinct tally is (address, port), not {tally}")


@dataclass
class Skipped:
    """Lines that were not entries: how many, why, and the first few."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, text)

    def add(self, line_no: int, reason: str, text: bytes) -> None:
        self.count += 1
        self.reasons[reason] += 1
        if len(self.examples) < SKIP_EXAMPLES:
            shown = text[:120].decode("utf-8", "replace").translate(_VISIBLE)
            self.examples.append((line_no, reason, shown))

    def merge(self, other: Skipped, line_offset: int = 0) -> None:
        self.count += other.count
        self.reasons.update(other.reasons)
        for line_no, reason, text in other.examples:
            if len(self.examples) < SKIP_EXAMPLES:
                self.examples.append((line_no + line_offset, reason, text))


def add_counts(target: dict[Any, int], items: Iterable[tuple[Any, int]]) -> None:
    """``target[key] += count`` for each pair.

    Through ``dict.get`` instead of a Counter's ``+=``, which calls the
    Python method ``__missing__`` for each new key: merging a worker's tally
    of 50,000 keys took 33 ms that way, now ~5 ms.
    """
    get = target.get
    for key, count in items:
        target[key] = get(key, 0) + count


def drop_rarest(counts: Counter[Any], keep: int) -> tuple[list[tuple[Any, int]], int]:
    """Delete all but the ``keep`` most frequent keys of ``counts``, in place;
    return the deleted ``(key, count)`` pairs and the largest deleted count.

    Among keys of equal count, the earliest counted stay.  In place and
    without sorting the keys (a histogram of the counts gives the cut), so a
    prune needs no second copy of a tally that is already the largest thing
    in memory.
    """
    excess = len(counts) - keep
    if excess <= 0:
        return [], 0
    histogram = Counter(counts.values())
    below = 0  # keys with a count under the cut: all dropped
    for cut in sorted(histogram):
        if below + histogram[cut] >= excess:
            break
        below += histogram[cut]
    keep_at_cut = histogram[cut] - (excess - below)
    dropped: list[tuple[Any, int]] = []
    for key, count in counts.items():
        if count < cut:
            dropped.append((key, count))
        elif count == cut:
            if keep_at_cut:
                keep_at_cut -= 1
            else:
                dropped.append((key, count))
    pop = counts.pop  # dict.pop: Counter's own __delitem__ is Python code, 5x slower
    for key, _ in dropped:
        pop(key)
    return dropped, cut


def port_slot(raw: Any) -> int:
    """The bit of a captured port in a port bitmap (see PORT_SLOTS)."""
    try:
        slot = int(raw)
    except ValueError:
        return NO_PORT
    return slot if 0 <= slot < PORT_SLOTS else NO_PORT


def mark_ports(bits: bytearray, ports: Iterable[Any]) -> None:
    """Set the bits of ``ports`` (captured values) in ``bits``."""
    for raw in ports:
        slot = port_slot(raw)
        bits[slot >> 3] |= 1 << (slot & 7)


def merge_bits(bits: bytearray, other: bytes | bytearray) -> None:
    """``bits |= other``, in place, at C speed."""
    either = int.from_bytes(bits, "little") | int.from_bytes(other, "little")
    bits[:] = either.to_bytes(len(bits), "little")


def bit_count(bits: bytes | bytearray) -> int:
    return int.from_bytes(bits, "little").bit_count()


@dataclass
class Tally:
    """Counts of one column combination, with the bound on what pruning removed."""

    counts: Counter[Any] = field(default_factory=Counter)
    max_error: int = 0  # a kept key's count may be low by at most this much
    pruned_entries: int = 0
    by_first: bool = False  # see ScanSpec.distinct_tallies
    # entries of pruned keys, counted by their coarse key (ScanSpec.folds)
    folded: Counter[Any] = field(default_factory=Counter)
    folded_max_error: int = 0
    # by_first: the first columns (sources) whose pairs a prune moved into a
    # port bitmap each; pairs of theirs counted since wait in ``counts``
    exact: dict[Any, bytearray] = field(default_factory=dict)

    def prune(self, keep: int, fold: Fold | None = None) -> None:
        """Keep ``keep`` keys, the most frequent ones (see :meth:`_prune_by_first`
        for ``by_first``).

        A key dropped now and seen again later restarts from zero, so a kept
        count may be low by at most the sum of the largest count each prune
        dropped (``max_error``).  With ``fold``, dropped keys are counted in
        ``folded`` by their coarse key.
        """
        if len(self.counts) <= keep:
            return
        if self.by_first:
            dropped = self._prune_by_first(keep)
        else:
            dropped, largest = drop_rarest(self.counts, keep)
            self.max_error += largest
        self.pruned_entries += sum(count for _, count in dropped)
        if fold is not None:
            add_counts(self.folded, ((fold(key), count) for key, count in dropped))

    def prune_folded(self) -> None:
        """Halve the coarse keys of what pruning dropped (when they are what
        fills the budget: many networks)."""
        self.folded_max_error += drop_rarest(self.folded, len(self.folded) // 2)[1]

    def _prune_by_first(self, keep: int) -> list[tuple[Any, int]]:
        """Distinct (first, port) pairs down to ``keep`` at most; returns the
        pairs dropped.

        First the pairs of each source that has a bitmap, or that holds
        enough pairs for one to cost less (:func:`dense_pairs`), move into its
        bitmap: its count of distinct ports stays exact however many ports it
        probes.  Then, if more than ``keep`` pairs are left, the sources with
        the fewest pairs are dropped whole; one seen again restarts from
        zero, so a count may be low by at most the sum of the largest group
        each prune dropped (``max_error``).
        """
        counts, exact = self.counts, self.exact
        groups: Counter[Any] = Counter(map(itemgetter(0), counts))
        dense = dense_pairs()
        moving = {first for first, size in groups.items() if size >= dense or first in exact}
        if moving:
            ports: dict[Any, list[Any]] = {}
            for first, port in [key for key in counts if key[0] in moving]:
                ports.setdefault(first, []).append(port)
                counts.pop((first, port))
            for first, seen in ports.items():
                bits = exact.get(first)
                if bits is None:
                    bits = exact[first] = bytearray(PORT_BITMAP_BYTES)
                mark_ports(bits, seen)
        if len(counts) <= keep:
            return []
        kept: set[Any] = set()
        size = 0
        for first, keys in groups.most_common():
            if first in moving:
                continue
            if size + keys > keep:
                break
            kept.add(first)
            size += keys
        dropped = [(k, v) for k, v in counts.items() if k[0] not in kept]
        self.max_error += max(groups[first] for first in {k[0] for k, _ in dropped})
        pop = counts.pop
        for key, _ in dropped:
            pop(key)
        return dropped

    def prune_exact(self) -> None:
        """Keep the half of the port bitmaps that hold the most ports (when
        they are what fills the budget: thousands of sources, each reaching
        dozens of ports)."""
        ports = Counter({first: bit_count(bits) for first, bits in self.exact.items()})
        dropped, largest = drop_rarest(ports, len(ports) // 2)
        self.max_error += largest
        for first, _ in dropped:
            del self.exact[first]

    def distinct_by_first(self) -> Counter[Any]:
        """Distinct pairs by first column: the ports each source reaches."""
        distinct: Counter[Any] = Counter(map(itemgetter(0), self.counts))
        if not self.exact:
            return distinct
        pending: dict[Any, list[Any]] = {}
        for first, port in self.counts:
            if first in self.exact:
                pending.setdefault(first, []).append(port)
        for first, bits in self.exact.items():
            if first in pending:
                bits = bytearray(bits)
                mark_ports(bits, pending[first])
            distinct[first] = bit_count(bits)
        return distinct

    def merge_exact(self, items: Iterable[tuple[Any, bytes | bytearray]]) -> None:
        """Add port bitmaps of a later part (a worker's)."""
        for first, other in items:
            bits = self.exact.get(first)
            if bits is None:
                self.exact[first] = bytearray(other)
            else:
                merge_bits(bits, other)

    def add_bounds(self, other: Tally) -> None:
        """Take over ``other``'s error bounds (its keys arrive separately)."""
        self.max_error += other.max_error
        self.pruned_entries += other.pruned_entries
        self.folded_max_error += other.folded_max_error

    def coarse_counts(self, fold: Fold) -> Counter[Any]:
        """Entries by coarse key: the kept keys folded, plus what pruning folded."""
        coarse = Counter(self.folded)
        add_counts(coarse, ((fold(key), count) for key, count in self.counts.items()))
        return coarse


def dense_pairs() -> int:
    """Pairs of one address past which its port bitmap costs fewer bytes (the
    same for every (address, port) tally: see ScanSpec.distinct_tallies)."""
    return EXACT_KEY_BYTES // key_bytes(("src", "dport")) + 1


@dataclass
class ScanResult:
    """Everything one pass over a dump learned."""

    spec: ScanSpec
    entries: int = 0
    lines: int = 0
    blank: int = 0
    skipped: Skipped = field(default_factory=Skipped)
    declared: list[int] = field(default_factory=list)  # conntrack's own "N flow entries"
    tallies: dict[tuple[str, ...], Tally] = field(default_factory=dict)

    def merge(self, other: ScanResult) -> None:
        """Add ``other`` (the part of the dump that followed this one)."""
        self.merge_counts(other)
        for key, tally in other.tallies.items():
            self.merge_tally_bounds(key, tally)
            self.merge_keys(key, tally.counts.items())
            self.merge_keys(key, tally.folded.items(), folded=True)
            self.merge_exact(key, tally.exact.items())

    def merge_counts(self, other: ScanResult) -> None:
        """Add ``other``'s entry and line counts (its tallies arrive separately)."""
        self.skipped.merge(other.skipped, line_offset=self.lines)
        self.entries += other.entries
        self.lines += other.lines
        self.blank += other.blank
        self.declared += other.declared

    def merge_tally_bounds(self, key: tuple[str, ...], tally: Tally) -> None:
        mine = self.tallies.setdefault(key, Tally(by_first=tally.by_first))
        mine.add_bounds(tally)

    def merge_keys(
        self, key: tuple[str, ...], items: Iterable[tuple[Any, int]], *, folded: bool = False
    ) -> None:
        """Add counted keys of a later part to tally ``key`` (a slice at a time:
        the budget holds while a worker's tallies arrive)."""
        mine = self.tallies[key]
        add_counts(mine.folded if folded else mine.counts, items)
        self.fit_budget()

    def merge_exact(
        self, key: tuple[str, ...], items: Iterable[tuple[Any, bytes | bytearray]]
    ) -> None:
        """Add port bitmaps of a later part to tally ``key`` (see Tally.exact)."""
        self.tallies[key].merge_exact(items)
        self.fit_budget()

    def key_bytes_held(self) -> int:
        """The estimated bytes of every tally's keys (what ``key_budget`` bounds)."""
        return sum(size for size, _, _ in self._parts())

    def _parts(self) -> list[tuple[int, tuple[str, ...], str]]:
        parts: list[tuple[int, tuple[str, ...], str]] = []
        for key, tally in self.tallies.items():
            parts.append((len(tally.counts) * key_bytes(key), key, "counts"))
            if tally.folded:
                parts.append((len(tally.folded) * FOLDED_KEY_BYTES, key, "folded"))
            if tally.exact:
                parts.append((len(tally.exact) * EXACT_KEY_BYTES, key, "exact"))
        return parts

    def fit_budget(self) -> None:
        """Halve the tally (or folded subnets, or port bitmaps) that holds the
        most bytes until all of them fit ``spec.key_budget``.

        Every prune frees bytes, so this ends after a number of prunes
        logarithmic in the keys held, each in time linear in its tally: a
        prune that freed nothing would be a bug, and raises instead of
        looping (it once did, on a port scan).
        """
        spec = self.spec
        while True:
            parts = self._parts()
            held = sum(size for size, _, _ in parts)
            if held <= spec.key_budget:
                return
            _, key, part = max(parts)
            tally = self.tallies[key]
            if part == "folded":
                tally.prune_folded()
            elif part == "exact":
                tally.prune_exact()
            elif len(tally.counts) > 1:
                tally.prune(len(tally.counts) // 2, spec.fold_of(key))
            else:  # pragma: no cover - a budget smaller than one key per tally
                return
            if self.key_bytes_held() >= held:  # pragma: no cover - see the docstring
                raise AssertionError(f"pruning tally {key} ({part}) freed no bytes")


class TableScanner:
    """Feed chunks with :meth:`feed`; read :attr:`result` at the end."""

    def __init__(self, spec: ScanSpec) -> None:
        self.spec = spec
        self.pattern = build_scan_pattern(spec.columns)
        self.result = ScanResult(
            spec, tallies={t: Tally(by_first=t in spec.distinct_tallies) for t in spec.tallies}
        )
        index = {name: i for i, name in enumerate(spec.columns)}
        self._getters: list[tuple[Tally, Any]] = []
        for tally_columns in spec.tallies:
            getter: Any
            if tuple(tally_columns) == spec.columns:
                getter = None  # the rows themselves
            else:
                getter = itemgetter(*(index[c] for c in tally_columns))
            self._getters.append((self.result.tallies[tally_columns], getter))
        # The first pass over each chunk: procfs's form until a chunk shows
        # lines of another form (see _rows_around_bad_lines).  Where a tally
        # tells a bad line (_no_entry_watch), it gives a row for every line,
        # an empty one for a line that is not an entry.
        self._watch = self._no_entry_watch()
        self._every_line = self._watch is not None
        self._first_pass = build_procfs_scan_pattern(spec.columns, every_line=self._every_line)
        self._procfs_first = True
        # what a line that is not an entry gives in an every-line pass
        self._no_entry: Any = (b"",) * len(spec.columns) if len(spec.columns) != 1 else b""
        self._reject: re.Pattern[bytes] | None = None  # compiled when a chunk needs it
        # The line-shape check (see _count_if_shaped) needs the protocols of
        # a chunk's rows: only where a tally of protocols alone counts them
        # anyway (top's totals).  Counting them apart (~45 ms per 110 MB)
        # costs more than the check saves.
        self._protocol_tally = self.result.tallies.get(("proto",))
        self._shape_check = self._every_line and self._protocol_tally is not None
        self._protocol_of: Any = None  # None: the rows are the protocols
        if len(spec.columns) > 1 and "proto" in spec.columns:
            self._protocol_of = itemgetter(index["proto"])
        # A line checked alone passes by its letters too, where chunks may:
        # whether it counts must not depend on which check its chunk passed.
        self._protocol_group = index["proto"] + 1 if self._shape_check else None

    def _no_entry_watch(self) -> tuple[Counter[Any], Any] | None:
        """A tally where an empty row shows as a key of its own (one keyed by a
        column every entry fills: see rows_account_for_every_line), and that
        key: one look at it after counting a chunk tells whether the chunk
        held a line that is not an entry, instead of a look at every row."""
        for tally_columns in self.spec.tallies:
            if rows_account_for_every_line(tally_columns):
                key = b"" if len(tally_columns) == 1 else (b"",) * len(tally_columns)
                return self.result.tallies[tally_columns].counts, key
        return None

    def feed(
        self, data: bytes | bytearray, end: int | None = None, declared: Sequence[int] = ()
    ) -> None:
        """Scan ``data[:end]``: lines each preceded by ``\\n``, none after the last.

        Taking an end offset lets the reader pass its buffer without a copy.
        A newline follows every line when ``end`` is short of the buffer's
        end; when it is not, the last line is where the input stops without
        one, perhaps cut short (``head -c``, an interrupted copy), and it
        counts only when the strict grammar reads it as a whole entry.
        """
        end = len(data) if end is None else end
        self.result.declared.extend(declared)
        self._feed(data, end, at_input_end=end == len(data))

    def _feed(self, data: bytes | bytearray, end: int, *, at_input_end: bool) -> None:
        """One route for every chunk: one scan, then the cheapest proof that
        each of its lines is a whole entry counts it (:meth:`_count_if_whole`);
        a chunk no proof covers is read around its bad lines."""
        result = self.result
        rows = self._first_pass.findall(data, 0, end)
        lines = len(rows) if self._every_line else data.count(b"\n", 0, end)
        cut_short = at_input_end and not _last_line_whole(data, end)
        marks = 0
        if not cut_short:
            counted, marks = self._count_if_whole(data, end, rows, lines)
            if counted:
                result.lines += lines
                result.entries += len(rows)
                result.fit_budget()
                return
        if isinstance(data, bytearray):  # a reader's buffer (see iter_chunks): a copy
            data = bytes(memoryview(data)[:end])  # of the chunk for the slower paths below
        # A summary conntrack printed adds a line and no " dst=" (alone on
        # its line, or splitting an entry in two), so a chunk holding one
        # fails the checks, unless the summary ends the chunk's last line,
        # where iter_chunks has cut it out: it is looked for here.
        if data.find(SUMMARY_MARK, 0, end) >= 0:
            cleaned, declared = split_summaries(data[:end])
            if declared:
                result.declared.extend(declared)
                self._feed(cleaned, len(cleaned), at_input_end=at_input_end)
                return
        if cut_short:
            rows = self._rows_line_by_line(data[:end], strict_last=True)
        else:
            if self._every_line:
                if self._count_around_empty_rows(data, end, rows, marks):
                    result.fit_budget()
                    return
                no_entry = self._no_entry
                rows = [row for row in rows if row != no_entry]
            rows = self._rows_around_bad_lines(data, end, rows, marks)
        result.lines += lines
        result.entries += len(rows)
        self._count(rows)
        result.fit_budget()

    def _count_if_whole(
        self, data: bytes | bytearray, end: int, rows: list[Any], lines: int
    ) -> tuple[bool, int]:
        """The scanner's fast paths, cheapest first, for a chunk that is not
        cut short; each counts ``rows`` only when it proves every line of the
        chunk a whole entry.  Returns (counted, the chunk's count of tuple
        marks, for the slower paths).

        1. The letters check (:meth:`_count_if_shaped`), where a tally of
           protocols counts them anyway (``top``): ~5% of the whole command.
           A chunk of whole entries that fails it is in another form (or
           holds SELinux labels), and the rest of the input skips it.
        2. Two tuple marks (``dst=``) per line, and a row for each line
           (:meth:`_count_if_all_entries`).

        Each path is kept because the whole command's median is clearly
        better with it (docs/performance.md); add one only on the same terms.
        """
        shape_missed = False
        if self._shape_check:
            shaped = self._count_if_shaped(data, end, rows)
            if shaped:
                return True, 0
            shape_missed = shaped is None
        marks = tuple_marks(data, 0, end)
        if marks == 2 * lines and self._count_if_all_entries(rows, lines):
            if shape_missed:  # whole entries, but not procfs's letters
                self._shape_check = False
            return True, marks
        return False, marks

    def _count_if_shaped(self, data: bytes | bytearray, end: int, rows: list[Any]) -> bool | None:
        """Count ``rows`` if every line of the chunk gave an entry and the
        chunk's ``u`` and ``v`` add up to whole procfs lines (see
        ``conntrack_table.line_shape``): True.  False when a line is not an
        entry, None when the letters do not add up; nothing is counted then.

        A line the pattern matched may still be cut short after the fields
        the query reads, or run into the next: this check tells both, in
        half the time of counting ``dst=`` (:meth:`_feed` falls back to that
        count when it fails, and for the rest of the input when the lines
        are whole entries of another form).  The rows' protocols, needed
        anyway, also show a line that is not an entry (an empty one).
        """
        protocol_of = self._protocol_of
        protocols = Counter(rows if protocol_of is None else map(protocol_of, rows))
        if b"" in protocols:
            return False
        if line_shape(data, end) != expected_shape(protocols):
            return None
        for tally, getter in self._getters:
            if tally is self._protocol_tally:
                add_counts(tally.counts, protocols.items())
            else:
                tally.counts.update(rows if getter is None else map(getter, rows))
        return True

    def _count_if_all_entries(self, rows: list[Any], lines: int) -> bool:
        """Count ``rows`` if each of the chunk's ``lines`` lines gave an entry."""
        if self._watch is None:  # rows without a row per line
            if len(rows) != lines:
                return False
            self._count(rows)
            return True
        counts, no_entry_key = self._watch
        self._count(rows)
        if no_entry_key not in counts:
            return True
        self._uncount(rows)
        return False

    def feed_all(self, chunks: Iterable[Chunk]) -> ScanResult:
        for data, end, declared in chunks:
            self.feed(data, end, declared)
        return self.result

    def _count(self, rows: list[Any]) -> None:
        for tally, getter in self._getters:
            tally.counts.update(rows if getter is None else map(getter, rows))

    def _uncount(self, rows: list[Any]) -> None:
        """Take back a :meth:`_count` of ``rows`` (no prune ran in between)."""
        for tally, getter in self._getters:
            for key in rows if getter is None else map(getter, rows):
                _take_back(tally.counts, key, 1)

    def _count_around_empty_rows(self, data: bytes, end: int, rows: list[Any], marks: int) -> bool:
        """A chunk of an every-line pass with some bad lines: its empty rows
        say which lines they are, so none of the lines is read again.  When
        the other lines hold two tuples each and no bad line is an entry of
        another form (see :meth:`_rows_around_bad_lines`), count the chunk
        and its bad lines and return True; else count nothing, return False.

        All rows are counted at C speed, then each tally gives back what the
        empty rows added to its all-empty key: a filter or a second regular
        expression pass over the chunk cost ~40-65% of a scan of input with
        a bad line in every chunk (a transcript with a prompt every few
        hundred lines).
        """
        no_entry = self._no_entry
        empty = rows.count(no_entry)
        at: list[int] = []
        while len(at) < empty:
            at.append(rows.index(no_entry, at[-1] + 1 if at else 0))
        texts = data[:end].split(b"\n")  # texts[i + 1] is the line of rows[i]
        bad = [texts[i + 1].rstrip(b"\r") for i in at]
        if marks - sum(map(tuple_marks, bad)) != 2 * (len(rows) - empty):
            return False
        if any(self.pattern.match(b"\n" + text) for text in bad):  # another form
            return False
        self._count(rows)
        for tally, getter in self._getters:
            _take_back(tally.counts, no_entry if getter is None else getter(no_entry), empty)
        result = self.result
        for i, text in zip(at, bad, strict=True):
            if text.strip():
                result.skipped.add(result.lines + i + 1, classify_rejected_line(text), text)
            else:
                result.blank += 1
        result.lines += len(rows)
        result.entries += len(rows) - empty
        return True

    def _rows_around_bad_lines(
        self, data: bytes, end: int, rows: list[Any], marks: int
    ) -> list[Any]:
        """A chunk where some lines did not match: one more regex pass finds just
        those (a pasted transcript has a prompt every few hundred lines; reading
        every line in Python would double the scan).  ``rows`` already skipped
        them; when the lines that did match also hold two tuples each, they
        stand, else the chunk is read line by line.

        A line only procfs's pattern missed is not among the bad lines, and
        its ``dst=`` tips the count: the dump is in another form, and the
        general pattern takes over for this chunk and the rest."""
        if self._reject is None:
            self._reject = build_reject_pattern(self.spec.columns)
        bad = list(self._reject.finditer(data, 0, end))
        in_good = marks - sum(tuple_marks(m.group()) for m in bad)
        if in_good != 2 * len(rows) and self._procfs_first:
            self._procfs_first = False
            self._first_pass = build_scan_pattern(self.spec.columns, every_line=self._every_line)
            rows = self.pattern.findall(data, 0, end)
        if in_good != 2 * len(rows):
            return self._rows_line_by_line(data[:end], strict_last=False)
        result = self.result
        line_no, searched = result.lines, 0
        for match in bad:
            start = match.start() + 1
            line_no += data.count(b"\n", searched, start)
            searched = start
            text = match.group()[1:].rstrip(b"\r")
            if text.strip():
                result.skipped.add(line_no, classify_rejected_line(text), text)
            else:
                result.blank += 1
        return rows

    def _rows_line_by_line(self, chunk: bytes, *, strict_last: bool) -> list[Any]:
        """The slow path: sort the lines out one by one, then scan only the entries."""
        good: list[bytes] = []
        first_line = self.result.lines + 1
        pattern = self.pattern
        lines = chunk.split(b"\n")[1:]
        for offset, line in enumerate(lines):
            text = line.rstrip(b"\r")
            if not text.strip():
                self.result.blank += 1
                continue
            whole = not strict_last or offset < len(lines) - 1 or ENTRY_RE.fullmatch(text)
            if whole and line_is_entry(pattern, text, self._protocol_group):
                good.append(text)
            else:
                self.result.skipped.add(first_line + offset, classify_rejected_line(text), text)
        if not good:
            return []
        clean = b"\n" + b"\n".join(good)
        rows: list[Any] = self.pattern.findall(clean)
        if len(rows) != len(good):  # pragma: no cover - line_is_entry is the pattern's rule
            raise AssertionError("a line the scan pattern accepted alone was not found again")
        return rows


def _take_back(counts: Counter[Any], key: Any, number: int) -> None:
    """Count ``key`` ``number`` times less (it was counted at least that often)."""
    left = counts[key] - number
    if left:
        counts[key] = left
    else:
        del counts[key]


def _last_line_whole(data: bytes | bytearray, end: int) -> bool:
    """The last line of ``data[:end]`` is blank or a whole entry by the strict grammar."""
    if end == 0:
        return True
    start = data.rfind(b"\n", 0, end) + 1
    return ENTRY_RE.fullmatch(data, start, end) is not None or not data[start:end].strip()


def scan_chunks(spec: ScanSpec, chunks: Iterable[Chunk]) -> ScanResult:
    """Aggregate a whole dump given as chunks (pure; see TableScanner)."""
    return TableScanner(spec).feed_all(chunks)


def split_summaries(data: bytes) -> tuple[bytes, list[int]]:
    """Remove conntrack's summary lines (wherever they landed) and return their counts.

    A summary that sits on a line of its own becomes an empty line, so line
    numbers stay true; one spliced into an entry is cut out with its newline,
    which joins the entry up again.
    """
    declared: list[int] = []

    def replace(match: re.Match[bytes]) -> bytes:
        declared.append(int(match.group(1)))
        start = match.start()
        at_line_start = start == 0 or data[start - 1 : start] == b"\n"
        whole_line = at_line_start and match.group(0).endswith(b"\n")
        return b"\n" if whole_line else b""

    cleaned = SUMMARY_RE.sub(replace, data)
    return cleaned, declared
