"""What must never be blocked: this host, its way out, the operator, the allowlist.

A block that covers the host's own address, its default gateway, its DNS
resolvers, the SSH client's address or a current SSH peer locks the operator
out; loopback breaks local services.  This module only decides: what is
protected is read by kernel/host_addresses.py at every decision.
Those are refused outright.  Very wide ranges (wider than /8 or /32) are
refused unless forced.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ctguard.errors import UsageError
from ctguard.rules.model import Network, parse_network

DEFAULT_ALLOWLIST = Path("/etc/ctguard/allowlist")
WIDEST = {4: 8, 6: 32}


@dataclass(frozen=True)
class Protected:
    network: Network
    why: str


def loopback() -> list[Protected]:
    return [
        Protected(ipaddress.ip_network("127.0.0.0/8"), "loopback"),
        Protected(ipaddress.ip_network("::1/128"), "loopback"),
    ]


def ssh_client(environ: dict[str, str]) -> list[Protected]:
    text = environ.get("SSH_CONNECTION") or environ.get("SSH_CLIENT") or ""
    first = text.split()[0] if text.split() else ""
    try:
        return [Protected(ipaddress.ip_network(first), "the SSH client of this session")]
    except ValueError:
        return []


def parse_allowlist(lines: Iterable[str], where: str) -> list[Protected]:
    """The allowlist's addresses and CIDRs (one a line, `#` comments); a bad one names its line."""
    result = []
    for number, line in enumerate(lines, 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            result.append(Protected(ipaddress.ip_network(item, strict=False), f"in {where}"))
        except ValueError as err:
            raise UsageError(
                f"bad allowlist entry {item!r}", hint=f"fix line {number} of {where}"
            ) from err
    return result


def protected_networks(system: list[Protected], environ: dict[str, str]) -> list[Protected]:
    """Loopback, the session's SSH client, and what was read from the system now
    (kernel/host_addresses.py: addresses, gateways, resolvers, SSH peers, allowlist)."""
    return [*loopback(), *system, *ssh_client(environ)]


def check_block_targets(
    networks: list[Network], protected: list[Protected], *, force: bool
) -> None:
    for network in networks:
        for item in protected:
            if network.version == item.network.version and network.overlaps(item.network):
                raise UsageError(
                    f"refusing to block {network}: it covers {item.network} ({item.why})",
                    hint="blocking it would cut this host off or lock you out; narrow the range",
                )
        widest = WIDEST[network.version]
        if network.prefixlen < widest and not force:
            raise UsageError(
                f"{network} is wider than /{widest}",
                hint="that blocks a large part of the Internet; add --force if you mean it",
            )


def parse_targets(items: list[str]) -> list[Network]:
    networks: list[Network] = []
    for item in items:
        for part in item.split(","):
            if part.strip():
                networks.append(parse_network(part))
    if not networks:
        raise UsageError("no address given", hint="e.g. ctguard block 203.0.113.7")
    return networks
