"""What must never be blocked: this host, its way out, the operator, the allowlist.

A block that covers the host's own address, its default gateway or the SSH
client's address locks the operator out; loopback breaks local services.
Those are refused outright.  Very wide ranges (wider than /8 or /32) are
refused unless forced.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from ctguard.effects.commands import run_tool
from ctguard.errors import UsageError
from ctguard.model.netns_ref import NetnsRef
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


def host_addresses(netns: NetnsRef | None) -> list[Protected]:
    """Addresses of every interface and the default gateways (via `ip -j`)."""
    result = []
    done = run_tool(["ip", "-j", "address", "show"], netns)
    for link in json.loads(done.stdout or "[]") if done.returncode == 0 else []:
        for info in link.get("addr_info", []):
            address = info.get("local")
            if address:
                result.append(
                    Protected(ipaddress.ip_network(address), f"an address of {link['ifname']}")
                )
    for family in ("-4", "-6"):
        done = run_tool(["ip", family, "-j", "route", "show", "default"], netns)
        for route in json.loads(done.stdout or "[]") if done.returncode == 0 else []:
            gateway = route.get("gateway")
            if gateway:
                result.append(Protected(ipaddress.ip_network(gateway), "the default gateway"))
    return result


def ssh_client(environ: dict[str, str]) -> list[Protected]:
    text = environ.get("SSH_CONNECTION") or environ.get("SSH_CLIENT") or ""
    first = text.split()[0] if text.split() else ""
    try:
        return [Protected(ipaddress.ip_network(first), "the SSH client of this session")]
    except ValueError:
        return []


def allowlist(environ: dict[str, str]) -> list[Protected]:
    path = Path(environ.get("CTGUARD_ALLOWLIST") or DEFAULT_ALLOWLIST)
    try:
        text = path.read_text()
    except OSError:
        return []
    result = []
    for number, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            result.append(Protected(ipaddress.ip_network(item, strict=False), f"in {path}"))
        except ValueError as err:
            raise UsageError(
                f"bad allowlist entry {item!r}", hint=f"fix line {number} of {path}"
            ) from err
    return result


def protected_networks(netns: NetnsRef | None, environ: dict[str, str]) -> list[Protected]:
    return [*loopback(), *host_addresses(netns), *ssh_client(environ), *allowlist(environ)]


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
