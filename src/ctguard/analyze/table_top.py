"""``ctguard top``: who and what fills the table, grouped and filtered.

A query names grouping dimensions (``src``, ``dport``, ``src/24`` ...) and
filters.  It becomes a :class:`ScanSpec` capturing just the columns needed;
the scan counts raw keys; this module decodes each *distinct* key once,
applies the filters, and folds keys into groups.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctguard.analyze.table_keys import (
    Network,
    address_of,
    canonical_address,
    decode_int,
    decode_text,
    flags_label,
    subnet_of,
)
from ctguard.errors import UsageError
from ctguard.parse.conntrack_table import COLUMNS
from ctguard.parse.table_scan import ScanResult, ScanSpec

# dimension name -> the columns it is computed from
BASE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "src": ("src",),
    "dst": ("dst",),
    "sport": ("sport",),
    "dport": ("dport",),
    "proto": ("proto",),
    "state": ("state",),
    "flags": ("unreplied", "status"),
    "zone": ("zone",),
    "mark": ("mark",),
    "reply-src": ("reply_src",),
    "reply-dst": ("reply_dst",),
}
SUBNET_BASES = ("src", "dst", "reply-src", "reply-dst")
DEFAULT_V4_LEN = 24
DEFAULT_V6_LEN = 64


@dataclass(frozen=True)
class Dimension:
    """One grouping dimension, e.g. ``src`` or ``src/24`` (v4 /24, v6 /64)."""

    name: str
    base: str
    v4_len: int | None = None
    v6_len: int | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return BASE_DIMENSIONS[self.base]

    @property
    def is_numeric(self) -> bool:
        return self.base in ("sport", "dport", "zone", "mark")


def parse_dimensions(spec: str) -> list[Dimension]:
    """``src,dport`` or ``src/24`` -> dimensions; a clear error for anything else."""
    dims: list[Dimension] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        base, _, length = part.partition("/")
        if base not in BASE_DIMENSIONS:
            raise UsageError(
                f"unknown grouping {part!r}",
                hint="use one or more of " + ", ".join(BASE_DIMENSIONS) + " (comma-separated); "
                "add /LEN to an address for subnets, e.g. src/24 or src/64",
            )
        if not length:
            dims.append(Dimension(part, base))
            continue
        if base not in SUBNET_BASES or not length.isdigit() or not 0 < int(length) <= 128:
            raise UsageError(
                f"bad subnet grouping {part!r}",
                hint="a prefix length 1..128 after an address dimension, e.g. src/24",
            )
        size = int(length)
        if size <= 32:
            dims.append(Dimension(part, base, size, DEFAULT_V6_LEN))
        else:
            dims.append(Dimension(part, base, DEFAULT_V4_LEN, size))
    if not dims:
        raise UsageError("nothing to group by", hint="e.g. --by src")
    return dims


@dataclass(frozen=True)
class TableFilter:
    """Entries to keep; empty fields keep everything."""

    protos: frozenset[str] = frozenset()
    states: frozenset[str] = frozenset()
    src_nets: tuple[Network, ...] = ()
    dst_nets: tuple[Network, ...] = ()
    ports: frozenset[int] = frozenset()  # either side
    sports: frozenset[int] = frozenset()
    dports: frozenset[int] = frozenset()
    assured: bool | None = None
    unreplied: bool | None = None
    zones: frozenset[int] = frozenset()
    marks: frozenset[int] = frozenset()

    @property
    def columns(self) -> set[str]:
        needed: set[str] = set()
        if self.protos:
            needed.add("proto")
        if self.states:
            needed.add("state")
        if self.src_nets:
            needed.add("src")
        if self.dst_nets:
            needed.add("dst")
        if self.ports:
            needed |= {"sport", "dport"}
        if self.sports:
            needed.add("sport")
        if self.dports:
            needed.add("dport")
        if self.assured is not None:
            needed.add("status")
        if self.unreplied is not None:
            needed.add("unreplied")
        if self.zones:
            needed.add("zone")
        if self.marks:
            needed.add("mark")
        return needed

    @property
    def active(self) -> bool:
        return bool(self.columns)

    def predicates(self) -> list[Callable[[dict[str, Any]], bool]]:
        """One check per active field, built once and run per distinct key."""
        checks: list[Callable[[dict[str, Any]], bool]] = []
        if self.protos:
            checks.append(lambda row: row["proto"] in self.protos)
        if self.states:
            checks.append(lambda row: (row["state"] or "") in self.states)
        if self.src_nets:
            checks.append(lambda row: _in_nets(row["src"], self.src_nets))
        if self.dst_nets:
            checks.append(lambda row: _in_nets(row["dst"], self.dst_nets))
        if self.ports:
            checks.append(lambda row: row["sport"] in self.ports or row["dport"] in self.ports)
        if self.sports:
            checks.append(lambda row: row["sport"] in self.sports)
        if self.dports:
            checks.append(lambda row: row["dport"] in self.dports)
        if self.assured is not None:
            checks.append(lambda row: (row["status"] == "ASSURED") == self.assured)
        if self.unreplied is not None:
            checks.append(lambda row: row["unreplied"] == self.unreplied)
        if self.zones:
            checks.append(lambda row: (row["zone"] or 0) in self.zones)
        if self.marks:
            checks.append(lambda row: (row["mark"] or 0) in self.marks)
        return checks

    def describe(self) -> dict[str, Any]:
        """The active filters, for reports (JSON-ready)."""
        out: dict[str, Any] = {}
        for name in ("protos", "states", "ports", "sports", "dports", "zones", "marks"):
            values = getattr(self, name)
            if values:
                out[name] = sorted(values)
        for name in ("src_nets", "dst_nets"):
            nets = getattr(self, name)
            if nets:
                out[name] = [str(n) for n in nets]
        for name in ("assured", "unreplied"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def _in_nets(address: str, nets: Sequence[Network]) -> bool:
    parsed = address_of(address)
    return parsed is not None and any(
        parsed.version == net.version and parsed in net for net in nets
    )


def split_list(values: Sequence[str]) -> list[str]:
    """Repeated options holding comma-separated lists -> their items."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def parse_networks(values: Sequence[str], option: str) -> tuple[Network, ...]:
    nets: list[Network] = []
    for part in split_list(values):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as err:
            raise UsageError(
                f"{option}: {part!r} is not an address or CIDR",
                hint="e.g. 10.0.0.0/8 or 2001:db8::/32",
            ) from err
    return tuple(nets)


def parse_ports(values: Sequence[str], option: str) -> frozenset[int]:
    ports: set[int] = set()
    for part in split_list(values):
        if not part.isdigit() or not 0 <= int(part) <= 65535:
            raise UsageError(f"{option}: {part!r} is not a port (0-65535)")
        ports.add(int(part))
    return frozenset(ports)


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
    tallies = (group_key, TOTAL_DIMS) if group_key != TOTAL_DIMS else (TOTAL_DIMS,)
    return ScanSpec(columns=columns, tallies=tallies)


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


def group_counts(
    columns: Sequence[str], counts: Counter[Any], dims: Sequence[Dimension]
) -> Counter[tuple[Any, ...]]:
    """Fold a tally's raw keys into groups (no filter: every key counts)."""
    readers = [dimension_reader(dim, columns) for dim in dims]
    groups: Counter[tuple[Any, ...]] = Counter()
    single = len(columns) == 1  # such tallies are keyed by the bare value
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
    else:
        groups = group_counts(main_key, tally.counts, dims)
        matched = scan.entries
        totals_decoder = RowDecoder(TOTAL_DIMS)
        for key, count in scan.tallies[TOTAL_DIMS].counts.items():
            row = totals_decoder.decode(key)
            totals["proto"][row["proto"]] += count
            totals["state"][row["state"] or "-"] += count
    ranked = rank(groups, limit)
    return TopResult(
        source=source,
        dims=list(dims),
        entries=scan.entries,
        matched=matched,
        groups=ranked,
        group_count=len(groups),
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
