"""`ctguard advise`/`apply` size the neighbour tables: text, --json, apply -> rollback
on a fake tree, and apply/rollback cycles that leave the advice unchanged."""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path
from unittest import mock

from ctguard.advise.advice import AdviceOptions, Evidence, build_advice
from ctguard.cli.env import ExitStatus
from ctguard.effects.executor import apply_plan, rollback_change
from ctguard.effects.journal import Journal, Step
from ctguard.effects.slots import System
from ctguard.gather.advice import gc_thresh3_events
from ctguard.gather.kernel_log import neighbour_evidence, read_boot_log
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_snapshot
from ctguard.model.netns_ref import NetnsRef
from ctguard.plan.actions import SetSysctl
from ctguard.plan.advice_plan import plan_advice
from ctguard.plan.conntrack_settings import SYSCTL_FILE
from tests.conftest import run_cli
from tests.fixture_roots import root_gateway_neighbours, roots_write

V4 = "net.ipv4.neigh.default"
BOOT = 1_800_000_000.0
UPTIME = 20_000.0


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"CTGUARD_STATE_DIR": str(tmp_path / "state"), "CTGUARD_ETC_DIR": str(tmp_path / "etc")}


def test_advise_json_sizes_the_full_arp_table_and_leaves_ipv6_alone(tmp_path: Path) -> None:
    root = root_gateway_neighbours(tmp_path / "root")
    result = run_cli("advise", "--root", str(root), "--json", environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    data = result.json()
    v4, v6 = data["neighbours"]
    assert (v4["family"], v4["table"], v4["entries"], v4["overflowed"]) == (
        "ipv4",
        "arp_cache",
        1000,
        True,
    )
    assert v4["peak"] == 1024 and "37 new neighbours refused" in v4["peak_basis"]
    assert v4["current"] == {"gc_thresh1": 128, "gc_thresh2": 512, "gc_thresh3": 1024}
    assert v4["recommended"] == {"gc_thresh1": 512, "gc_thresh2": 2048, "gc_thresh3": 4096}
    assert v4["change"] is True and v4["memory_at_gc_thresh3_bytes"] == 4096 * 528
    assert (v6["entries"], v6["change"]) == (3, False)
    assert v6["recommended"] == v6["current"]
    sysctls = [(a["name"], a["value"]) for a in data["plan"]["actions"] if a["kind"] == "sysctl"]
    neighbour = [item for item in sysctls if ".neigh." in item[0]]
    assert neighbour == [
        (f"{V4}.gc_thresh3", "4096"),
        (f"{V4}.gc_thresh2", "2048"),
        (f"{V4}.gc_thresh1", "512"),
    ]


def test_advise_text_shows_both_tables_the_math_and_fine(tmp_path: Path) -> None:
    root = root_gateway_neighbours(tmp_path / "root")
    result = run_cli("advise", "--root", str(root), environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    out = " ".join(result.stdout.split())  # long lines wrap
    assert "neighbour tables (global: every network namespace shares them)" in out
    assert re.search(
        r"net\.ipv4\.neigh\.default \(arp_cache\) 1,000 128 512 1,024 512/2,048/4,096", out
    )
    assert re.search(r"net\.ipv6\.neigh\.default \(ndisc_cache\) 3 128 512 1,024 fine", out)
    assert "the table was full at 1,024, today's gc_thresh3 (37 new neighbours refused" in out
    assert "peak x headroom 2 = 2,048, rounded up to a power of two" in out
    assert "ipv6: observed peak: 3 - 3 entries in ndisc_cache now" in out
    assert f"sysctl -w {V4}.gc_thresh3=4096" in out


def test_a_namespace_gets_a_note_instead_of_global_thresholds(tmp_path: Path) -> None:
    snapshot = read_snapshot(KernelRoot.from_bundle(root_gateway_neighbours(tmp_path / "r")))
    inside = type(snapshot)(**{**snapshot.__dict__, "netns": NetnsRef(1, "/run/netns/a", ("a",))})
    advice = build_advice(inside, Evidence())
    assert advice.neighbours == [] and advice.neighbour_targets == {}
    assert any("global and not visible from a network namespace" in n for n in advice.notes)


def test_apply_then_rollback_restores_the_tree(tmp_path: Path) -> None:
    root = root_gateway_neighbours(tmp_path / "root")
    snapshot = read_snapshot(KernelRoot.from_bundle(root))
    advice = build_advice(snapshot, Evidence())
    etc = tmp_path / "etc"
    plan = plan_advice(advice, etc_dir=etc, persist=True)
    gc = root / "proc/sys/net/ipv4/neigh/default"
    before = {p.name: p.read_text() for p in gc.iterdir()}
    system = System(proc=root / "proc", sys=root / "sys")
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan, journal, system)
    assert [(gc / f"gc_thresh{i}").read_text().strip() for i in (1, 2, 3)] == [
        "512",
        "2048",
        "4096",
    ]
    assert f"{V4}.gc_thresh2 = 2048\n" in (etc / SYSCTL_FILE).read_text()
    report = rollback_change(journal.get(change.id), journal, system)
    assert not report.errors
    assert {p.name: p.read_text() for p in gc.iterdir()} == before
    assert not etc.exists()


def at(when: float) -> mock._patch[mock.MagicMock]:
    clock = mock.MagicMock(wraps=time)
    clock.time.return_value = when
    return mock.patch("ctguard.effects.journal.time", clock)


def test_apply_rollback_cycles_leave_the_neighbour_advice_unchanged(tmp_path: Path) -> None:
    root = root_gateway_neighbours(tmp_path / "root")
    roots_write(root, "proc/uptime", f"{UPTIME:.2f} 0.00\n")
    roots_write(root, "manifest.json", json.dumps({"captured_at_epoch": BOOT + UPTIME}))
    roots_write(
        root, "cmd/dmesg.txt", "[500.000000] neighbour: arp_cache: neighbor table overflow!\n"
    )
    gc3 = root / "proc/sys/net/ipv4/neigh/default/gc_thresh3"
    state = Path(tempfile.mkdtemp(dir=tmp_path))
    kernel = KernelRoot.from_bundle(root)

    def advice() -> tuple[tuple[int, int, int], list[str]]:
        snapshot = read_snapshot(kernel)
        log, _ = read_boot_log(kernel)
        with mock.patch.object(KernelRoot, "is_live", True):
            events = gc_thresh3_events(state, kernel)
        evidence = Evidence(neighbours=neighbour_evidence(log, events))
        (v4,) = [
            n
            for n in build_advice(snapshot, evidence, AdviceOptions()).neighbours
            if n.family == "ipv4"
        ]
        return v4.recommended, v4.why

    first = advice()
    assert first[0] == (512, 2048, 4096)
    assert "1 'neighbor table overflow' log lines this boot" in first[1][0]
    journal = Journal(state)
    for cycle in range(3):
        start = BOOT + 1000 + cycle * 1000
        with at(start):
            change = journal.create(
                "apply", [Step(SetSysctl(f"{V4}.gc_thresh3", "4096"), "1024\n")]
            )
        with at(start + 1):
            journal.save(change, "applied")
        gc3.write_text("4096\n")
        assert advice()[0][2] == 4096, "applied: the old refusals sit at the old limit"
        with at(start + 500):
            journal.save(change, "rolled-back")
        gc3.write_text("1024\n")
        assert advice() == first, f"after cycle {cycle + 1}"


def test_advise_text_of_a_gateway_is_pinned(tmp_path: Path) -> None:
    import os

    root = root_gateway_neighbours(tmp_path / "root")
    environ = {**env_for(tmp_path), "CTGUARD_ETC_DIR": "/nonexistent/ctguard-golden/etc"}
    result = run_cli("advise", "--root", str(root), "--no-logs", environ=environ)
    assert result.status == ExitStatus.OK, result.stderr
    text = result.stdout.replace(str(root), "ROOT")
    path = Path(__file__).parent.parent / "golden" / "advise" / "gateway-neighbours.txt"
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), "the advice differs from its golden file"


def test_without_the_log_the_journal_still_places_the_refusals(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ctguard.gather.journal_history import MaxEvent

    boot = datetime.fromtimestamp(BOOT, tz=UTC)
    raised = {"ipv4": [MaxEvent(BOOT + 1000, 1024, 4096)]}
    (v4, v6) = neighbour_evidence(None, raised, boot=boot)
    assert (v4.family, v4.overflow_lines, v4.lowest_thresh3) == ("ipv4", 0, 1024)
    assert v6.lowest_thresh3 is None
    # a change before this boot says nothing about it
    (old, _) = neighbour_evidence(None, {"ipv4": [MaxEvent(BOOT - 5, 1024, 4096)]}, boot=boot)
    assert old.lowest_thresh3 is None


def test_apply_dry_run_on_a_bundle_plans_the_thresholds_and_changes_nothing(
    tmp_path: Path,
) -> None:
    root = root_gateway_neighbours(tmp_path / "root")
    gc3 = root / "proc/sys/net/ipv4/neigh/default/gc_thresh3"
    result = run_cli("apply", "--root", str(root), "--json", environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    data = result.json()
    assert data["applied"] is False
    names = [a["name"] for a in data["plan"]["actions"] if a["kind"] == "sysctl"]
    assert [n for n in names if ".neigh." in n] == [f"{V4}.gc_thresh{i}" for i in (3, 2, 1)]
    assert gc3.read_text() == "1024\n" and not (tmp_path / "etc").exists()
