"""Fill a namespace's table through ctnetlink (FACTS §10), without real traffic.

Entries are created in the namespace's own table, so the host's table and
the global nf_conntrack_max are untouched.  Tuples use the documentation
ranges 198.18.0.0/15 (benchmarking) so they can never match real traffic.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

from ctguard.kernel.ctnetlink import CtnetlinkSocket, Flow
from ctguard.lab.namespaces import LabNamespace

FILL_NETWORK = ipaddress.ip_network("198.18.0.0/15")


def synthetic_flows(
    count: int,
    *,
    dport: int = 443,
    assured: bool = True,
    tcp_state: str = "ESTABLISHED",
    proto: int = socket.IPPROTO_TCP,
    timeout: int = 600,
    sources: int = 256,
) -> Iterator[Flow]:
    """``count`` distinct flows from ``sources`` client addresses to one server."""
    base = int(FILL_NETWORK.network_address)
    server = str(ipaddress.ip_address(base + FILL_NETWORK.num_addresses - 2))
    for index in range(count):
        client = str(ipaddress.ip_address(base + 1 + index % sources))
        sport = 1024 + index // sources
        yield Flow(
            client,
            server,
            sport,
            dport,
            proto=proto,
            tcp_state=tcp_state,
            assured=assured,
            timeout=timeout,
        )


def fill_table(
    namespace: LabNamespace, flows: Iterator[Flow] | list[Flow]
) -> tuple[int, dict[int, int]]:
    """Create the flows inside ``namespace``; (created, {errno: failures})."""
    with namespace.entered(), CtnetlinkSocket() as sock:
        return sock.create_entries(flows)
