"""Realistic conntrack dumps for benchmarks and tests.

``render_entry`` prints an :class:`Entry` the way each source does (procfs,
legacy ip_conntrack, ``conntrack -L``, ``-o extended``, ``-E`` and ``-E -o
timestamp``);
``generate_dump`` writes N entries with a protocol/state mix, IPv4 and IPv6,
and Zipf-distributed sources (a few heavy talkers, a long tail).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator
from functools import partial
from typing import Any, TextIO

from ctguard.parse.conntrack_table import Entry

FORMATS = ("procfs", "legacy", "conntrack", "extended", "events", "events-timestamp")
EVENT_FORMATS = ("events", "events-timestamp")
L3 = {"ipv4": "ipv4     2", "ipv6": "ipv6     10"}


def _addr(text: str, fmt: str) -> str:
    if ":" in text and fmt in ("procfs", "legacy"):
        return ipaddress.IPv6Address(text).exploded
    if ":" in text:
        return ipaddress.IPv6Address(text).compressed
    return text


def _tuple(entry: Entry, reply: bool, fmt: str) -> str:
    src, dst = (entry.reply_src, entry.reply_dst) if reply else (entry.src, entry.dst)
    parts = [f"src={_addr(src, fmt)}", f"dst={_addr(dst, fmt)}"]
    if entry.sport is not None and entry.dport is not None:
        sport, dport = (
            (entry.reply_sport, entry.reply_dport) if reply else (entry.sport, entry.dport)
        )
        parts.append(f"sport={sport} dport={dport}")
    elif entry.proto == "gre":  # PPTP's call ids, as the keymap gives them
        parts.append("srckey=0x0 dstkey=0x1a" if not reply else "srckey=0x1a dstkey=0x0")
    elif entry.icmp_type is not None:
        icmp_type = entry.icmp_type
        if reply and entry.proto in ("icmp", "icmpv6"):
            icmp_type = {8: 0, 128: 129}.get(icmp_type, icmp_type)
        parts.append(f"type={icmp_type} code={entry.icmp_code} id={entry.icmp_id}")
    packets, nbytes = (
        (entry.reply_packets, entry.reply_bytes) if reply else (entry.packets, entry.bytes)
    )
    if packets is not None:
        parts.append(f"packets={packets} bytes={nbytes}")
    return " ".join(parts)


def render_entry(entry: Entry, fmt: str) -> str:
    """One line in ``fmt`` (see FORMATS)."""
    head: list[str] = []
    stamp = ""
    if fmt == "events-timestamp":  # conntrack -E -o timestamp: "[sec.usec]\t"
        stamp = f"[{1_700_000_000 + (entry.sport or 0)}.{(entry.dport or 0) % 1_000_000:06d}]\t"
    if fmt in EVENT_FORMATS:  # right-aligned in 9 columns, as conntrack prints it
        head.append(f"{'[' + (entry.event or 'NEW') + ']':>9}")
    if fmt in ("procfs", "extended"):
        head.append(L3[entry.family])
    head.append(f"{entry.proto:<8} {entry.protonum}")
    if entry.timeout is not None:
        head.append(str(entry.timeout))
    if entry.state:
        head.append(entry.state)
    elif entry.proto == "gre" and fmt in ("procfs", "legacy"):  # where a state would be
        head.append("timeout=30, stream_timeout=180")
    head.append(_tuple(entry, False, fmt))
    if entry.unreplied:
        head.append("[UNREPLIED]")
    head.append(_tuple(entry, True, fmt))
    if entry.status:
        head.append(f"[{entry.status}]")
    if fmt not in EVENT_FORMATS and fmt != "legacy":
        head.append(f"mark={entry.mark or 0}")
    if fmt == "procfs":
        head.append(f"zone={entry.zone or 0}")
    elif entry.zone:
        head.append(f"zone={entry.zone}")
    if entry.delta_time is not None and fmt != "legacy":
        head.append(f"delta-time={entry.delta_time}")
    if fmt not in EVENT_FORMATS:
        head.append(f"use={entry.use or 1}")
    return stamp + " ".join(head)


TCP_STATES = (
    ("ESTABLISHED", 40, "ASSURED"),
    ("TIME_WAIT", 25, "ASSURED"),
    ("SYN_SENT", 6, None),
    ("SYN_RECV", 4, None),
    ("CLOSE_WAIT", 5, "ASSURED"),
    ("FIN_WAIT", 5, "ASSURED"),
    ("LAST_ACK", 2, "ASSURED"),
    ("CLOSE", 2, None),
    ("SYN_SENT2", 1, None),  # simultaneous open: both sides sent a SYN
)
SERVICE_PORTS = (443, 443, 443, 80, 80, 22, 3306, 5432, 6379, 8080)


def _zipf_picker(rng: random.Random, size: int, s: float = 1.1) -> Iterator[int]:
    weights = [1.0 / (rank**s) for rank in range(1, size + 1)]
    while True:
        yield from rng.choices(range(size), weights=weights, k=4096)


def flow_entry(src: str, dst: str, family: str, **fields: Any) -> Entry:
    """An entry from ``src`` to ``dst`` answered without NAT, mark and zone 0."""
    return Entry(
        src=src,
        dst=dst,
        reply_src=dst,
        reply_dst=src,
        family=family,
        mark=0,
        zone=0,
        use=2,
        **fields,
    )


def generate_entries(count: int, seed: int = 1, v6_share: float = 0.15) -> Iterator[Entry]:
    rng = random.Random(seed)
    v4 = [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(1, 40001)]
    v6 = [f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::{i % 97 + 1:x}" for i in range(1, 8001)]
    pick4, pick6 = _zipf_picker(rng, len(v4)), _zipf_picker(rng, len(v6))
    states = [s for s in TCP_STATES for _ in range(s[1])]
    for _ in range(count):
        family = "ipv6" if rng.random() < v6_share else "ipv4"
        src = v6[next(pick6)] if family == "ipv6" else v4[next(pick4)]
        dst = "2001:db8::80" if family == "ipv6" else "192.0.2.80"
        flow = partial(flow_entry, src, dst, family)
        sport = rng.randint(1024, 65535)
        roll = rng.random()
        if roll < 0.72:
            state, _, status = rng.choice(states)
            dport = rng.choice(SERVICE_PORTS)
            timeout = (
                432000 - rng.randint(0, 7200) if state == "ESTABLISHED" else rng.randint(1, 120)
            )
            yield flow(
                proto="tcp",
                protonum=6,
                timeout=timeout,
                state=state,
                sport=sport,
                dport=dport,
                reply_sport=dport,
                reply_dport=sport,
                unreplied=state == "SYN_SENT",
                status=status,
                packets=rng.randint(1, 50),
                bytes=rng.randint(60, 90000),
                reply_packets=rng.randint(0, 50),
                reply_bytes=rng.randint(0, 90000),
            )
        elif roll < 0.96:
            dport = rng.choice((53, 53, 53, 123, 443))
            replied = rng.random() < 0.6
            yield flow(
                proto="udp",
                protonum=17,
                timeout=rng.randint(1, 120),
                sport=sport,
                dport=dport,
                reply_sport=dport,
                reply_dport=sport,
                unreplied=not replied,
                status="ASSURED" if replied and rng.random() < 0.3 else None,
                packets=1,
                bytes=70,
                reply_packets=int(replied),
                reply_bytes=120 * int(replied),
            )
        elif roll < 0.995 or family == "ipv6":
            proto, num, echo = ("icmpv6", 58, 128) if family == "ipv6" else ("icmp", 1, 8)
            yield flow(
                proto=proto,
                protonum=num,
                timeout=29,
                icmp_type=echo,
                icmp_code=0,
                icmp_id=sport,
                packets=1,
                bytes=84,
                reply_packets=1,
                reply_bytes=84,
            )
        else:  # a PPTP tunnel's GRE flow
            yield flow(
                proto="gre",
                protonum=47,
                timeout=rng.randint(1, 180),
                status="ASSURED",
                packets=rng.randint(1, 500),
                bytes=rng.randint(60, 900000),
                reply_packets=rng.randint(1, 500),
                reply_bytes=rng.randint(60, 900000),
            )


def generate_dump(out: TextIO, count: int, fmt: str = "procfs", seed: int = 1) -> None:
    for entry in generate_entries(count, seed):
        out.write(render_entry(entry, fmt))
        out.write("\n")
