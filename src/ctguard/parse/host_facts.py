"""Pure parsers for what a block must never cut: DNS resolvers, sshd ports, SSH peers.

Each takes the lines of a file (/etc/resolv.conf, sshd_config, /proc/net/tcp
or tcp6) and never opens anything; kernel/host_addresses.py reads them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

SSH_PORT = 22
ESTABLISHED = "01"  # the st column of /proc/net/tcp (TCP_ESTABLISHED)


def parse_resolv_conf(lines: Iterable[str]) -> list[str]:
    """The `nameserver` addresses, in order (zone ids dropped; a bad one skipped)."""
    found: list[str] = []
    for line in lines:
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        try:
            address = str(ipaddress.ip_address(words[1].split("%", 1)[0]))
        except ValueError:
            continue
        if address not in found:
            found.append(address)
    return found


def parse_sshd_ports(lines: Iterable[str]) -> list[int]:
    """The `Port` lines of sshd_config (22 when there is none)."""
    ports: list[int] = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0].lower() == "port" and words[1].isdigit():
            port = int(words[1])
            if 1 <= port <= 65535 and port not in ports:
                ports.append(port)
    return ports or [SSH_PORT]


def _hex_address(text: str) -> tuple[str, int]:
    """'0100007F:0016' -> ('127.0.0.1', 22); IPv6 as four host-order (little-endian) words."""
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1])), int(port, 16)
    if len(raw) == 16:
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip6 = ipaddress.IPv6Address(words)
        mapped = ip6.ipv4_mapped
        return str(mapped if mapped is not None else ip6), int(port, 16)
    raise ValueError(f"address of {len(raw)} bytes")


def parse_ssh_peers(lines: Iterable[str], ssh_ports: Iterable[int]) -> list[str]:
    """Remote addresses of ESTABLISHED TCP connections to a local sshd port.

    ``lines``: /proc/net/tcp or /proc/net/tcp6 (the header and bad lines are skipped).
    """
    ports = set(ssh_ports)
    peers: list[str] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != ESTABLISHED or not fields[0].endswith(":"):
            continue
        try:
            _, local_port = _hex_address(fields[1])
            remote, _ = _hex_address(fields[2])
        except ValueError:
            continue
        if local_port in ports and remote not in peers:
            peers.append(remote)
    return peers
