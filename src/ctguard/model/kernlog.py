"""Kernel log records as ctguard understands them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class LogKind(enum.Enum):
    TABLE_FULL = "table_full"
    EXPECT_FULL = "expectation_full"
    VMALLOC = "vmalloc_fallback"
    # "<limiter>: N callbacks suppressed" / "printk|NET: N messages suppressed."
    # (see ctguard.analyze.log_episodes for whose they are)
    RATELIMIT = "ratelimit"
    # "arp_cache: neighbor table overflow!" (and ndisc_cache; 2.6: "Neighbour
    # table overflow."): the neighbour table, not conntrack's
    NEIGH_OVERFLOW = "neighbour_overflow"
    REPEATED = "repeated"  # syslog: last message repeated N times
    # `ctguard lab` marks the namespaces it makes: "ctguard-lab: run=ID
    # netns=INUM added" when one is made, "ctguard-lab: run=ID closed" once
    # they are gone (see ctguard.lab.namespaces.mark_kernel_log)
    LAB_NETNS = "lab_netns"
    LAB_CLOSED = "lab_closed"
    # a table-full line of a namespace that a lab run marked (see above)
    LAB_TABLE_FULL = "lab_table_full"
    OTHER = "other"


@dataclass(frozen=True)
class LogRecord:
    """One kernel-log line (or a line re-joined from a hard wrap)."""

    line_no: int
    kind: LogKind
    wall: datetime | None  # wall-clock time when the format has one
    year_known: bool
    mono: float | None  # seconds since boot ([  123.456789] or /dev/kmsg usec)
    host: str | None
    message: str
    count: int = 0  # suppressed / repeated N
    netns: int | None = None  # "table full in netns <inum>" (6.16+)
    vps: str | None = None  # OpenVZ "VPS <id>"
    # the rate limiter: for a RATELIMIT line the name it prints ("net_ratelimit",
    # "__ratelimit", "printk", "NET" or the calling function); for a message
    # known to go through net_ratelimit() (table full, ...), "net_ratelimit"
    limiter: str | None = None
    # NEIGH_OVERFLOW: the table the kernel names (arp_cache, ndisc_cache), else None
    table: str | None = None
