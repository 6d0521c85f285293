"""Turning captured bytes into the values people read: addresses, ports, flags.

Everything here runs once per *distinct* key, never per entry, so it can
afford ``ipaddress``; results are cached because the same address appears
under many keys.
"""

from __future__ import annotations

import ipaddress

# the C module behind socket: its address conversions without socket.py's
# own import (~2 ms of every start, before a scan's child is forked)
from _socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from collections.abc import Collection
from functools import lru_cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8192)
def canonical_address(raw: bytes) -> str:
    """The address as people write it: IPv6 compressed, whatever the input form."""
    text = raw.decode("ascii", "replace")
    return _compressed_ipv6(text) if ":" in text else text


def canonical_addresses(raws: Collection[bytes]) -> list[str]:
    """:func:`canonical_address` of each of ``raws``, in order.

    For the tally of a busy table's sources (tens of thousands of distinct
    keys): one decode for all of them, then only the IPv6 ones one by one.
    """
    texts = b"\n".join(raws).decode("ascii", "replace").split("\n")
    if len(texts) != len(raws):  # no key, or one that holds a newline
        return [canonical_address(raw) for raw in raws]
    return [_compressed_ipv6(text) if ":" in text else text for text in texts]


def _compressed_ipv6(text: str) -> str:
    try:
        return inet_ntop(AF_INET6, inet_pton(AF_INET6, text))
    except OSError:
        return text


@lru_cache(maxsize=8192)
def address_of(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=8192)
def subnet_of(text: str, v4_len: int, v6_len: int) -> str:
    """The network of ``text`` with the family's prefix length (socket-level, no ipaddress)."""
    family, length, bits = (AF_INET6, v6_len, 128) if ":" in text else (AF_INET, v4_len, 32)
    try:
        packed = inet_pton(family, text)
    except OSError:
        return text
    mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
    network = (int.from_bytes(packed, "big") & mask).to_bytes(bits // 8, "big")
    return f"{inet_ntop(family, network)}/{length}"


def decode_int(raw: bytes) -> int | None:
    return int(raw) if raw else None


def decode_text(raw: bytes) -> str | None:
    return raw.decode("ascii", "replace") if raw else None


def flags_label(unreplied: bytes, status: bytes) -> str:
    """One word for the entry's flags: ASSURED, UNREPLIED, OFFLOAD, HW_OFFLOAD or none."""
    if status:
        return status.decode()
    return "UNREPLIED" if unreplied else "none"
