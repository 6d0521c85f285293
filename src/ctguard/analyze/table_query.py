"""What a table query asks for: grouping dimensions and filters.

Parsed before anything is read (a bad ``--by`` or ``--src`` is a usage
error, and the live table's reading starts right after), so this module is
light: no scanner, no pattern compiled at import.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ctguard.analyze.table_keys import Network, address_of
from ctguard.errors import UsageError

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
