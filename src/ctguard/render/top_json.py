"""The documented JSON and CSV shapes of `ctguard top`."""

from __future__ import annotations

import csv
from typing import Any, TextIO

from ctguard.analyze.table_top import TopResult
from ctguard.render.scan_json import skipped_json


def share(count: int, entries: int) -> float:
    return round(count / entries, 6) if entries else 0.0


def group_key(values: tuple[Any, ...]) -> str:
    return ",".join("-" if v is None else str(v) for v in values)


def top_json(result: TopResult) -> dict[str, Any]:
    names = [d.name for d in result.dims]
    return {
        "source": result.source,
        "entries": result.entries,
        "matched": result.matched,
        **skipped_json(result.scan),
        "by": names,
        "filters": result.filters,
        "group_count": result.group_count,
        "approximate": result.approximate,
        "max_error": result.max_error,
        "groups": [
            {
                "key": group_key(values),
                "values": dict(zip(names, values, strict=True)),
                "count": count,
                "share": share(count, result.entries),
            }
            for values, count in result.groups
        ],
        "totals": {
            name: [{"key": key, "count": count} for key, count in items]
            for name, items in result.totals.items()
        },
    }


def write_top_csv(stream: TextIO, result: TopResult) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([d.name for d in result.dims] + ["count", "share"])
    for values, count in result.groups:
        writer.writerow(
            ["" if v is None else v for v in values] + [count, share(count, result.entries)]
        )
