"""Kernel log lines in every format operators paste or ship.

Timestamp prefixes recognised (then the message is classified on its own):

- /dev/kmsg records ``pri,seq,usec,flags;message``
- dmesg ``[  123.456789] msg`` and ``dmesg -T`` ``[Sun Nov 22 00:35:52 2026] msg``
- classic syslog / journal short / short-precise ``Jun  8 10:48:13[.123] host kernel: msg``
  (host optional), RFC 3339 syslog and journal short-iso
  ``2026-11-22T00:35:52.1+00:00 host kernel: msg``
- OpenWrt logread ``Sun Nov 22 00:35:52 2026 kern.warn kernel: msg``
- no timestamp at all.

A kernel timestamp inside a syslog line (``kernel: [1694413.6] ...``) is
kept as well.  Messages from other programs are OTHER, whatever they say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta

from ctguard.model.kernlog import LogKind, LogRecord

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"

_KMSG = re.compile(r"^(\d+),(\d+),(\d+),[^;]*;(.*)$")
_DMESG = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")
_DMESG_T = re.compile(rf"^\[(?:{_DAYS}) ({_MONTHS}) +(\d+) (\d\d:\d\d:\d\d) (\d{{4}})\]\s?(.*)$")
_LOGREAD = re.compile(
    rf"^(?:{_DAYS}) ({_MONTHS}) +(\d+) (\d\d:\d\d:\d\d) (\d{{4}}) (\S+\.\S+) (.*)$"
)
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) (.*)$")
_SYSLOG = re.compile(rf"^({_MONTHS}) +(\d+) (\d\d:\d\d:\d\d)(?:\.(\d+))? (.*)$")
# After a syslog/journal timestamp: "[host ]kernel: msg" or "[host ]prog[pid]: msg".
_KERNEL_TAG = re.compile(r"^(?:(\S+) )?kernel: ?(.*)$")
_OTHER_TAG = re.compile(r"^(?:\S+ )?[\w.@/-]+(?:\[\d+\])?: ")
_INNER_MONO = re.compile(r"^\[\s*(\d+\.\d+)\]\s?(.*)$")

_TABLE_FULL = re.compile(
    r"\b(?:ip|nf)_conntrack: (?:nf_conntrack: )?(?:VPS (\S+?):? )?table full"
    r"(?: in netns (\d+))?"
)
_EXPECT_FULL = re.compile(r"\b(?:ip|nf)_conntrack: (?:nf_conntrack: )?expectation table full")
# net/core/neighbour.c neigh_alloc(): "%s: neighbor table overflow!" with the
# table id, "neighbour: " before it where the file sets pr_fmt; 2.6
# route.c/ndisc.c: "Neighbour table overflow." (no table named).
_NEIGH_OVERFLOW = re.compile(
    r"^(?:neighbour: )?(?:([\w-]+): )?neighbou?r table overflow", re.IGNORECASE
)
_VMALLOC = re.compile(r"\bnf_conntrack: falling back to vmalloc")
# The summary lines every kernel era printed (lib/ratelimit.c since 2.6.26:
# "<name>: N callbacks suppressed", the name being "__ratelimit" until 2.6.34
# and the caller's function since, "net_ratelimit" for the network limiter;
# 2.6 __printk_ratelimit(): "printk: N messages suppressed."; 2.4/early 2.6
# net_ratelimit(): "NET: N messages suppressed.").
_RATELIMIT = re.compile(
    r"^(?:([A-Za-z_]\w*): (\d+) callbacks suppressed|(printk|NET): (\d+) messages suppressed)"
    r"\.?$"
)
# Messages printed only when net_ratelimit() lets them through, besides the
# conntrack ones: TCP's orphan and memory warnings.
_NET_RATELIMITED = re.compile(
    r"^TCP: (?:too many orphaned sockets|out of memory -- consider tuning tcp_mem)"
    r"|^Out of socket memory$"
)
NET_RATELIMIT = "net_ratelimit"
_REPEATED = re.compile(r"last message repeated (\d+) times?")
_LAB_MARK = re.compile(r"\bctguard-lab: run=([0-9a-f]+) (?:netns=(\d+) added|closed)$")
_PRIORITY = re.compile(r"^<\d+>")

_MONTH_NUMBER = {name: number for number, name in enumerate(_MONTHS.split("|"), start=1)}


def lab_marker(message: str) -> tuple[str, int | None] | None:
    """(run id, netns inum or None for "closed") of a `ctguard lab` marker."""
    match = _LAB_MARK.search(message)
    if match is None:
        return None
    return match.group(1), int(match.group(2)) if match.group(2) else None


def classify_message(message: str) -> tuple[LogKind, int, int | None, str | None]:
    """(kind, count, netns inum, vps id) of a bare kernel message."""
    match = _TABLE_FULL.search(message)
    if match:
        return (
            LogKind.TABLE_FULL,
            0,
            int(match.group(2)) if match.group(2) else None,
            match.group(1),
        )
    match = _RATELIMIT.match(message)
    if match:
        return LogKind.RATELIMIT, int(match.group(2) or match.group(4)), None, None
    if _NEIGH_OVERFLOW.match(message):
        return LogKind.NEIGH_OVERFLOW, 0, None, None
    if _EXPECT_FULL.search(message):
        return LogKind.EXPECT_FULL, 0, None, None
    if _VMALLOC.search(message):
        return LogKind.VMALLOC, 0, None, None
    match = _REPEATED.search(message)
    if match:
        return LogKind.REPEATED, int(match.group(1)), None, None
    return _lab_kind(message)


def message_limiter(kind: LogKind, message: str) -> str | None:
    """The rate limiter a message is known to belong to (see LogRecord.limiter)."""
    if kind is LogKind.RATELIMIT:
        match = _RATELIMIT.match(message)
        return (match.group(1) or match.group(3)) if match else None
    if kind in (LogKind.TABLE_FULL, LogKind.EXPECT_FULL, LogKind.NEIGH_OVERFLOW):
        return NET_RATELIMIT  # net_warn_ratelimited() / if (net_ratelimit()) printk()
    if kind is LogKind.OTHER and _NET_RATELIMITED.match(message):
        return NET_RATELIMIT
    return None


def neighbour_table(message: str) -> str | None:
    """The table an overflow line names (arp_cache, ndisc_cache), or None."""
    match = _NEIGH_OVERFLOW.match(message)
    return match.group(1) if match else None


def _lab_kind(message: str) -> tuple[LogKind, int, int | None, str | None]:
    """A lab marker's kind and netns, or OTHER."""
    marker = lab_marker(message)
    if marker is None:
        return LogKind.OTHER, 0, None, None
    _run, inode = marker
    return (LogKind.LAB_CLOSED if inode is None else LogKind.LAB_NETNS), 0, inode, None


def _syslog_time(month: str, day: str, clock: str, fraction: str | None, year: int) -> datetime:
    hour, minute, second = (int(part) for part in clock.split(":"))
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(year, _MONTH_NUMBER[month], int(day), hour, minute, second, micro)


def _iso_time(text: str) -> datetime | None:
    text = text.replace(",", ".").replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_line(line: str, line_no: int, *, year: int) -> LogRecord:
    """Parse one line; never raises (unknown shapes become OTHER / untimed)."""
    text = _PRIORITY.sub("", line.rstrip("\r\n").rstrip())
    wall: datetime | None = None
    year_known = True
    mono: float | None = None
    host: str | None = None
    rest = text
    kernel = True

    if match := _KMSG.match(text):
        mono, rest = int(match.group(3)) / 1e6, match.group(4)
    elif match := _DMESG.match(text):
        mono, rest = float(match.group(1)), match.group(2)
    elif match := _DMESG_T.match(text):
        month, day, clock, yr, rest = match.groups()
        wall = _syslog_time(month, day, clock, None, int(yr))
    elif match := _LOGREAD.match(text):
        month, day, clock, yr, facility, rest = match.groups()
        wall = _syslog_time(month, day, clock, None, int(yr))
        kernel = facility.startswith("kern.")
        rest = rest.removeprefix("kernel: ")
    elif match := _ISO.match(text):
        wall, rest = _iso_time(match.group(1)), match.group(2)
        host, rest, kernel = _split_tag(rest)
    elif match := _SYSLOG.match(text):
        month, day, clock, fraction, rest = match.groups()
        wall = _syslog_time(month, day, clock, fraction, year)
        year_known = False
        host, rest, kernel = _split_tag(rest)

    if kernel and (inner := _INNER_MONO.match(rest)):
        mono, rest = float(inner.group(1)), inner.group(2)
    if kernel:
        kind, count, netns, vps = classify_message(rest)
    else:  # a lab marker as the journal shows it ("host ctguard-lab: run=...")
        kind, count, netns, vps = _lab_kind(rest)
        if match := _REPEATED.search(rest):  # syslogd's own "last message repeated"
            kind, count = LogKind.REPEATED, int(match.group(1))
    limiter = message_limiter(kind, rest) if kernel else None
    table = neighbour_table(rest) if kind is LogKind.NEIGH_OVERFLOW else None
    return LogRecord(
        line_no, kind, wall, year_known, mono, host, rest, count, netns, vps, limiter, table
    )


def _split_tag(rest: str) -> tuple[str | None, str, bool]:
    """(host, message, is_kernel) after a syslog/journal timestamp."""
    if match := _KERNEL_TAG.match(rest):
        return match.group(1), match.group(2), True
    if rest.startswith("-- ") or _OTHER_TAG.match(rest):
        return None, rest, False
    return None, rest, True


def has_timestamp(record: LogRecord) -> bool:
    return record.wall is not None or record.mono is not None


def iter_records(lines: Iterable[str], *, year: int | None = None) -> Iterator[LogRecord]:
    """Parse lines, re-joining table-full messages that a paste hard-wrapped.

    A line without any timestamp that completes the previous line's message
    into a recognised one (``...nf_conntrack: table`` + ``full, dropping
    packet``) is merged into it; both ends of an excerpt may be cut.
    """
    year = year or datetime.now().year
    pending: LogRecord | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = parse_line(line, number, year=year)
        if pending is not None and not has_timestamp(record) and pending.kind == LogKind.OTHER:
            for joiner in (" ", ""):
                joined = pending.message.rstrip() + joiner + record.message.lstrip()
                kind, count, netns, vps = classify_message(joined)
                if kind is not LogKind.OTHER:
                    record = replace(
                        pending,
                        kind=kind,
                        message=joined,
                        count=count,
                        netns=netns,
                        vps=vps,
                        limiter=message_limiter(kind, joined),
                        table=neighbour_table(joined) if kind is LogKind.NEIGH_OVERFLOW else None,
                    )
                    pending = None
                    break
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending


def fix_syslog_years(records: list[LogRecord], reference: datetime) -> list[LogRecord]:
    """Syslog lines carry no year: place them so none lies in the future of
    ``reference`` (the capture or current time), walking back across New Year."""
    fixed: list[LogRecord] = []
    reference = reference.replace(tzinfo=None)  # syslog times are naive (the host's local time)
    for record in records:
        if record.wall is not None and not record.year_known:
            wall = record.wall.replace(year=reference.year)
            if wall - reference > timedelta(days=1):
                wall = wall.replace(year=reference.year - 1)
            record = replace(record, wall=wall)
        fixed.append(record)
    return fixed


def parse_log(lines: Iterable[str], reference: datetime) -> list[LogRecord]:
    """All records of a log, syslog years placed relative to ``reference``."""
    return fix_syslog_years(list(iter_records(lines, year=reference.year)), reference)
