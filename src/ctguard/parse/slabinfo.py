"""/proc/slabinfo (version 2.x): the conntrack entry caches.

Names by era: ``nf_conntrack`` (one cache, 4.7+), ``nf_conntrack_<hex>``
(one per netns, ~2.6.3x .. 4.6), ``ip_conntrack`` (2.4 .. 2.6.21).  The
expectation caches (``nf_conntrack_expect``, ``ip_conntrack_expect``) are
not entries and are excluded.
"""

from __future__ import annotations

import re

from ctguard.errors import ParseError
from ctguard.model.slab import SlabCache

_PER_NETNS = re.compile(r"^nf_conntrack_[0-9a-f]+$")


def is_conntrack_entry_cache(name: str) -> bool:
    return name in ("nf_conntrack", "ip_conntrack") or bool(_PER_NETNS.match(name))


def parse_slabinfo(text: str, source: str = "slabinfo") -> list[SlabCache]:
    """All caches in the file (callers filter with :func:`is_conntrack_entry_cache`)."""
    caches: list[SlabCache] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(("slabinfo -", "#")):
            continue
        fields = line.split()
        if len(fields) < 4:
            raise ParseError(f"short slabinfo line {line[:60]!r}", where=source, line=number)
        try:
            caches.append(SlabCache(fields[0], int(fields[1]), int(fields[2]), int(fields[3])))
        except ValueError as err:
            raise ParseError(
                f"non-numeric slabinfo line {line[:60]!r}", where=source, line=number
            ) from err
    return caches


def conntrack_caches(caches: list[SlabCache]) -> list[SlabCache]:
    return [cache for cache in caches if is_conntrack_entry_cache(cache.name)]
