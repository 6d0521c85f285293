"""Real connections inside lab namespaces, bounded in count and time.

Sockets are created while the thread is inside the namespace and stay
bound to it afterwards, so no helper processes are needed.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ctguard.lab.namespaces import LabNamespace

MAX_CONNECTIONS = 20000
DEFAULT_DEADLINE = 30.0


@dataclass
class TcpServer:
    """Accepts and holds connections open (ESTABLISHED, ASSURED entries)."""

    namespace: LabNamespace
    address: str
    port: int
    limit: int = MAX_CONNECTIONS
    accepted: list[socket.socket] = field(default_factory=list)
    _listener: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TcpServer:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with self.namespace.entered():
            listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.address, self.port))
        listener.listen(4096)
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set() and len(self.accepted) < self.limit:
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.accepted.clear()
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> TcpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_tcp_connections(
    namespace: LabNamespace, address: str, port: int, count: int, deadline: float = DEFAULT_DEADLINE
) -> list[socket.socket]:
    """Open up to ``count`` connections from ``namespace``; the caller closes them."""
    if count > MAX_CONNECTIONS:
        raise ValueError(f"at most {MAX_CONNECTIONS} connections per call")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    stop_at = time.monotonic() + deadline
    sockets: list[socket.socket] = []
    with namespace.entered():
        for _ in range(count):
            if time.monotonic() > stop_at:
                break
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(2.0)
            try:
                sock.connect((address, port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
    return sockets


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass (packets queued
    behind neighbour discovery arrive asynchronously)."""
    stop_at = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > stop_at:
            return False
        time.sleep(step)


def send_udp(namespace: LabNamespace, address: str, ports: list[int], payload: bytes = b"x") -> int:
    """One datagram to each port (each a new UNREPLIED entry when nobody answers)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sent = 0
    with namespace.entered():
        sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        for port in ports[:MAX_CONNECTIONS]:
            try:
                sock.sendto(payload, (address, port))
                sent += 1
            except OSError:
                continue
    return sent


def send_ip_packet(namespace: LabNamespace, address: str, protocol: int, payload: bytes) -> None:
    """One IPv4 packet of IP protocol ``protocol`` carrying ``payload`` (the
    kernel writes the IP header): a GRE or SCTP flow conntrack tracks."""
    with namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol)
    with sock:
        sock.sendto(payload, (address, 0))


MAX_DATAGRAMS = 1_000_000


def udp_flood(
    namespace: LabNamespace,
    sources: list[str],
    destination: str,
    dport: int,
    count: int,
    deadline: float = DEFAULT_DEADLINE,
) -> int:
    """``count`` IPv4 UDP datagrams, each a distinct flow (source address x port).

    Crafted on one raw socket (IP_HDRINCL), so a flood of hundreds of
    thousands of flows needs neither a socket nor a port binding per flow.
    Sources must belong to the sending namespace's own subnet.  The kernel
    fills in the IP checksum and id; a zero UDP checksum means "none" (IPv4).
    """
    if count > MAX_DATAGRAMS:
        raise ValueError(f"at most {MAX_DATAGRAMS} datagrams per flood")
    ports = 64000
    if count > ports * len(sources):
        raise ValueError(f"{count} flows need {count // ports + 1} source addresses")
    dst = socket.inet_aton(destination)
    packed_sources = [socket.inet_aton(address) for address in sources]
    payload = b"ctguard-lab"
    length = 20 + 8 + len(payload)

    def datagrams() -> Iterator[bytes]:
        for index in range(count):
            src = packed_sources[index // ports]
            sport = 1024 + index % ports
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0, 64, 17, 0, src, dst)
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
            yield header + udp + payload

    return _send_raw(namespace, destination, datagrams(), deadline)


def _send_raw(
    namespace: LabNamespace, destination: str, packets: Iterator[bytes], deadline: float
) -> int:
    """Send whole IPv4 packets (header included) from ``namespace`` on a raw socket,
    until they run out or ``deadline`` seconds pass; the number sent."""
    with namespace.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sent = 0
    stop_at = time.monotonic() + deadline
    with sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        for index, packet in enumerate(packets):
            if index % 1024 == 0 and time.monotonic() > stop_at:
                break
            try:
                sock.sendto(packet, (destination, 0))
                sent += 1
            except OSError:
                continue
    return sent


MAX_SYNS = 100_000


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_flood(
    namespace: LabNamespace,
    source: str,
    destination: str,
    dport: int,
    count: int,
    deadline: float = DEFAULT_DEADLINE,
) -> int:
    """``count`` IPv4 TCP SYNs from ``source`` (ports 20000 and up), one handshake each.

    Crafted on a raw socket: nothing in the sending namespace knows these
    connections, so its kernel answers the server's SYN-ACKs with RSTs unless
    the namespace drops them (then the server's entries stay SYN_RECV).
    """
    if count > MAX_SYNS or count > 65535 - 20000:
        raise ValueError(f"at most {min(MAX_SYNS, 65535 - 20000)} SYNs per flood")
    src, dst = socket.inet_aton(source), socket.inet_aton(destination)

    def syns() -> Iterator[bytes]:
        for index in range(count):
            sport = 20000 + index
            # data offset 5 words, flags SYN, window 64240
            tcp = struct.pack("!HHIIBBHHH", sport, dport, index * 7919, 0, 0x50, 0x02, 64240, 0, 0)
            pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst)
            yield header + tcp

    return _send_raw(namespace, destination, syns(), deadline)


def open_until_refused(
    namespace: LabNamespace,
    address: str,
    port: int,
    count: int,
    *,
    connect_timeout: float = 0.5,
    give_up_after: int = 5,
    deadline: float = DEFAULT_DEADLINE,
) -> tuple[list[socket.socket], int]:
    """Open up to ``count`` connections; stop after ``give_up_after`` failures.

    Returns (open sockets, failures).  For filling a table with real
    connections: once it is full, each further SYN is dropped and costs
    ``connect_timeout``, so a handful of failures is proof enough.
    """
    if count > MAX_CONNECTIONS:
        raise ValueError(f"at most {MAX_CONNECTIONS} connections per call")
    stop_at = time.monotonic() + deadline
    sockets: list[socket.socket] = []
    failures = 0
    with namespace.entered():
        for _ in range(count):
            if failures >= give_up_after or time.monotonic() > stop_at:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(connect_timeout)
            try:
                sock.connect((address, port))
            except OSError:
                sock.close()
                failures += 1
                continue
            sockets.append(sock)
    return sockets, failures
