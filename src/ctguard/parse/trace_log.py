"""Kernel LOG lines written by `ctguard trace` (prefix ``ctguard-trace: ``).

The LOG target prints ``KEY=value`` words (IN= OUT= SRC= DST= PROTO= SPT=
DPT= ...); only the ones that name a flow are kept.  Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ctguard.rules.model import TRACE_PREFIX

_FIELD = re.compile(r"\b(SRC|DST|PROTO|SPT|DPT|IN)=(\S*)")


@dataclass(frozen=True)
class TracedFlow:
    src: str
    dst: str
    proto: str
    dport: int | None
    iface: str


@dataclass
class TraceSummary:
    lines: int = 0
    by_src: Counter[str] = field(default_factory=Counter)
    by_dport: Counter[tuple[str, int | None]] = field(default_factory=Counter)
    by_src_dport: Counter[tuple[str, str, int | None]] = field(default_factory=Counter)
    unparsed: int = 0


def parse_trace_line(line: str) -> TracedFlow | None:
    at = line.find(TRACE_PREFIX)
    if at < 0:
        return None
    fields = dict(_FIELD.findall(line[at + len(TRACE_PREFIX) :]))
    if "SRC" not in fields or "DST" not in fields:
        return None
    try:
        src = str(ipaddress.ip_address(fields["SRC"]))
        dst = str(ipaddress.ip_address(fields["DST"]))
    except ValueError:
        return None
    dport = fields.get("DPT")
    return TracedFlow(
        src,
        dst,
        fields.get("PROTO", "?").lower(),
        int(dport) if dport and dport.isdigit() else None,
        fields.get("IN", ""),
    )


def summarize_trace(lines: Iterable[str]) -> TraceSummary:
    summary = TraceSummary()
    for line in lines:
        if TRACE_PREFIX not in line:
            continue
        flow = parse_trace_line(line)
        if flow is None:
            summary.unparsed += 1
            continue
        summary.lines += 1
        summary.by_src[flow.src] += 1
        summary.by_dport[(flow.proto, flow.dport)] += 1
        summary.by_src_dport[(flow.src, flow.proto, flow.dport)] += 1
    return summary
