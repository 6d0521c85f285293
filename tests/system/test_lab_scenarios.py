"""`ctguard lab run` at a small scale: the kernel's measured behaviour, before and after.

Small tables mean a temporarily lowered global nf_conntrack_max, which the
lab only does while the host's own table is empty; these tests skip (with
that reason) on a host whose table is in use.  Every test checks that the
global values are back and no namespace is left, and puts the original back
itself as a last resort.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from ctguard.cli.env import ExitStatus
from ctguard.lab.global_max import current_max, global_change_refusal
from ctguard.lab.namespaces import JOURNAL_DIR
from tests.conftest import run_cli
from tests.system.conftest import lab_namespaces

SCALE = "2048"


def run_lab(*args: str) -> dict[str, Any]:
    result = run_cli("lab", "run", *args, "--json")
    assert result.status in (ExitStatus.OK, ExitStatus.WARN), result.stderr
    data: dict[str, Any] = result.json()
    failed = [c for c in data["checks"] if not c["passed"]]
    assert not failed, failed
    assert result.status == ExitStatus.OK
    return data


def kernel_log_counts(since: str | None = None) -> tuple[int, int]:
    """('table full' lines of the host, of lab namespaces) in this boot's kernel log,
    or since ``since`` (the ring buffer drops its oldest lines as others log: counts
    of the whole log can go down between two reads)."""
    result = run_cli("logs", "--json", *(("--since", since) if since else ()))
    assert result.status in (ExitStatus.OK, ExitStatus.WARN), result.stderr
    data = result.json()
    return data["table_full_lines"], data["lab_table_full_lines"]


def test_assured_flood_drops_until_the_source_is_blocked(host_globals) -> None:
    import datetime as dt

    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)).isoformat(timespec="seconds")
    data = run_lab("assured-flood", "--scale", SCALE)
    # the rehearsal's drops were logged, marked as the lab's: not the host's trouble
    host_since, lab_since = kernel_log_counts(since=start)
    assert lab_since >= data["before"]["log_lines"] > 0
    assert host_since == 0
    before, after = data["before"], data["after"]
    assert data["table_max"] == 2048 and data["max_lowered"] is True
    assert before["count"] == before["max"] == 2048
    assert before["drop"] > 0 and before["probes_ok"] == 0
    assert before["log_lines"] > 0  # "table full in netns <gateway>"
    assert before["extra"]["attacker entries"] == 2048
    assert after["drop"] == 0 and after["probes_ok"] == after["probes"]
    assert after["extra"]["attacker entries"] == 0
    assert after["extra"]["attacker connections accepted"] == 0
    assert data["remedies"][0]["command"].startswith("ctguard block 10.1.0.2 --netns ctg-")


def test_assured_flood_raising_max_stops_the_drops(host_globals) -> None:
    data = run_lab("assured-flood", "--scale", SCALE, "--remedy", "max")
    assert data["before"]["drop"] > 0 and data["before"]["probes_ok"] == 0
    assert data["after"]["max"] == 4096 and data["after"]["drop"] == 0
    assert data["after"]["probes_ok"] == data["after"]["probes"]


def test_syn_flood_evicts_and_loses_nothing(host_globals) -> None:
    data = run_lab("syn-flood", "--scale", SCALE)
    before = data["before"]
    assert before["early_drop"] > 0 and before["drop"] == 0 and before["log_lines"] == 0
    assert before["probes_ok"] == before["probes"] == 5
    assert data["after"]["early_drop"] == 0


@pytest.mark.parametrize("remedy", ["notrack", "block"])
def test_udp_flood_to_53(host_globals, remedy: str) -> None:
    data = run_lab("udp-flood", "--scale", SCALE, "--remedy", remedy)
    before, after = data["before"], data["after"]
    assert before["extra"]["udp/53 entries"] > 2048 * 9 // 10 and before["early_drop"] > 0
    assert after["extra"]["udp/53 entries"] == 0 and after["early_drop"] == 0
    delivered = after["extra"]["delivered to the server"]
    if remedy == "notrack":  # exempt from tracking, still delivered
        assert delivered >= after["extra"]["datagrams sent"] * 9 // 10
    else:  # blocked before conntrack
        assert delivered == 0


def test_orphans_from_after_the_change_expire() -> None:
    # This scenario never touches a global value.
    before = current_max() if global_change_refusal() is None else None
    data = run_lab("orphans", "--scale", "60")
    assert data["max_lowered"] is False
    assert data["before"]["extra"]["orphans from before the change"] == 60
    assert data["before"]["extra"]["their shortest timer (s)"] > 400000
    assert data["after"]["extra"]["orphans from after the change"] == 0
    assert data["after"]["extra"]["orphans from before the change"] == 60
    assert 0 <= data["after"]["extra"]["later orphans gone after (s)"] <= 15
    if before is not None:
        assert current_max() == before
    assert lab_namespaces() == []


def test_nat_gateway_sized_by_advise(host_globals) -> None:
    data = run_lab("nat-gateway", "--scale", "1024")
    before, after = data["before"], data["after"]
    assert before["count"] == 1024 and before["drop"] > 0 and before["probes_ok"] == 0
    assert after["max"] > 1024 and after["drop"] == 0
    assert after["extra"]["failed"] == 0 and after["probes_ok"] == after["probes"]
    assert data["remedies"][0]["command"] == "ctguard advise --json --no-table"


def _start_lab_process() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ctguard", "lab", "run", "assured-flood", "--scale", SCALE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_lowered_max(process: subprocess.Popen[str]) -> None:
    stop_at = time.monotonic() + 30
    while current_max() != int(SCALE):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < stop_at, "the lab never lowered the max"
        time.sleep(0.02)


def test_sigterm_mid_run_restores_everything(host_globals) -> None:
    process = _start_lab_process()
    try:
        _wait_for_lowered_max(process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == ExitStatus.INTERRUPTED
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # host_globals checks the max, the hash size and the namespaces.
    assert not list(JOURNAL_DIR.glob("*.json"))


def test_a_killed_run_is_undone_by_lab_clean(host_globals) -> None:
    original = host_globals[0]
    process = _start_lab_process()
    try:
        _wait_for_lowered_max(process)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert current_max() == int(SCALE)  # nothing could run on SIGKILL
    assert lab_namespaces()
    cleaned = run_cli("lab", "clean")
    assert cleaned.status == ExitStatus.OK, cleaned.stderr
    assert "removed: ctg-" in cleaned.stdout
    assert current_max() == original
    assert lab_namespaces() == []
