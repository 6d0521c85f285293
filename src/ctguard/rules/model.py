"""The firewall state ctguard owns, as plain values (FACTS.md §8).

Everything ctguard adds to a host lives in one state: NOTRACK exemptions,
blocked networks with their expiry, and at most one trace.  Renderers turn
the *whole* state into one script that replaces ctguard's own table or
chains atomically, so removing ctguard is always "delete what is ours" and
nothing else is touched.  Times are absolute (seconds since the epoch) so a
state can be re-rendered later with the time left.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

from ctguard.errors import UsageError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PROTOCOLS = ("tcp", "udp")
# What a block or a trace may name (nft and iptables both know these names).
MATCH_PROTOCOLS = ("tcp", "udp", "sctp", "dccp", "udplite", "icmp", "icmpv6", "gre", "esp", "ah")
# The protocols whose header has ports (``th sport``/``--sport`` work on them).
PORT_PROTOCOLS = ("tcp", "udp", "sctp", "dccp")
# The family a protocol exists in (icmp is IPv4's, icmpv6 IPv6's); others: both.
PROTOCOL_FAMILY = {"icmp": 4, "icmpv6": 6}
# The version of the state file; older files are read and migrated (see from_dict).
STATE_VERSION = 2


def parse_network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as err:
        raise UsageError(
            f"{text!r} is not an IP address or CIDR",
            hint="e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48",
        ) from err


def parse_port(text: str | int | None, option: str) -> int | None:
    """A port given on the command line (1-65535), or None."""
    if text is None:
        return None
    value = str(text).strip()
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise UsageError(f"{option} {text!r} is not a port", hint="a number from 1 to 65535")
    return int(value)


def check_match(
    proto: str | None, sport: int | None, dport: int | None, versions: set[int]
) -> None:
    """Refuse a protocol/port qualification no rule can express (exit 64, not a bad rule).

    ``proto`` None means any protocol; ``versions`` are the IP versions of the
    addresses the match applies to (empty: both).
    """
    if proto is not None and proto not in MATCH_PROTOCOLS:
        raise UsageError(f"unknown protocol {proto!r}", hint=f"one of {', '.join(MATCH_PROTOCOLS)}")
    ports = [f"--{name}" for name, port in (("sport", sport), ("dport", dport)) if port]
    if ports and proto not in PORT_PROTOCOLS:
        given = "no --proto" if proto is None else f"--proto {proto}"
        raise UsageError(
            f"{' and '.join(ports)} needs a protocol with ports, and {given} has none",
            hint=f"add --proto {' or '.join(PORT_PROTOCOLS)}, e.g. --proto udp --sport 53",
        )
    family = PROTOCOL_FAMILY.get(proto or "")
    if family is not None and versions - {family}:
        other = "icmpv6" if proto == "icmp" else "icmp"
        raise UsageError(
            f"--proto {proto} exists only for IPv{family} and an IPv{6 if family == 4 else 4} "
            "address is given",
            hint=f"use --proto {other} for those addresses, in a separate command",
        )


def match_label(proto: str | None, sport: int | None, dport: int | None) -> str:
    """'udp sport 53', 'tcp dport 443', 'icmp'; '' for everything."""
    parts = [proto] if proto else []
    parts += [f"{name} {port}" for name, port in (("sport", sport), ("dport", dport)) if port]
    return " ".join(parts)


@dataclass(frozen=True)
class NotrackRule:
    """Exempt traffic to and from these ports from connection tracking."""

    proto: str  # "tcp", "udp" or "any" (both)
    ports: tuple[int, ...]
    iface: str | None = None
    src: str | None = None  # a CIDR the remote side must be in

    @property
    def protocols(self) -> tuple[str, ...]:
        return PROTOCOLS if self.proto == "any" else (self.proto,)

    @property
    def family(self) -> int | None:
        return None if self.src is None else parse_network(self.src).version

    def label(self) -> str:
        parts = [f"{self.proto} port {','.join(map(str, self.ports))}"]
        if self.iface:
            parts.append(f"on {self.iface}")
        if self.src:
            parts.append(f"peer {self.src}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "proto": self.proto,
            "ports": list(self.ports),
            "iface": self.iface,
            "src": self.src,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NotrackRule:
        return cls(
            str(data["proto"]),
            tuple(int(p) for p in data["ports"]),
            data.get("iface"),
            data.get("src"),
        )


@dataclass(frozen=True)
class Block:
    """Drop packets from ``network``; with a protocol (and ports) only those packets."""

    network: str  # canonical CIDR (ip_network's str)
    added: float
    expires: float | None  # None: until removed
    reason: str = ""
    proto: str | None = None  # None: every protocol
    sport: int | None = None  # the source's port (the packets' source port)
    dport: int | None = None  # the port the packets go to

    @property
    def version(self) -> int:
        return parse_network(self.network).version

    @property
    def match(self) -> tuple[str | None, int | None, int | None]:
        """What of the source's traffic is dropped: (proto, sport, dport)."""
        return (self.proto, self.sport, self.dport)

    @property
    def qualified(self) -> bool:
        return self.match != (None, None, None)

    def label(self) -> str:
        """'203.0.113.7/32', or '50.2.6.12/32 udp sport 53'."""
        return " ".join(filter(None, (self.network, match_label(*self.match))))

    def seconds_left(self, now: float) -> int | None:
        return None if self.expires is None else max(0, int(self.expires - now))

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "added": self.added,
            "expires": self.expires,
            "reason": self.reason,
            "proto": self.proto,
            "sport": self.sport,
            "dport": self.dport,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        """Also reads version 1 blocks, which had no protocol or ports (every packet)."""
        expires = data.get("expires")
        proto = data.get("proto")
        return cls(
            str(data["network"]),
            float(data["added"]),
            None if expires is None else float(expires),
            str(data.get("reason", "")),
            None if proto is None else str(proto),
            _optional_int(data.get("sport")),
            _optional_int(data.get("dport")),
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Trace:
    """Rate-limited LOG of new connections until ``expires``.

    ``proto`` "any" with a port means TCP and UDP.
    """

    expires: float
    src: str | None = None
    dport: int | None = None
    proto: str = "any"
    rate_per_second: int = 10
    dst: str | None = None
    sport: int | None = None

    @property
    def protocols(self) -> tuple[str, ...]:
        """The protocols of its rules; ("any",) when it matches every protocol."""
        if self.proto != "any":
            return (self.proto,)
        return PROTOCOLS if self.sport or self.dport else ("any",)

    @property
    def versions(self) -> set[int]:
        """The IP versions it can match (from its addresses; both when none)."""
        given: set[int] = {parse_network(a).version for a in (self.src, self.dst) if a}
        family = PROTOCOL_FAMILY.get(self.proto)
        if family is not None:
            given.add(family)
        return given or {4, 6}

    def to_dict(self) -> dict[str, Any]:
        return {
            "expires": self.expires,
            "src": self.src,
            "dst": self.dst,
            "sport": self.sport,
            "dport": self.dport,
            "proto": self.proto,
            "rate_per_second": self.rate_per_second,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        """Also reads version 1 traces, which had no destination or source port."""
        return cls(
            float(data["expires"]),
            data.get("src"),
            _optional_int(data.get("dport")),
            str(data.get("proto", "any")),
            int(data.get("rate_per_second", 10)),
            data.get("dst"),
            _optional_int(data.get("sport")),
        )


def _within(inner: str, outer: str) -> bool:
    """Whether network ``inner`` lies inside (or equals) network ``outer``."""
    a, b = parse_network(inner), parse_network(outer)
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def merge_blocks(
    existing: tuple[Block, ...], new: tuple[Block, ...]
) -> tuple[tuple[Block, ...], list[str]]:
    """Blocks after adding ``new``, no two overlapping (an interval set refuses that).

    Blocks of the same protocol and ports share a set: among them a new network
    replaces the existing blocks it covers; one inside a wider existing block is
    not added (a note says so); among the new ones the widest wins.  Blocks of
    different protocols or ports are independent.
    """
    matches = list(dict.fromkeys(b.match for b in (*existing, *new)))
    result: list[Block] = []
    notes: list[str] = []
    for match in matches:
        kept, more = _merge_same_match(
            tuple(b for b in existing if b.match == match),
            tuple(b for b in new if b.match == match),
        )
        result += kept
        notes += more
    return tuple(result), notes


def _merge_same_match(
    existing: tuple[Block, ...], new: tuple[Block, ...]
) -> tuple[tuple[Block, ...], list[str]]:
    chosen: list[Block] = []
    for block in sorted(new, key=lambda b: parse_network(b.network).prefixlen):
        if not any(_within(block.network, other.network) for other in chosen):
            chosen.append(block)
    kept = [old for old in existing if not any(_within(old.network, b.network) for b in chosen)]
    added, notes = [], []
    for block in chosen:
        cover = next((old for old in kept if _within(block.network, old.network)), None)
        if cover is None:
            added.append(block)
        else:
            notes.append(
                f"{block.label()} is already blocked by {cover.label()} (its expiry stays); "
                f"unblock {cover.label()} first to block it on its own"
            )
    return (*kept, *added), notes


TRACE_PREFIX = "ctguard-trace: "


@dataclass(frozen=True)
class FirewallState:
    notrack: tuple[NotrackRule, ...] = ()
    blocks: tuple[Block, ...] = ()
    trace: Trace | None = None
    # Add `ct state untracked accept` in front of the host's stateful filter.
    accept_untracked: bool = False
    backend: str = "nft"  # "nft" or "iptables": where the state is loaded

    @property
    def empty(self) -> bool:
        return not self.notrack and not self.blocks and self.trace is None

    def live(self, now: float) -> FirewallState:
        """Without expired blocks and an expired trace."""
        blocks = tuple(b for b in self.blocks if b.expires is None or b.expires > now)
        trace = self.trace if self.trace is not None and self.trace.expires > now else None
        return replace(self, blocks=blocks, trace=trace)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "notrack": [rule.to_dict() for rule in self.notrack],
            "blocks": [block.to_dict() for block in self.blocks],
            "trace": None if self.trace is None else self.trace.to_dict(),
            "accept_untracked": self.accept_untracked,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FirewallState:
        """Reads every version up to STATE_VERSION (version 1: blocks of every packet)."""
        version = int(data.get("version", 1))
        if version > STATE_VERSION:
            raise ValueError(
                f"firewall state version {version} is newer than this ctguard reads "
                f"({STATE_VERSION}): a newer ctguard wrote it"
            )
        trace = data.get("trace")
        return cls(
            notrack=tuple(NotrackRule.from_dict(r) for r in data.get("notrack", [])),
            blocks=tuple(Block.from_dict(b) for b in data.get("blocks", [])),
            trace=None if trace is None else Trace.from_dict(trace),
            accept_untracked=bool(data.get("accept_untracked", False)),
            backend=str(data.get("backend", "nft")),
        )
