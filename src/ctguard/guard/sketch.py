"""Counting the heaviest keys of a stream in bounded memory (Misra-Gries, batched).

A flood from spoofed addresses brings a new key with almost every event, so
an exact counter per source grows without limit.  :class:`HeavyHitters`
keeps at most ``2 * capacity + 1`` keys whatever the number of distinct
keys.  When it reaches that size it subtracts the ``capacity + 1``-th
largest count from every key and drops those left at zero or below.

Guarantees, for a stream of ``total`` events:

- a key's count is never over its true count (estimates are lower bounds,
  so a threshold on them never blocks a source that did not send that much);
- it is under the true count by at most ``error`` (the sum of the
  subtractions), and ``error <= total / (capacity + 1)``;
- so every key with more than ``total / (capacity + 1)`` events is kept.

Each subtraction removes at least ``capacity + 1`` times its amount from the
stream's total, which is where the bound comes from.  The cost per event is
one dict update; a shrink (a sort of ``2 * capacity`` values) happens at most
once per ``capacity`` new keys, so it is constant per event on average.
"""

from __future__ import annotations

from collections.abc import Hashable


class HeavyHitters:
    __slots__ = ("capacity", "counts", "error", "total")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.counts: dict[Hashable, int] = {}
        self.total = 0
        self.error = 0

    def add(self, key: Hashable, count: int = 1) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + count
        self.total += count
        if len(counts) > 2 * self.capacity:
            self._shrink()

    def _shrink(self) -> None:
        values = sorted(self.counts.values(), reverse=True)
        cut = values[self.capacity]  # the (capacity + 1)-th largest
        self.error += cut
        self.counts = {k: v - cut for k, v in self.counts.items() if v > cut}

    def top(self, n: int) -> list[tuple[Hashable, int]]:
        """The ``n`` largest (key, lower-bound count) pairs, largest first."""
        return sorted(self.counts.items(), key=lambda item: item[1], reverse=True)[:n]

    def at_least(self, threshold: int) -> list[tuple[Hashable, int]]:
        """Every key whose lower-bound count reaches ``threshold``."""
        return [(k, v) for k, v in self.counts.items() if v >= threshold]

    def __len__(self) -> int:
        return len(self.counts)
