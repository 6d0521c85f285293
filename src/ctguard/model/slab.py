"""A kernel slab cache as /proc/slabinfo lists it (what a conntrack entry costs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SlabCache:
    name: str
    active_objs: int
    num_objs: int
    objsize: int
