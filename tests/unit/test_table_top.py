"""Grouping raw keys: the fast unfiltered path agrees with the decoded-row path."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.analyze.table_keys import canonical_address, canonical_addresses
from ctguard.analyze.table_query import BASE_DIMENSIONS, parse_dimensions
from ctguard.analyze.table_top import (
    RowDecoder,
    dimension_value,
    group_counts,
    rank,
    top_of_addresses_as_read,
)
from ctguard.kernel.table_chunks import iter_chunks
from ctguard.parse.conntrack_table import COLUMNS
from ctguard.parse.table_scan import ScanSpec, scan_chunks

DIMENSIONS = [*BASE_DIMENSIONS, "src/24", "dst/64", "reply-src/16", "src/48"]


def _mixed_dump(formats: tuple[str, ...], entries: int, seed: int) -> str:
    """``entries`` generated entries, an equal share rendered in each of ``formats``."""
    return "".join(
        render_entry(e, fmt) + "\n"
        for fmt in formats
        for e in generate_entries(entries // len(formats), seed, v6_share=0.4)
    )


@pytest.mark.parametrize("spec", [*DIMENSIONS, "src,dport", "proto,state,flags", "zone,mark"])
@pytest.mark.parametrize(
    "formats",
    # one form of each IPv6 address, or both (expanded and compressed keys merge)
    [("procfs", "extended"), ("procfs",), ("extended",)],
)
def test_fast_grouping_matches_decoded_rows(spec: str, formats: tuple[str, ...]) -> None:
    dims = parse_dimensions(spec)
    columns = tuple(c for c in COLUMNS if any(c in d.columns for d in dims))
    text = _mixed_dump(formats, 800, 11)
    scan = scan_chunks(
        ScanSpec(columns=columns, tallies=(columns,)), iter_chunks(io.BytesIO(text.encode()))
    )
    counts = scan.tallies[columns].counts
    decoder = RowDecoder(columns)
    expected: Counter[tuple[object, ...]] = Counter()
    for key, count in counts.items():
        row = decoder.decode(key)
        expected[tuple(dimension_value(d, row) for d in dims)] += count
    grouped = group_counts(columns, counts, dims)
    assert grouped == expected
    assert sum(grouped.values()) == scan.entries == 800


def test_canonical_addresses_in_bulk_match_one_by_one() -> None:
    raws = [
        b"10.0.0.1",
        b"2001:0db8:0000:0000:0000:0000:0000:0001",
        b"2001:db8::1",
        b"",
        b"fe80::zz",  # not an address: kept as read
        b"::ffff:192.0.2.1",
    ]
    assert canonical_addresses(raws) == [canonical_address(r) for r in raws]
    assert canonical_addresses(raws)[1] == "2001:db8::1"
    assert canonical_addresses([]) == []
    assert canonical_addresses([b""]) == [""]


@pytest.mark.parametrize("formats", [("procfs",), ("extended",), ("procfs", "extended")])
@pytest.mark.parametrize("by", ["src", "dst", "reply-src", "src/24", "dport"])
@pytest.mark.parametrize("limit", [1, 3, 10, 0])
def test_top_of_addresses_as_read_ranks_like_the_decoded_groups(
    formats: tuple[str, ...], by: str, limit: int
) -> None:
    """Decoding only the keys that can rank gives the same top, ties included
    (many sources hold one entry), or declines: other groupings, all groups
    (limit 0), and IPv6 read in its compressed form, where two keys may
    spell one address."""
    dims = parse_dimensions(by)
    columns = tuple(c for c in COLUMNS if any(c in d.columns for d in dims))
    text = _mixed_dump(formats, 600, 5)
    spec = ScanSpec(columns=columns, tallies=(columns,))
    counts = scan_chunks(spec, iter_chunks(io.BytesIO(text.encode()))).tallies[columns].counts
    groups = group_counts(columns, counts, dims)
    fast = top_of_addresses_as_read(columns, counts, dims, limit)
    takes_it = limit > 0 and dims[0].v4_len is None and by != "dport" and "extended" not in formats
    assert (fast is not None) == takes_it
    if fast is not None:
        assert fast == (rank(groups, limit), len(groups))
