"""/proc/net/stat/arp_cache and /proc/net/stat/ndisc_cache.

A header of column names, then one row of hex numbers per possible CPU
(net/core/neighbour.c neigh_stat_seq_show): ``entries allocs destroys
hash_grows lookups hits res_failed rcv_probes_mcast rcv_probes_ucast
periodic_gc_runs forced_gc_runs unresolved_discards table_fulls``.
``entries`` is the table's whole count, repeated on every row; the others
are per-CPU counts to be summed.  Columns are mapped by name (older kernels
lack the last ones).
"""

from __future__ import annotations

from ctguard.errors import ParseError


def parse_neigh_stat(text: str, source: str = "stat/arp_cache") -> dict[str, int]:
    """{"entries": n, counter: sum over CPUs, ...}; ParseError naming the line."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines or lines[0][1].split()[0] != "entries":
        raise ParseError(
            "not a neighbour table statistics file (no 'entries ...' header)",
            where=source,
            hint="the file should start with 'entries  allocs  destroys ...'",
        )
    names = lines[0][1].split()
    totals: dict[str, int] = {}
    for number, line in lines[1:]:
        fields = line.split()
        if len(fields) != len(names):
            raise ParseError(
                f"line {number} has {len(fields)} columns, the header {len(names)}",
                where=f"{source}:{number}",
            )
        try:
            values = [int(field, 16) for field in fields]
        except ValueError as err:
            raise ParseError(
                f"line {number} is not hex numbers", where=f"{source}:{number}"
            ) from err
        for name, value in zip(names, values, strict=True):
            if name == "entries":
                totals[name] = value
            else:
                totals[name] = totals.get(name, 0) + value
    return totals
