"""New-entry events and a budgeted table read over ctnetlink, for the guard.

:class:`NewEntryEvents` subscribes to NFNLGRP_CONNTRACK_NEW in the network
namespace it is opened in (a netlink socket belongs to the namespace it was
created in, so opening it inside ``entered_netns`` is enough).  It never
sets NETLINK_BROADCAST_ERROR: with it, a slow listener makes the kernel keep
dead entries counted against nf_conntrack_max (research: guard.md §3.3).
It does not set NETLINK_NO_ENOBUFS either: an overrun must be seen, as the
ENOBUFS error ``drain`` turns into ``lost=True``.

Events exist only for entries that were confirmed: a packet the full table
drops makes none.  :func:`count_sources` reads the table itself (a dump),
counting entries per original source and stopping after ``budget`` entries,
which is what finds a flood in a table that is already full.

Parsing takes the source address only.  The kernel writes CTA_TUPLE_ORIG
first, its CTA_TUPLE_IP first and the source first, so a fixed-offset fast
path checks those attribute headers and falls back to walking attributes.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable

from ctguard.errors import AccessDenied, CtguardError, SourceMissing
from ctguard.kernel.ctnetlink import (
    CTA_IP_V4_SRC,
    CTA_IP_V6_SRC,
    CTA_TUPLE_IP,
    CTA_TUPLE_ORIG,
    MSG_CT_NEW,
    NETLINK_NETFILTER,
    NLA_F_NESTED,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    iter_attrs,
    nfgenmsg,
)

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NFNLGRP_CONNTRACK_NEW = 1
MSG_CT_GET = MSG_CT_NEW | 1
RCVBUF = 8 * 1024 * 1024

_HDR = struct.Struct("=IHHII")
_V4_FAST = struct.pack("=HH", 8, CTA_IP_V4_SRC)
_V6_FAST = struct.pack("=HH", 20, CTA_IP_V6_SRC)


def source_of(body: bytes) -> bytes | None:
    """The packed original source address of one ctnetlink entry message body."""
    # body: nfgenmsg (4) | CTA_TUPLE_ORIG hdr (4) | CTA_TUPLE_IP hdr (4) | SRC attr
    if len(body) >= 20 and body[12:16] == _V4_FAST:
        return body[16:20]
    if len(body) >= 32 and body[12:16] == _V6_FAST:
        return body[16:32]
    for attr_type, value in iter_attrs(body[4:]):
        if attr_type != CTA_TUPLE_ORIG:
            continue
        for inner_type, inner in iter_attrs(value):
            if inner_type != CTA_TUPLE_IP:
                continue
            for ip_type, address in iter_attrs(inner):
                if ip_type in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    return address
    return None


def iter_messages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, seq, body) of every netlink message in one datagram."""
    result = []
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type, _flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < 16:
            break
        result.append((msg_type, seq, data[offset + 16 : offset + length]))
        offset += (length + 3) & ~3
    return result


def _open(groups: int) -> socket.socket:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except PermissionError as err:
        raise AccessDenied("ctnetlink needs CAP_NET_ADMIN", where="netlink") from err
    except OSError as err:
        raise SourceMissing(
            f"cannot open a netfilter netlink socket: {err.strerror}",
            where="netlink",
            hint="is nf_conntrack_netlink available (modprobe nf_conntrack_netlink)?",
        ) from err
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (root)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind((0, 0))
    if groups:
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, groups)
    return sock


class NewEntryEvents:
    """A non-blocking subscription to new-entry events of the current namespace."""

    def __init__(self) -> None:
        self._sock = _open(NFNLGRP_CONNTRACK_NEW)
        self._sock.setblocking(False)
        self.overruns = 0  # ENOBUFS episodes since opened

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def drain(self, add: Callable[[bytes], None], limit: int = 1_000_000) -> tuple[int, bool]:
        """Feed every pending event's source to ``add``; (events, lost any).

        Stops after ``limit`` events so one tick cannot run away; the rest
        stay queued for the next.
        """
        seen = 0
        lost = False
        recv = self._sock.recv
        while seen < limit:
            try:
                data = recv(1 << 20)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    lost = True
                    self.overruns += 1
                    continue
                raise CtguardError(f"reading conntrack events: {err.strerror}") from err
            for msg_type, _seq, body in iter_messages(data):
                if msg_type != MSG_CT_NEW:
                    continue
                source = source_of(body)
                if source is not None:
                    add(source)
                    seen += 1
        return seen, lost


def count_sources(add: Callable[[bytes], None], budget: int) -> tuple[int, bool]:
    """Dump the current namespace's table, feeding each entry's source to ``add``.

    Returns (entries read, complete).  Stops after ``budget`` entries by
    closing the socket: the kernel drops the rest of the dump.
    """
    sock = _open(0)
    read = 0
    try:
        header = _HDR.pack(16 + 4, MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        sock.send(header + nfgenmsg(socket.AF_UNSPEC))
        while True:
            try:
                data = sock.recv(1 << 20)
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    continue
                raise CtguardError(f"reading the conntrack table: {err.strerror}") from err
            for msg_type, _seq, body in iter_messages(data):
                if msg_type == NLMSG_DONE:
                    return read, True
                if msg_type == NLMSG_ERROR:
                    code = -int(struct.unpack_from("=i", body, 0)[0])
                    if code:
                        raise CtguardError(f"reading the conntrack table: error {code}")
                    return read, True
                if msg_type & 0xFF00 != MSG_CT_NEW & 0xFF00:
                    continue
                source = source_of(body)
                if source is not None:
                    add(source)
                    read += 1
                    if read >= budget:
                        return read, False
    finally:
        sock.close()


__all__ = ["NLA_F_NESTED", "NewEntryEvents", "count_sources", "source_of"]
