"""/proc/net/stat/nf_conntrack (and legacy /proc/net/stat/ip_conntrack).

A header line of column names, then one row of hex numbers per possible CPU.
The columns changed across kernels, so they are mapped *by header name*:

- 2.6 .. 5.9: ``entries searched found new invalid ignore delete delete_list
  insert insert_failed drop early_drop icmp_error expect_new expect_create
  expect_delete search_restart``
- 5.10 renamed ``searched`` to ``clashres``; 5.15 renamed ``delete_list`` to
  ``chainlength``.
- legacy ip_conntrack: the first 16 columns (no ``search_restart``).

Names are normalised to the ones ``conntrack -S`` and netlink use
(``clash_resolve``, ``chaintoolong``), so every source speaks one vocabulary.
``entries`` repeats the per-netns count on every row and is not summed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.errors import ParseError

# procfs header name -> canonical counter name
HEADER_ALIASES = {
    "clashres": "clash_resolve",
    "chainlength": "chaintoolong",
}

NOT_SUMMED = frozenset({"entries"})


@dataclass(frozen=True)
class PerCpuCounters:
    """Counters per CPU plus their sums; ``entries`` is the netns count (or None)."""

    columns: tuple[str, ...]
    per_cpu: tuple[dict[str, int], ...]
    entries: int | None
    header_variant: str

    def totals(self) -> dict[str, int]:
        sums: dict[str, int] = {name: 0 for name in self.columns if name not in NOT_SUMMED}
        for row in self.per_cpu:
            for name, value in row.items():
                if name not in NOT_SUMMED:
                    sums[name] = sums.get(name, 0) + value
        return sums


def canonical_column(name: str) -> str:
    return HEADER_ALIASES.get(name, name)


def describe_header_variant(raw_names: list[str]) -> str:
    if "clashres" in raw_names and "chainlength" in raw_names:
        return "5.15+ (clashres, chainlength)"
    if "clashres" in raw_names:
        return "5.10-5.14 (clashres, delete_list)"
    if "searched" in raw_names and "search_restart" in raw_names:
        return "2.6-5.9 (searched, delete_list)"
    if "searched" in raw_names:
        return "legacy (no search_restart)"
    return "unknown layout"


def parse_stat_nf_conntrack(text: str, source: str = "stat/nf_conntrack") -> PerCpuCounters:
    """Parse the per-CPU statistics table; raise ParseError naming the line."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ParseError(
            "empty conntrack statistics file",
            where=source,
            hint="the file should start with a header line such as 'entries searched found ...'",
        )
    header_no, header = lines[0]
    raw_names = header.split()
    if not raw_names or raw_names[0] != "entries":
        raise ParseError(
            f"unexpected header {header.strip()[:60]!r} (expected it to start with 'entries')",
            where=source,
            line=header_no,
        )
    if len(set(raw_names)) != len(raw_names):
        raise ParseError("duplicate column names in header", where=source, line=header_no)
    columns = tuple(canonical_column(name) for name in raw_names)
    rows: list[dict[str, int]] = []
    for number, line in lines[1:]:
        fields = line.split()
        if len(fields) != len(columns):
            raise ParseError(
                f"row has {len(fields)} columns, header has {len(columns)} (truncated file?)",
                where=source,
                line=number,
            )
        try:
            values = [int(field, 16) for field in fields]
        except ValueError as err:
            raise ParseError(
                f"non-hexadecimal value in row: {line.strip()[:60]!r}", where=source, line=number
            ) from err
        rows.append(dict(zip(columns, values, strict=True)))
    entries = rows[0]["entries"] if rows else None
    return PerCpuCounters(
        columns=columns,
        per_cpu=tuple(rows),
        entries=entries,
        header_variant=describe_header_variant(raw_names),
    )
