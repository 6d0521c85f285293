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


def parse_network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as err:
        raise UsageError(
            f"{text!r} is not an IP address or CIDR",
            hint="e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/48",
        ) from err


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
    network: str  # canonical CIDR (ip_network's str)
    added: float
    expires: float | None  # None: until removed
    reason: str = ""

    @property
    def version(self) -> int:
        return parse_network(self.network).version

    def seconds_left(self, now: float) -> int | None:
        return None if self.expires is None else max(0, int(self.expires - now))

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "added": self.added,
            "expires": self.expires,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        expires = data.get("expires")
        return cls(
            str(data["network"]),
            float(data["added"]),
            None if expires is None else float(expires),
            str(data.get("reason", "")),
        )


@dataclass(frozen=True)
class Trace:
    """Rate-limited LOG of new connections until ``expires``."""

    expires: float
    src: str | None = None
    dport: int | None = None
    proto: str = "any"
    rate_per_second: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {
            "expires": self.expires,
            "src": self.src,
            "dport": self.dport,
            "proto": self.proto,
            "rate_per_second": self.rate_per_second,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        return cls(
            float(data["expires"]),
            data.get("src"),
            None if data.get("dport") is None else int(data["dport"]),
            str(data.get("proto", "any")),
            int(data.get("rate_per_second", 10)),
        )


def _within(inner: str, outer: str) -> bool:
    """Whether network ``inner`` lies inside (or equals) network ``outer``."""
    a, b = parse_network(inner), parse_network(outer)
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


def merge_blocks(
    existing: tuple[Block, ...], new: tuple[Block, ...]
) -> tuple[tuple[Block, ...], list[str]]:
    """Blocks after adding ``new``, no two overlapping (an interval set refuses that).

    A new network replaces the existing blocks it covers; one inside a wider
    existing block is not added (a note says so); among the new ones the
    widest wins.
    """
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
                f"{block.network} is already blocked by {cover.network} (its expiry stays); "
                f"unblock {cover.network} first to block it on its own"
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
            "version": 1,
            "notrack": [rule.to_dict() for rule in self.notrack],
            "blocks": [block.to_dict() for block in self.blocks],
            "trace": None if self.trace is None else self.trace.to_dict(),
            "accept_untracked": self.accept_untracked,
            "backend": self.backend,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FirewallState:
        trace = data.get("trace")
        return cls(
            notrack=tuple(NotrackRule.from_dict(r) for r in data.get("notrack", [])),
            blocks=tuple(Block.from_dict(b) for b in data.get("blocks", [])),
            trace=None if trace is None else Trace.from_dict(trace),
            accept_untracked=bool(data.get("accept_untracked", False)),
            backend=str(data.get("backend", "nft")),
        )
