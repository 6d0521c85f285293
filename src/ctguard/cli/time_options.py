"""--since / --until: a point in time as ISO 8601 or an age (the commands that read the log)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ctguard.errors import UsageError

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise UsageError(
            f"cannot read time {text!r}",
            hint="use ISO 8601 (2026-11-22T10:00) or an age (30m, 6h, 2d)",
        ) from err
    return value if value.tzinfo else value.astimezone(UTC)
