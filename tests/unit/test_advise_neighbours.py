"""Sizing the neighbour tables' gc_thresh1/2/3, and planning their change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctguard.advise.neighbours import (
    INT_MAX,
    KERNEL_DEFAULTS,
    NeighbourEvidence,
    advise_neighbours,
    ordered,
)
from ctguard.errors import UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_snapshot
from ctguard.model.neighbours import NeighbourTable
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import SetSysctl, WriteFile
from ctguard.plan.conntrack_settings import (
    MODULES_LOAD_FILE,
    SYSCTL_FILE,
    SettingTargets,
    neighbour_write_order,
    plan_settings,
)
from tests.fixture_roots import root_gateway_neighbours, root_k618_sample, write_neighbours

V4 = "net.ipv4.neigh.default"


def arp(
    entries: int | None, thresholds: tuple[int, int, int] = KERNEL_DEFAULTS, fulls: int = 0
) -> NeighbourTable:
    return NeighbourTable("ipv4", "arp_cache", entries, fulls, 0, *thresholds, 60)


def test_a_host_with_three_neighbours_is_fine() -> None:
    item = advise_neighbours(arp(3), None, 2.0)
    assert item is not None and not item.change and item.targets == {}
    assert item.recommended == KERNEL_DEFAULTS
    assert item.why[2].startswith("fine: the demand (6) fits under gc_thresh2 512")


def test_many_neighbours_raise_all_three_in_the_kernel_proportions() -> None:
    item = advise_neighbours(arp(900), None, 2.0)
    assert item is not None and item.change
    # 900 x 2 = 1,800 -> 2,048 soft limit, twice that hard, a quarter the floor
    assert item.recommended == (512, 2048, 4096)
    assert item.targets == {
        f"{V4}.gc_thresh1": 512,
        f"{V4}.gc_thresh2": 2048,
        f"{V4}.gc_thresh3": 4096,
    }
    assert item.memory_at_thresh3 == 4096 * 528
    assert "2.1 MiB" in item.why[-1] and "128/512/1024" in item.why[2]


def test_an_overflow_counts_as_a_full_table_at_gc_thresh3() -> None:
    item = advise_neighbours(arp(40, fulls=37), None, 2.0)
    assert item is not None and item.overflowed
    assert item.peak == 1024 and "37 new neighbours refused since boot" in item.peak_basis
    assert item.recommended == (512, 2048, 4096)


def test_refusals_before_ctguards_raise_count_at_the_limit_of_that_time() -> None:
    # ctguard raised 1,024 -> 4,096 earlier this boot; no overflow line since
    raised = arp(40, (512, 2048, 4096), fulls=37)
    before = NeighbourEvidence("ipv4", overflow_lines=5, lines_since_change=0, lowest_thresh3=1024)
    item = advise_neighbours(raised, before, 2.0)
    assert item is not None and item.peak == 1024 and not item.change
    # an overflow logged at the raised limit: full at 4,096
    again = advise_neighbours(raised, replace(before, lines_since_change=2), 2.0)
    assert again is not None and again.peak == 4096 and again.recommended == (2048, 8192, 16384)


def test_unreadable_entries_give_no_advice() -> None:
    assert advise_neighbours(arp(None), None, 2.0) is None


def test_out_of_order_values_are_put_in_order() -> None:
    item = advise_neighbours(arp(3, (1024, 512, 256)), None, 2.0)
    assert item is not None and item.change and ordered(item.recommended)
    assert item.recommended == (512, 512, 1024) and "out of order" in item.warnings[0]


thresholds = st.tuples(*(st.integers(0, 1 << 20) for _ in range(3)))


@given(
    entries=st.integers(0, 1 << 24),
    current=thresholds,
    fulls=st.integers(0, 3),
    headroom=st.floats(1.0, 4.0),
)
def test_ordered_never_below_defaults_or_current_and_idempotent(
    entries: int, current: tuple[int, int, int], fulls: int, headroom: float
) -> None:
    item = advise_neighbours(arp(entries, current, fulls), None, headroom)
    assert item is not None
    new = item.recommended
    assert ordered(new) and new[2] <= INT_MAX
    if item.change:
        assert new[1] >= KERNEL_DEFAULTS[1] and new[2] >= KERNEL_DEFAULTS[2]
        assert new[1] >= current[1] and new[2] >= current[2]  # never lowered
        assert new[0] >= min(current[0], new[1])  # lowered only to keep the order
        assert new[1] >= min(int(entries * headroom), INT_MAX // 2)
    else:
        assert new == current
    # applied (and the overflow evidence then dated before the change): nothing more
    evidence = NeighbourEvidence("ipv4", fulls, 0, current[2]) if fulls else None
    after = advise_neighbours(arp(entries, new, fulls), evidence, headroom)
    assert after is not None and not after.change


@given(old=thresholds.filter(ordered), new=thresholds.filter(ordered))
def test_every_step_of_the_writes_and_of_their_undo_keeps_the_order(
    old: tuple[int, int, int], new: tuple[int, int, int]
) -> None:
    class Snap:
        neighbours = (arp(10, old),)

    values = {f"{V4}.gc_thresh{i + 1}": new[i] for i in range(3) if new[i] != old[i]}
    order = neighbour_write_order(Snap(), values)  # type: ignore[arg-type]
    assert sorted(order) == sorted(values)
    state = list(old)
    steps = []
    for name in order:
        index = int(name[-1]) - 1
        steps.append((index, state[index]))
        state[index] = values[name]
        assert ordered((state[0], state[1], state[2])), (order, state)
    assert tuple(state) == new
    for index, original in reversed(steps):  # the rollback
        state[index] = original
        assert ordered((state[0], state[1], state[2]))


def gateway(tmp_path: Path) -> object:
    return read_snapshot(KernelRoot.from_bundle(root_gateway_neighbours(tmp_path / "root")))


def test_plan_writes_the_thresholds_runtime_and_persistent(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    values = {f"{V4}.gc_thresh1": 512, f"{V4}.gc_thresh2": 2048, f"{V4}.gc_thresh3": 4096}
    plan = plan_settings(
        gateway(tmp_path), SettingTargets(neighbours=values), netns=None, etc_dir=etc
    )  # type: ignore[arg-type]
    runtime = [a for a in plan.actions if isinstance(a, SetSysctl)]
    assert [(a.name, a.value) for a in runtime] == [
        (f"{V4}.gc_thresh3", "4096"),
        (f"{V4}.gc_thresh2", "2048"),
        (f"{V4}.gc_thresh1", "512"),
    ]
    files = {a.path: a.content for a in plan.actions if isinstance(a, WriteFile)}
    # no module to load for these: only the sysctl.d file
    assert list(files) == [str(etc / SYSCTL_FILE)]
    assert f"{V4}.gc_thresh3 = 4096\n" in files[str(etc / SYSCTL_FILE)]
    assert not (etc / MODULES_LOAD_FILE).exists()


def test_neighbour_thresholds_join_earlier_conntrack_values_in_the_file(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sysctl.d").mkdir(parents=True)
    (etc / SYSCTL_FILE).write_text("net.netfilter.nf_conntrack_max = 524288\n")
    targets = SettingTargets(neighbours={f"{V4}.gc_thresh3": 2048})
    plan = plan_settings(gateway(tmp_path), targets, netns=None, etc_dir=etc)  # type: ignore[arg-type]
    (content,) = [a.content for a in plan.actions if isinstance(a, WriteFile)]
    assert "net.netfilter.nf_conntrack_max = 524288\n" in content
    assert f"{V4}.gc_thresh3 = 2048\n" in content


def test_plan_refuses_an_order_the_kernel_would_not_use_and_a_namespace(tmp_path: Path) -> None:
    snapshot = gateway(tmp_path)
    with pytest.raises(UsageError, match="gc_thresh1 <= gc_thresh2 <= gc_thresh3"):
        plan_settings(
            snapshot,  # type: ignore[arg-type]
            SettingTargets(neighbours={f"{V4}.gc_thresh2": 4096}),
            netns=None,
            etc_dir=tmp_path,
        )
    with pytest.raises(UsageError, match="global"):
        plan_settings(
            snapshot,  # type: ignore[arg-type]
            SettingTargets(neighbours={f"{V4}.gc_thresh3": 4096}),
            netns=NetnsRef(4026532999, "/run/netns/t", ("t",)),
            etc_dir=tmp_path,
        )
    with pytest.raises(UsageError, match="not a neighbour table threshold"):
        plan_settings(
            snapshot,  # type: ignore[arg-type]
            SettingTargets(neighbours={"net.ipv4.neigh.eth0.gc_thresh3": 4096}),
            netns=None,
            etc_dir=tmp_path,
        )


def test_values_already_in_force_are_left_alone(tmp_path: Path) -> None:
    root = root_k618_sample(tmp_path / "root")
    write_neighbours(root, "ipv4", 10, thresholds=(512, 2048, 4096))
    snapshot = read_snapshot(KernelRoot.from_bundle(root))
    targets = SettingTargets(neighbours={f"{V4}.gc_thresh3": 4096})
    plan = plan_settings(snapshot, targets, netns=None, etc_dir=tmp_path, persist=False)
    assert plan.empty and any("gc_thresh3=4096 (already)" in u for u in plan.unchanged)
