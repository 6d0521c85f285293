"""A minimal ctnetlink client (NETLINK_NETFILTER, subsystem CTNETLINK).

Used where procfs is compiled out (statistics), and by the lab to create
entries.  Every request acts on the calling thread's network namespace and
needs CAP_NET_ADMIN.  Wire format: nlmsghdr in host order, nfgenmsg with a
big-endian res_id, CTA_* integers big-endian.

Deliberately absent: IPCTNL_MSG_CT_DELETE.  Without a tuple it flushes the
whole table, so ctguard never builds one here.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ctguard.errors import AccessDenied, CtguardError, SourceMissing

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
MSG_CT_NEW = NFNL_SUBSYS_CTNETLINK << 8 | 0
MSG_CT_GET_STATS_CPU = NFNL_SUBSYS_CTNETLINK << 8 | 4
MSG_CT_GET_STATS = NFNL_SUBSYS_CTNETLINK << 8 | 5

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_F_NESTED = 0x8000

CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO = 1, 2, 3, 4
CTA_TIMEOUT, CTA_MARK, CTA_ZONE = 7, 8, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1

IPS_SEEN_REPLY, IPS_ASSURED, IPS_CONFIRMED = 0x2, 0x4, 0x8

TCP_STATES = {
    "SYN_SENT": 1,
    "SYN_RECV": 2,
    "ESTABLISHED": 3,
    "FIN_WAIT": 4,
    "CLOSE_WAIT": 5,
    "LAST_ACK": 6,
    "TIME_WAIT": 7,
    "CLOSE": 8,
}

# CTA_STATS_* attribute numbers -> the canonical counter names.
STATS_CPU_ATTRS = {
    1: "searched",
    2: "found",
    3: "new",
    4: "invalid",
    5: "ignore",
    6: "delete",
    7: "delete_list",
    8: "insert",
    9: "insert_failed",
    10: "drop",
    11: "early_drop",
    12: "icmp_error",
    13: "search_restart",
    14: "clash_resolve",
    15: "chaintoolong",
}
CTA_STATS_GLOBAL_ENTRIES, CTA_STATS_GLOBAL_MAX_ENTRIES = 1, 2

_NLMSGHDR = struct.Struct("=IHHII")


def _align(length: int) -> int:
    return (length + 3) & ~3


def nla(attr_type: int, payload: bytes) -> bytes:
    header = struct.pack("=HH", 4 + len(payload), attr_type)
    return header + payload + b"\0" * (_align(len(payload)) - len(payload))


def nla_nested(attr_type: int, *children: bytes) -> bytes:
    return nla(attr_type | NLA_F_NESTED, b"".join(children))


def iter_attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(data):
        length, attr_type = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield attr_type & ~NLA_F_NESTED, data[offset + 4 : offset + length]
        offset += _align(length)


def nfgenmsg(family: int, res_id: int = 0) -> bytes:
    return struct.pack("=BB", family, 0) + struct.pack(">H", res_id)


@dataclass(frozen=True)
class Flow:
    """One entry to create: original tuple; the reply tuple is its mirror."""

    src: str
    dst: str
    sport: int
    dport: int
    proto: int = socket.IPPROTO_TCP
    tcp_state: str = "ESTABLISHED"
    assured: bool = True
    timeout: int = 600
    mark: int = 0


def _tuple(src: str, dst: str, sport: int, dport: int, proto: int) -> bytes:
    src_ip, dst_ip = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if src_ip.version == 4:
        ips = nla(CTA_IP_V4_SRC, src_ip.packed) + nla(CTA_IP_V4_DST, dst_ip.packed)
    else:
        ips = nla(CTA_IP_V6_SRC, src_ip.packed) + nla(CTA_IP_V6_DST, dst_ip.packed)
    ports = nla(CTA_PROTO_NUM, bytes([proto]))
    ports += nla(CTA_PROTO_SRC_PORT, struct.pack(">H", sport))
    ports += nla(CTA_PROTO_DST_PORT, struct.pack(">H", dport))
    return nla_nested(CTA_TUPLE_IP, ips) + nla_nested(CTA_TUPLE_PROTO, ports)


def encode_new_entry(flow: Flow) -> bytes:
    """The attributes of an IPCTNL_MSG_CT_NEW request for one flow."""
    status = IPS_CONFIRMED | (IPS_SEEN_REPLY | IPS_ASSURED if flow.assured else 0)
    body = nla_nested(
        CTA_TUPLE_ORIG, _tuple(flow.src, flow.dst, flow.sport, flow.dport, flow.proto)
    )
    body += nla_nested(
        CTA_TUPLE_REPLY, _tuple(flow.dst, flow.src, flow.dport, flow.sport, flow.proto)
    )
    body += nla(CTA_STATUS, struct.pack(">I", status))
    body += nla(CTA_TIMEOUT, struct.pack(">I", flow.timeout))
    if flow.mark:
        body += nla(CTA_MARK, struct.pack(">I", flow.mark))
    if flow.proto == socket.IPPROTO_TCP:
        state = nla(CTA_PROTOINFO_TCP_STATE, bytes([TCP_STATES[flow.tcp_state]]))
        body += nla_nested(CTA_PROTOINFO, nla_nested(CTA_PROTOINFO_TCP, state))
    return body


class CtnetlinkSocket:
    """A blocking netlink socket to ctnetlink in the caller's network namespace."""

    def __init__(self, rcvbuf: int = 4 * 1024 * 1024) -> None:
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except PermissionError as err:
            raise AccessDenied(
                "ctnetlink needs CAP_NET_ADMIN", where="netlink", hint="run as root"
            ) from err
        except OSError as err:
            raise SourceMissing(
                f"cannot open a netfilter netlink socket: {os.strerror(err.errno or 0)}",
                where="netlink",
                hint="is nfnetlink/nf_conntrack_netlink available in this kernel?",
            ) from err
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> CtnetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, msg_type: int, flags: int, payload: bytes) -> tuple[int, bytes]:
        self._seq += 1
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, flags, self._seq, 0)
        return self._seq, header + payload

    def _receive(self) -> Iterator[tuple[int, int, int, bytes]]:
        """Yield (type, flags, seq, payload) of every message in one datagram."""
        data = self._sock.recv(1 << 20)
        offset = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, msg_type, flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size:
                return
            yield msg_type, flags, seq, data[offset + _NLMSGHDR.size : offset + length]
            offset += _align(length)

    @staticmethod
    def _error_code(payload: bytes) -> int:
        return -int(struct.unpack_from("=i", payload, 0)[0])

    def _raise_for(self, code: int, what: str) -> None:
        if code in (errno.EPERM, errno.EACCES):
            raise AccessDenied(f"{what}: permission denied", where="netlink", hint="run as root")
        if code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EAFNOSUPPORT):
            raise SourceMissing(
                f"{what}: not supported by this kernel ({os.strerror(code)})", where="netlink"
            )
        raise CtguardError(f"{what}: {os.strerror(code)}", where="netlink")

    def dump(self, msg_type: int, payload: bytes, what: str) -> list[bytes]:
        return self._exchange(msg_type, NLM_F_REQUEST | NLM_F_DUMP, payload, what)

    def request(self, msg_type: int, payload: bytes, what: str) -> list[bytes]:
        return self._exchange(msg_type, NLM_F_REQUEST | NLM_F_ACK, payload, what)

    def _exchange(self, msg_type: int, flags: int, payload: bytes, what: str) -> list[bytes]:
        """Send one message and collect its replies, up to NLMSG_DONE (a dump's
        end) or NLMSG_ERROR (an acknowledgement: code 0, or the error raised)."""
        seq, message = self._message(msg_type, flags, payload)
        self._sock.send(message)
        replies: list[bytes] = []
        while True:
            for reply_type, _flags, reply_seq, body in self._receive():
                if reply_seq != seq:
                    continue
                if reply_type == NLMSG_DONE:
                    return replies
                if reply_type == NLMSG_ERROR:
                    code = self._error_code(body)
                    if code:
                        self._raise_for(code, what)
                    return replies
                replies.append(body)

    def stats_per_cpu(self) -> list[dict[str, int]]:
        """IPCTNL_MSG_CT_GET_STATS_CPU: one dict of counters per CPU, CPU order."""
        rows: list[tuple[int, dict[str, int]]] = []
        for body in self.dump(MSG_CT_GET_STATS_CPU, nfgenmsg(socket.AF_UNSPEC), "conntrack stats"):
            cpu = struct.unpack_from(">H", body, 2)[0]
            row: dict[str, int] = {}
            for attr_type, value in iter_attrs(body[4:]):
                name = STATS_CPU_ATTRS.get(attr_type)
                if name is not None and len(value) >= 4:
                    row[name] = struct.unpack(">I", value[:4])[0]
            rows.append((cpu, row))
        return [row for _cpu, row in sorted(rows, key=lambda item: item[0])]

    def stats_global(self) -> tuple[int, int]:
        """IPCTNL_MSG_CT_GET_STATS: (this netns' entry count, the global max)."""
        entries = max_entries = -1
        for body in self.request(MSG_CT_GET_STATS, nfgenmsg(socket.AF_UNSPEC), "conntrack count"):
            for attr_type, value in iter_attrs(body[4:]):
                if attr_type == CTA_STATS_GLOBAL_ENTRIES:
                    entries = struct.unpack(">I", value[:4])[0]
                elif attr_type == CTA_STATS_GLOBAL_MAX_ENTRIES:
                    max_entries = struct.unpack(">I", value[:4])[0]
        return entries, max_entries

    def create_entries(self, flows: Iterable[Flow], batch: int = 500) -> tuple[int, dict[int, int]]:
        """Create entries (CT_NEW, CREATE|EXCL); return (created, {errno: count}).

        Requests are sent in batches in one datagram and every ACK is read,
        so the result says exactly how many the kernel accepted and why the
        others failed (EEXIST for duplicates, ENOMEM/ENOSPC when full...).
        """
        created = 0
        failures: dict[int, int] = {}
        pending: list[Flow] = []

        def flush() -> None:
            nonlocal created
            if not pending:
                return
            wanted: set[int] = set()
            chunks = []
            for flow in pending:
                family = socket.AF_INET if ":" not in flow.src else socket.AF_INET6
                flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
                seq, message = self._message(
                    MSG_CT_NEW, flags, nfgenmsg(family) + encode_new_entry(flow)
                )
                wanted.add(seq)
                chunks.append(message)
            self._sock.send(b"".join(chunks))
            while wanted:
                for reply_type, _flags, seq, body in self._receive():
                    if reply_type != NLMSG_ERROR or seq not in wanted:
                        continue
                    wanted.discard(seq)
                    code = self._error_code(body)
                    if code == 0:
                        created += 1
                    else:
                        failures[code] = failures.get(code, 0) + 1
            pending.clear()

        for flow in flows:
            pending.append(flow)
            if len(pending) >= batch:
                flush()
        flush()
        return created, failures
