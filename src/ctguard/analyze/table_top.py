"""``ctguard top``: who and what fills the table, grouped and filtered.

A query (:mod:`ctguard.analyze.table_query`) names grouping dimensions
(``src``, ``dport``, ``src/24`` ...) and filters.  It becomes a
:class:`ScanSpec` capturing just the columns needed; the scan counts raw
keys; this module decodes each *distinct* key once, applies the filters,
and folds keys into groups.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctguard.analyze.table_keys import (
    canonical_address,
    canonical_addresses,
    decode_int,
    decode_text,
    flags_label,
    subnet_of,
)
from ctguard.analyze.table_query import Dimension, TableFilter
from ctguard.parse.conntrack_table import COLUMNS
from ctguard.parse.table_scan import ScanResult, ScanSpec

# --- from a query to a scan and back -----------------------------------------

TOTAL_DIMS = ("proto", "state")


def top_scan_spec(dims: Sequence[Dimension], table_filter: TableFilter) -> ScanSpec:
    """The columns the groups, the filter and the totals need, and what to count.

    Without a filter, groups and totals are separate small tallies; with one,
    a single tally keyed by every column (the filter must see them together).
    """
    group_columns: set[str] = set()
    for dim in dims:
        group_columns.update(dim.columns)
    needed = group_columns | set(TOTAL_DIMS) | table_filter.columns
    columns = tuple(c for c in COLUMNS if c in needed)
    if table_filter.active:
        return ScanSpec(columns=columns, tallies=(columns,))
    group_key = tuple(c for c in COLUMNS if c in group_columns)
    # a tally per total: two small counters of single values cost less than
    # one of (proto, state) pairs, each a new tuple to build and hash
    totals = tuple((name,) for name in TOTAL_DIMS if (name,) != group_key)
    return ScanSpec(columns=columns, tallies=(group_key, *totals))


_DECODERS: dict[str, Callable[[bytes], Any]] = {
    "proto": decode_text,
    "timeout": decode_int,
    "state": decode_text,
    "src": canonical_address,
    "dst": canonical_address,
    "sport": decode_int,
    "dport": decode_int,
    "unreplied": bool,
    "reply_src": canonical_address,
    "reply_dst": canonical_address,
    "nat": bool,
    "status": decode_text,
    "mark": decode_int,
    "zone": decode_int,
}


class RowDecoder:
    """Decode raw keys of one tally into dicts, each distinct column value once."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._caches: list[dict[bytes, Any]] = [{} for _ in self.columns]
        self._decoders = [_DECODERS[c] for c in self.columns]

    def decode(self, key: Any) -> dict[str, Any]:
        values = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {}
        for name, raw, cache, decoder in zip(
            self.columns, values, self._caches, self._decoders, strict=True
        ):
            try:
                row[name] = cache[raw]
            except KeyError:
                row[name] = cache[raw] = decoder(raw)
        if "unreplied" in row or "status" in row:
            row["flags"] = flags_label(
                b"x" if row.get("unreplied") else b"", (row.get("status") or "").encode()
            )
        return row


def decode_row(columns: Sequence[str], key: Any) -> dict[str, Any]:
    return RowDecoder(columns).decode(key)


def dimension_value(dim: Dimension, row: dict[str, Any]) -> Any:
    if dim.base == "flags":
        return row["flags"]
    value = row[dim.columns[0]]
    if dim.v4_len is not None and dim.v6_len is not None and value is not None:
        return subnet_of(value, dim.v4_len, dim.v6_len)
    if dim.base in ("zone", "mark") and value is None:
        return 0
    return value


def dimension_reader(dim: Dimension, columns: Sequence[str]) -> Callable[[tuple[Any, ...]], Any]:
    """The value of ``dim`` straight from a raw key of ``columns`` (no row dict):
    what :func:`dimension_value` gives for the decoded row, at a fraction of the cost."""
    index = {name: i for i, name in enumerate(columns)}
    if dim.base == "flags":
        unreplied, status = index["unreplied"], index["status"]
        return lambda key: flags_label(key[unreplied], key[status])
    at = index[dim.columns[0]]
    decode = _DECODERS[dim.columns[0]]
    v4_len, v6_len = dim.v4_len, dim.v6_len
    if v4_len is not None and v6_len is not None:
        return lambda key: subnet_of(decode(key[at]), v4_len, v6_len) if key[at] else None
    if dim.base in ("zone", "mark"):
        return lambda key: decode(key[at]) or 0
    return lambda key: decode(key[at])


def _is_plain_address(dim: Dimension, column: str) -> bool:
    """``dim`` is the address in ``column`` as it is (not its subnet)."""
    return (
        dim.columns == (column,) and _DECODERS[column] is canonical_address and dim.v4_len is None
    )


def group_counts(
    columns: Sequence[str], counts: Counter[Any], dims: Sequence[Dimension]
) -> Counter[tuple[Any, ...]]:
    """Fold a tally's raw keys into groups (no filter: every key counts)."""
    groups: Counter[tuple[Any, ...]] = Counter()
    single = len(columns) == 1  # such tallies are keyed by the bare value
    if single and len(dims) == 1 and _is_plain_address(dims[0], columns[0]):
        addresses = canonical_addresses(counts)
        if len(set(addresses)) == len(addresses):  # each address in one form only
            dict.update(groups, zip(zip(addresses), counts.values(), strict=True))
            return groups
        for address, count in zip(addresses, counts.values(), strict=True):
            groups[(address,)] += count
        return groups
    readers = [dimension_reader(dim, columns) for dim in dims]
    if len(readers) == 1:
        read = readers[0]
        for key, count in counts.items():
            groups[(read((key,) if single else key),)] += count
        return groups
    for key, count in counts.items():
        values = (key,) if single else key
        groups[tuple(read(values) for read in readers)] += count
    return groups


@dataclass
class TopResult:
    """What ``ctguard top`` prints."""

    source: str
    dims: list[Dimension]
    entries: int
    matched: int
    groups: list[tuple[tuple[Any, ...], int]]
    group_count: int
    totals: dict[str, list[tuple[Any, int]]]
    scan: ScanResult
    approximate: bool = False
    max_error: int = 0
    filters: dict[str, Any] = field(default_factory=dict)


def build_top(
    source: str,
    scan: ScanResult,
    dims: Sequence[Dimension],
    table_filter: TableFilter,
    limit: int,
) -> TopResult:
    spec = scan.spec
    filtered = table_filter.active
    totals: dict[str, Counter[Any]] = {name: Counter() for name in TOTAL_DIMS}
    main_key = spec.tallies[0]
    tally = scan.tallies[main_key]
    if filtered:
        groups, matched = _filtered_groups(main_key, tally.counts, dims, table_filter, totals)
        ranked, group_count = rank(groups, limit), len(groups)
    else:
        matched = scan.entries
        top = top_of_addresses_as_read(main_key, tally.counts, dims, limit)
        if top is None:
            groups = group_counts(main_key, tally.counts, dims)
            top = rank(groups, limit), len(groups)
        ranked, group_count = top
        for name in TOTAL_DIMS:
            decode = _DECODERS[name]
            for key, count in scan.tallies[(name,)].counts.items():
                totals[name][decode(key) or "-"] += count
    return TopResult(
        source=source,
        dims=list(dims),
        entries=scan.entries,
        matched=matched,
        groups=ranked,
        group_count=group_count,
        totals={
            name: sorted(counter.items(), key=lambda item: (-item[1], str(item[0])))
            for name, counter in totals.items()
        },
        scan=scan,
        approximate=tally.max_error > 0,
        max_error=tally.max_error,
        filters=table_filter.describe(),
    )


def _filtered_groups(
    columns: Sequence[str],
    counts: Counter[Any],
    dims: Sequence[Dimension],
    table_filter: TableFilter,
    totals: dict[str, Counter[Any]],
) -> tuple[Counter[tuple[Any, ...]], int]:
    """Groups of the keys the filter keeps, and how many entries they hold;
    the totals are counted over the kept keys too."""
    checks = table_filter.predicates()
    groups: Counter[tuple[Any, ...]] = Counter()
    decoder = RowDecoder(columns)
    matched = 0
    for key, count in counts.items():
        row = decoder.decode(key)
        if not all(check(row) for check in checks):
            continue
        matched += count
        groups[tuple(dimension_value(d, row) for d in dims)] += count
        totals["proto"][row["proto"]] += count
        totals["state"][row["state"] or "-"] += count
    return groups, matched


# IPv4 keys (decoded as they are) and expanded lowercase IPv6 keys (procfs):
# no two of them spell one address
_ADDRESS_AS_READ = rb"(?:[0-9a-f]{4}(?::[0-9a-f]{4}){7}|[^:\n]*+)"
_ONE_SPELLING_EACH = re.compile(_ADDRESS_AS_READ + rb"(?:\n" + _ADDRESS_AS_READ + rb")*+")


def top_of_addresses_as_read(
    columns: Sequence[str], counts: Counter[Any], dims: Sequence[Dimension], limit: int
) -> tuple[list[tuple[Any, int]], int] | None:
    """``rank(group_counts(...), limit)`` and the number of groups, decoding only
    the keys that can rank, when the grouping is one address and no two keys
    spell one address (then each key is a group of its own); else None."""
    if limit <= 0 or len(columns) != 1 or len(dims) != 1:
        return None
    if not _is_plain_address(dims[0], columns[0]):
        return None
    if _ONE_SPELLING_EACH.fullmatch(b"\n".join(counts)) is None:
        return None
    threshold = heapq.nlargest(limit, counts.values())[-1] if len(counts) > limit else 0
    candidates: Counter[tuple[Any, ...]] = Counter(
        {(canonical_address(key),): count for key, count in counts.items() if count >= threshold}
    )
    return rank(candidates, limit), len(counts)


def rank(groups: Counter[Any], limit: int) -> list[tuple[Any, int]]:
    """The ``limit`` largest groups (all when 0), ties in a stable order by key."""
    items: list[tuple[Any, int]] = list(groups.items())
    if 0 < limit < len(items):
        threshold = sorted(groups.values(), reverse=True)[limit - 1]
        items = [item for item in items if item[1] >= threshold]
    items.sort(key=lambda item: (-item[1], _sort_key(item[0])))
    return items[:limit] if limit > 0 else items


def _sort_key(values: Any) -> tuple[str, ...]:
    if not isinstance(values, tuple):
        values = (values,)
    return tuple("" if v is None else str(v) for v in values)
