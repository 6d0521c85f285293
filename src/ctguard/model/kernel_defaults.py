"""The kernel's own default sizing and timeouts, by era.

Sources: nf_conntrack_core.c ``nf_conntrack_init_start`` across versions
(commit d532bcd0b269 in 5.15 changed the rule), nf_conntrack_proto_*.c
timeout tables.  These are the numbers a fresh boot would give on a host
with this much RAM; they are *defaults*, not recommendations.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
PAGE = 4096
# The hash is allocated in whole pages of 8-byte bucket heads.
BUCKETS_PER_PAGE = PAGE // 8
HASH_BYTES_PER_BUCKET = 8


@dataclass(frozen=True)
class DefaultSizing:
    era: str
    buckets: int
    max: int
    formula: str


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def default_sizing_modern(mem_total: int, bits: int = 64) -> DefaultSizing:
    """Linux >= 5.15: max = buckets (1:1), buckets from RAM with caps."""
    by_ram = mem_total // 16384 // (bits // 8)
    if bits >= 64 and mem_total > 4 * GIB:
        buckets, why = 262144, "MemTotal > 4 GiB on 64-bit: fixed 262144"
    elif mem_total > GIB:
        buckets, why = 65536, "1 GiB < MemTotal <= 4 GiB: fixed 65536"
    else:
        buckets = max(by_ram, 1024)
        why = f"MemTotal/16384/{bits // 8} = {by_ram}, floor 1024"
    buckets = _round_up(buckets, BUCKETS_PER_PAGE)
    return DefaultSizing("Linux >= 5.15", buckets, buckets, f"buckets: {why}; max = buckets")


def default_sizing_pre_5_15(mem_total: int, bits: int = 64) -> DefaultSizing:
    """Linux ~3.17 .. 5.14: max = 4 x buckets."""
    by_ram = mem_total // 16384 // (bits // 8)
    if mem_total > 4 * GIB:
        buckets, why = 65536, "MemTotal > 4 GiB: fixed 65536"
    elif mem_total > GIB:
        buckets, why = 16384, "MemTotal > 1 GiB: fixed 16384"
    else:
        buckets = max(by_ram, 32)
        why = f"MemTotal/16384/{bits // 8} = {by_ram}, floor 32"
    return DefaultSizing(
        "Linux 3.17 - 5.14", buckets, 4 * buckets, f"buckets: {why}; max = 4 x buckets"
    )


def ratio_meaning(max_entries: int, buckets: int) -> str:
    """What the max:buckets ratio tells about how the table was sized."""
    if buckets <= 0:
        return "unknown (no buckets)"
    ratio = max_entries / buckets
    if max_entries == buckets:
        return "1:1, the Linux >= 5.15 default rule (average chain stays <= 2 at max)"
    if max_entries == 4 * buckets:
        return "4:1, the pre-5.15 default rule (or a max raised to match)"
    if max_entries == 8 * buckets:
        return "8:1, hashsize was set explicitly at module load (max = 8 x hashsize)"
    if ratio > 8:
        return f"{ratio:.1f}:1, max raised without resizing the hash: long chains at max"
    return f"{ratio:.2f}:1, max and buckets were set separately"


@dataclass(frozen=True)
class TimeoutDefault:
    current: int
    older: tuple[int, ...] = ()


# Keys are the sysctl names without the nf_conntrack_/ip_conntrack_ prefix.
TIMEOUT_DEFAULTS: dict[str, TimeoutDefault] = {
    "tcp_timeout_syn_sent": TimeoutDefault(120),
    "tcp_timeout_syn_recv": TimeoutDefault(60),
    "tcp_timeout_established": TimeoutDefault(432000),
    "tcp_timeout_fin_wait": TimeoutDefault(120),
    "tcp_timeout_close_wait": TimeoutDefault(60),
    "tcp_timeout_last_ack": TimeoutDefault(30),
    "tcp_timeout_time_wait": TimeoutDefault(120),
    "tcp_timeout_close": TimeoutDefault(10),
    "tcp_timeout_max_retrans": TimeoutDefault(300),
    "tcp_timeout_unacknowledged": TimeoutDefault(300),
    "udp_timeout": TimeoutDefault(30),
    "udp_timeout_stream": TimeoutDefault(120, older=(180,)),
    "icmp_timeout": TimeoutDefault(30),
    "icmpv6_timeout": TimeoutDefault(30),
    "generic_timeout": TimeoutDefault(600),
    "gre_timeout": TimeoutDefault(30),
    "gre_timeout_stream": TimeoutDefault(180),
    "sctp_timeout_closed": TimeoutDefault(10),
    "sctp_timeout_cookie_wait": TimeoutDefault(3),
    "sctp_timeout_cookie_echoed": TimeoutDefault(3),
    "sctp_timeout_established": TimeoutDefault(210, older=(432000,)),
    # The old 300 ms defaults are shown as 0 s by the integer sysctl.
    "sctp_timeout_shutdown_sent": TimeoutDefault(3, older=(0,)),
    "sctp_timeout_shutdown_recd": TimeoutDefault(3, older=(0,)),
    "sctp_timeout_shutdown_ack_sent": TimeoutDefault(3),
    "sctp_timeout_heartbeat_sent": TimeoutDefault(30),
    "sctp_timeout_heartbeat_acked": TimeoutDefault(210),
    "dccp_timeout_request": TimeoutDefault(240),
    "dccp_timeout_respond": TimeoutDefault(480),
    "dccp_timeout_partopen": TimeoutDefault(480),
    "dccp_timeout_open": TimeoutDefault(43200),
    "dccp_timeout_closereq": TimeoutDefault(64),
    "dccp_timeout_closing": TimeoutDefault(64),
    "dccp_timeout_timewait": TimeoutDefault(240),
}

# Legacy ip_conntrack (until 4.8) spelled a few keys differently.
LEGACY_TIMEOUT_DEFAULTS: dict[str, TimeoutDefault] = {
    "udp_timeout_stream": TimeoutDefault(180),
    "generic_timeout": TimeoutDefault(600),
}


def timeout_default(key: str, *, legacy: bool = False) -> TimeoutDefault | None:
    if legacy and key in LEGACY_TIMEOUT_DEFAULTS:
        return LEGACY_TIMEOUT_DEFAULTS[key]
    return TIMEOUT_DEFAULTS.get(key)


def humanize_seconds(seconds: int) -> str:
    """432000 -> '5d', 3600 -> '1h', 90 -> '1m30s' (timeouts are in SECONDS)."""
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)
