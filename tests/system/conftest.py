"""Real-kernel fixtures: root, network namespaces, nft, conntrack tools.

Tests here are marked ``kernel`` and skip with the reason when this machine
cannot run them (not root, no netns, a tool missing).  Every namespace is
removed when the test ends, whatever happened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctguard.lab.global_max import current_buckets, current_max, global_change_refusal
from ctguard.lab.namespaces import Lab, clean_leftovers

REQUIRED_TOOLS = ("ip", "nft", "conntrack")
MAX_PATH = Path("/proc/sys/net/netfilter/nf_conntrack_max")
HASH_PATH = Path("/sys/module/nf_conntrack/parameters/hashsize")


def kernel_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, netlink)"
    if not Path("/proc/self/ns/net").exists():
        return "kernel without network namespaces"
    if not Path("/proc/sys/net/netfilter/nf_conntrack_max").exists():
        return "nf_conntrack is not loaded"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (run scripts/test, which installs them)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = kernel_skip_reason()
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.kernel)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Namespaces that stand for an operator's own (a container's, a
    tenant's): unlike a `ctguard lab` rehearsal's, not marked in the kernel
    log, so their 'table full' lines count as the host's."""
    clean_leftovers()
    with Lab(kmsg=None) as created:
        yield created


def lab_namespaces() -> list[str]:
    netns = Path("/run/netns")
    if not netns.is_dir():
        return []
    return sorted(p.name for p in netns.iterdir() if p.name.startswith("ctg-"))


@pytest.fixture
def host_globals() -> Iterator[tuple[int, int]]:
    """For tests that lower the global nf_conntrack_max (and hash size) through
    the lab's journaled executor: skips unless that is allowed now (the host's
    own table empty), then checks they are back and no lab namespace is left,
    and writes the originals back itself as a last resort.  Request it before
    ``lab`` so it is torn down after the lab's own restore."""
    refusal = global_change_refusal()
    if refusal:
        pytest.skip(f"this test lowers the global nf_conntrack_max, but {refusal}")
    clean_leftovers()
    before = (current_max(), current_buckets())
    yield before
    try:
        assert (current_max(), current_buckets()) == before, "global values not restored"
        assert lab_namespaces() == [], "lab namespaces left behind"
    finally:
        clean_leftovers()
        if current_buckets() != before[1]:
            HASH_PATH.write_text(str(before[1]))
        if current_max() != before[0]:
            MAX_PATH.write_text(str(before[0]))
