"""`ctguard apply` / `rollback` on the real kernel.

Per-namespace timeouts are applied inside a lab namespace through the CLI.
The global values (nf_conntrack_max, the hash size) go through the same
executor and journal, only while the host's own table is empty, and every
test puts the exact original back itself as a last resort.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctguard.cli.env import ExitStatus
from ctguard.effects.executor import (
    ChangeFailed,
    apply_plan,
    recover_interrupted,
    rollback_change,
)
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.lab.fill import fill_table, synthetic_flows
from ctguard.plan.actions import Plan, SetModuleParam, SetSysctl
from tests.conftest import run_cli
from tests.crash import CRASH_STATUS, apply_then_die

EST = "net.netfilter.nf_conntrack_tcp_timeout_established"
UDP = "net.netfilter.nf_conntrack_udp_timeout"
MAX_PATH = Path("/proc/sys/net/netfilter/nf_conntrack_max")
HASH_PATH = Path("/sys/module/nf_conntrack/parameters/hashsize")


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"CTGUARD_STATE_DIR": str(tmp_path / "state"), "CTGUARD_ETC_DIR": str(tmp_path / "etc")}


def test_netns_timeouts_apply_and_roll_back(lab, tmp_path: Path) -> None:
    ns = lab.add_namespace("apply")
    ns.enable_conntrack()
    host_before = Path("/proc/sys/" + EST.replace(".", "/")).read_text().strip()
    env = env_for(tmp_path)
    args = ["--netns", ns.name, "--timeout", "tcp_timeout_established=7200"]
    args += ["--timeout", "udp_timeout=15"]
    dry = run_cli("apply", *args, environ=env)
    assert dry.status == ExitStatus.OK, dry.stderr
    assert ns.read_sysctl(EST) == "432000"
    applied = run_cli("apply", *args, "--yes", "--json", environ=env)
    assert applied.status == ExitStatus.OK, applied.stderr
    assert applied.json()["applied"] is True
    assert ns.read_sysctl(EST) == "7200" and ns.read_sysctl(UDP) == "15"
    assert Path("/proc/sys/" + EST.replace(".", "/")).read_text().strip() == host_before
    assert not (tmp_path / "etc").exists()  # per-netns: runtime only
    again = run_cli("apply", *args, "--yes", "--json", environ=env)
    assert again.json()["applied"] is False  # idempotent: nothing left to change
    back = run_cli("rollback", "--yes", environ=env)
    assert back.status == ExitStatus.OK, back.stderr
    assert ns.read_sysctl(EST) == "432000" and ns.read_sysctl(UDP) == "30"


def test_advice_for_orphans_is_applied_in_the_namespace(lab, tmp_path: Path) -> None:
    ns = lab.add_namespace("orphans")
    ns.enable_conntrack()
    # 2,000 ASSURED ESTABLISHED entries whose timers say they have been idle ~1.5 days.
    created, errors = fill_table(ns, synthetic_flows(2000, timeout=300000))
    assert created == 2000, errors
    env = env_for(tmp_path)
    advice = run_cli("advise", "--netns", ns.name, "--json", "--no-logs", environ=env)
    assert advice.status == ExitStatus.OK, advice.stderr
    established = next(
        t for t in advice.json()["timeouts"] if t["key"] == "tcp_timeout_established"
    )
    assert established["recommended"] == 86400 and "2,000" in established["reason"]
    applied = run_cli("apply", "--netns", ns.name, "--no-logs", "--yes", environ=env)
    assert applied.status == ExitStatus.OK, applied.stderr
    assert ns.read_sysctl(EST) == "86400"
    assert run_cli("rollback", "--yes", environ=env).status == ExitStatus.OK
    assert ns.read_sysctl(EST) == "432000"


def test_global_max_in_a_namespace_is_refused(lab, tmp_path: Path) -> None:
    ns = lab.add_namespace("global")
    result = run_cli("apply", "--netns", ns.name, "--max", "300000", environ=env_for(tmp_path))
    assert result.status == ExitStatus.USAGE and "global" in result.stderr


@pytest.fixture
def global_originals() -> Iterator[tuple[str, str]]:
    """Skip unless the host's table is unused; restore max and hashsize whatever happens."""
    if os.geteuid() != 0 or not HASH_PATH.exists():
        pytest.skip("needs root and nf_conntrack's hashsize parameter")
    count = int(Path("/proc/sys/net/netfilter/nf_conntrack_count").read_text())
    if count:
        pytest.skip(f"the host's own table is in use ({count} entries): global values untouched")
    originals = MAX_PATH.read_text().strip(), HASH_PATH.read_text().strip()
    try:
        yield originals
    finally:
        if MAX_PATH.read_text().strip() != originals[0]:
            MAX_PATH.write_text(originals[0])
        if HASH_PATH.read_text().strip() != originals[1]:
            HASH_PATH.write_text(originals[1])


def global_plan(max_value: int, buckets: int, *extra: SetSysctl) -> Plan:
    return Plan(
        "global test",
        (
            SetModuleParam("nf_conntrack", "hashsize", str(buckets)),
            SetSysctl("net.netfilter.nf_conntrack_max", str(max_value)),
            *extra,
        ),
    )


def test_global_values_apply_verify_and_roll_back_exactly(
    global_originals: tuple[str, str], tmp_path: Path
) -> None:
    original_max, original_hash = global_originals
    journal = Journal(tmp_path / "state")
    plan = global_plan(int(original_max) + 512, int(original_hash) + 512)
    change = apply_plan(plan, journal, System())
    assert MAX_PATH.read_text().strip() == str(int(original_max) + 512)
    assert HASH_PATH.read_text().strip() == str(int(original_hash) + 512)
    rollback_change(change, journal, System())
    assert MAX_PATH.read_text().strip() == original_max
    assert HASH_PATH.read_text().strip() == original_hash


def test_global_values_restored_when_a_later_write_is_rejected(
    global_originals: tuple[str, str], tmp_path: Path
) -> None:
    original_max, original_hash = global_originals
    rejected = SetSysctl(EST, "not-a-number")  # the kernel answers EINVAL
    plan = global_plan(int(original_max) + 512, int(original_hash) + 512, rejected)
    with pytest.raises(ChangeFailed, match="rejected"):
        apply_plan(plan, Journal(tmp_path / "state"), System())
    assert MAX_PATH.read_text().strip() == original_max
    assert HASH_PATH.read_text().strip() == original_hash


def test_global_values_recovered_after_a_crash(
    global_originals: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_max, original_hash = global_originals
    journal = Journal(tmp_path / "state")
    status = apply_then_die(
        global_plan(int(original_max) + 512, int(original_hash) + 512),
        journal,
        System(),
        monkeypatch,
        writes=2,
    )
    assert status == CRASH_STATUS
    assert MAX_PATH.read_text().strip() == str(int(original_max) + 512)
    recover_interrupted(journal, System())
    assert MAX_PATH.read_text().strip() == original_max
    assert HASH_PATH.read_text().strip() == original_hash
