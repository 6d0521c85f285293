"""Advice after apply and rollback: each 'table full' line counts at the max in
force when it was logged, so cycles that add no traffic change nothing."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctguard.advise.advice import Evidence, build_advice
from ctguard.effects.journal import Journal, Step
from ctguard.gather.journal_history import max_events
from ctguard.gather.kernel_log import max_periods
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_snapshot
from ctguard.plan.actions import SetSysctl
from tests.fixture_roots import root_near_full_with_drops, roots_write

BOOT = 1_800_000_000.0
UPTIME = 20_000.0
MAX = "net.netfilter.nf_conntrack_max"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = root_near_full_with_drops(tmp_path_factory.mktemp("history") / "root")
    roots_write(root, "proc/uptime", f"{UPTIME:.2f} 0.00\n")
    roots_write(root, "manifest.json", json.dumps({"captured_at_epoch": BOOT + UPTIME}))
    return root


def recommended(root: Path, state: Path) -> tuple[int, list[str]]:
    kernel = KernelRoot.from_bundle(root)
    snapshot = read_snapshot(kernel)
    total, periods, _ = max_periods(kernel, max_events(state), snapshot.max)
    advice = build_advice(snapshot, Evidence(table_full_lines=total, max_periods=periods))
    assert advice.sizing is not None
    return advice.sizing.recommended_max, advice.sizing.why


def at(when: float) -> mock._patch[mock.MagicMock]:
    clock = mock.MagicMock(wraps=time)
    clock.time.return_value = when
    return mock.patch("ctguard.effects.journal.time", clock)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    line_times=st.lists(st.integers(1, 999), min_size=0, max_size=12),
    undo=st.lists(st.sampled_from(["rolled-back", "recovered"]), min_size=1, max_size=4),
)
def test_apply_rollback_cycles_leave_the_advice_unchanged(
    bundle: Path, line_times: list[int], undo: list[str]
) -> None:
    lines = "".join(f"[{t}.000000] nf_conntrack: table full, dropping packet\n" for t in line_times)
    roots_write(bundle, "cmd/dmesg.txt", lines)
    with tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        first, why = recommended(bundle, state)
        assert first > 65536  # the fixture dropped at 65,536: the advice raises it
        journal = Journal(state)
        for cycle, how in enumerate(undo):
            start = BOOT + 1000 + cycle * 1000
            with at(start):
                change = journal.create("apply", [Step(SetSysctl(MAX, str(first)), "65536\n")])
            with at(start + 1):
                journal.save(change, "applied")
            with at(start + 500):
                journal.save(change, how)  # back to 65,536, no new line
            assert recommended(bundle, state) == (first, why), f"after cycle {cycle + 1}"


def test_a_line_logged_at_the_raised_max_says_it_was_full_there(bundle: Path) -> None:
    with tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        roots_write(bundle, "cmd/dmesg.txt", "[500.000000] nf_conntrack: table full\n")
        first, _ = recommended(bundle, state)
        journal = Journal(state)
        with at(BOOT + 1000):
            change = journal.create("apply", [Step(SetSysctl(MAX, str(first)), "65536\n")])
            journal.save(change, "applied")
        with at(BOOT + 3000):
            journal.save(change, "rolled-back")
        # while the raised max was in force (boot + 2000 s), the table filled again
        roots_write(
            bundle,
            "cmd/dmesg.txt",
            "[500.000000] nf_conntrack: table full\n"
            "[2000.000000] nf_conntrack: table full, dropping packet\n",
        )
        again, why = recommended(bundle, state)
        assert again > first
        assert f"the table was full at {first:,}" in why[0]
