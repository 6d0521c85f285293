"""/proc/meminfo: only MemTotal matters (the kernel sizes conntrack from it)."""

from __future__ import annotations

from ctguard.errors import ParseError


def parse_mem_total_bytes(text: str, source: str = "meminfo") -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("MemTotal:"):
            fields = line.split()
            try:
                value = int(fields[1])
            except (IndexError, ValueError) as err:
                raise ParseError(f"bad MemTotal line {line!r}", where=source, line=number) from err
            unit = fields[2].lower() if len(fields) > 2 else "b"
            return value * 1024 if unit == "kb" else value
    raise ParseError("no MemTotal line", where=source)
