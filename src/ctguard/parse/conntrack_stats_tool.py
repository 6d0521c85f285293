"""Output of ``conntrack -S`` (conntrack-tools).

One line per CPU: ``cpu=N<spaces><TAB>name=value name=value ... `` in
decimal.  Which fields appear depends on the kernel (``ignore``,
``clash_resolve``, ``chaintoolong`` come and go).  ``error`` is the netlink
name of procfs's ``icmp_error``.
"""

from __future__ import annotations

import re

from ctguard.errors import ParseError
from ctguard.parse.stat_nf_conntrack import PerCpuCounters

TOOL_ALIASES = {"error": "icmp_error"}
_PAIR = re.compile(r"([a-z_]+)=(\d+)")


def parse_conntrack_stats_tool(text: str, source: str = "conntrack -S") -> PerCpuCounters:
    """Parse ``conntrack -S``; blank lines are ignored, anything else is an error."""
    rows: list[dict[str, int]] = []
    columns: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("cpu="):
            raise ParseError(
                f"expected a 'cpu=N ...' line, got {stripped[:60]!r}", where=source, line=number
            )
        pairs = _PAIR.findall(stripped)
        row: dict[str, int] = {}
        for name, value in pairs:
            if name == "cpu":
                continue
            name = TOOL_ALIASES.get(name, name)
            row[name] = int(value)
            if name not in columns:
                columns.append(name)
        if not row:
            raise ParseError("cpu line without counters", where=source, line=number)
        rows.append(row)
    if not rows:
        raise ParseError(
            "no 'cpu=N' lines found", where=source, hint="is this `conntrack -S` output?"
        )
    return PerCpuCounters(
        columns=tuple(columns), per_cpu=tuple(rows), entries=None, header_variant="conntrack -S"
    )
