"""Output of ``sysctl -a`` (or ``sysctl -a | grep conntrack``), pasted or captured.

Lines look like ``net.netfilter.nf_conntrack_max = 262144``.  Pasted
transcripts also hold shell prompts, other commands' output and blank
lines: those are skipped and counted, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^\s*([A-Za-z0-9_][A-Za-z0-9_.\-/]*)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class SysctlDump:
    values: dict[str, str]
    skipped_lines: int


def parse_sysctl_dump(text: str) -> SysctlDump:
    values: dict[str, str] = {}
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _LINE.match(line)
        # A key has at least one dot (net.netfilter.x); prompts like
        # "[root@host ~]# sysctl net.x=1" start with '[' or contain '#'.
        if match is None or "." not in match.group(1):
            skipped += 1
            continue
        values[match.group(1).replace("/", ".")] = match.group(2)
    return SysctlDump(values=values, skipped_lines=skipped)
