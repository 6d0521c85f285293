"""The settings planner: names, validation, idempotence, and golden persistent files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctguard.errors import UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import read_snapshot
from ctguard.model.netns_ref import NetnsRef
from ctguard.model.snapshot import Snapshot
from ctguard.plan.actions import SetModuleParam, SetSysctl, WriteFile, action_from_dict
from ctguard.plan.conntrack_settings import (
    MODPROBE_FILE,
    MODULES_LOAD_FILE,
    SYSCTL_FILE,
    SettingTargets,
    parse_timeout_assignments,
    plan_settings,
)
from tests.fixture_roots import root_k618_sample, root_legacy_ip_conntrack

GOLDEN = Path(__file__).parent.parent / "golden" / "apply"
NS = NetnsRef(4026532999, "/run/netns/test", ("test",))


def snap(builder: object, tmp_path: Path) -> Snapshot:
    return read_snapshot(KernelRoot.from_bundle(builder(tmp_path / "root")))  # type: ignore[operator]


def check_golden(name: str, content: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        path.write_text(content)
    assert content == path.read_text(), f"{name} differs from its golden file"


def files_of(plan_actions: tuple[object, ...], etc: Path) -> dict[str, str]:
    return {
        str(Path(a.path).relative_to(etc)): a.content
        for a in plan_actions
        if isinstance(a, WriteFile)
    }


def test_sizing_and_timeouts_plan_runtime_then_files(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    targets = SettingTargets(
        max=524288, buckets=524288, timeouts={"tcp_timeout_established": 86400}
    )
    plan = plan_settings(snap(root_k618_sample, tmp_path), targets, netns=None, etc_dir=etc)
    runtime = [a for a in plan.actions if not isinstance(a, WriteFile)]
    assert runtime == [
        SetModuleParam("nf_conntrack", "hashsize", "524288", "resize the hash"),
        SetSysctl("net.netfilter.nf_conntrack_max", "524288", None, "table size"),
        SetSysctl("net.netfilter.nf_conntrack_tcp_timeout_established", "86400", None, "timeout"),
    ]
    files = files_of(plan.actions, etc)
    assert set(files) == {SYSCTL_FILE, MODULES_LOAD_FILE, MODPROBE_FILE}
    check_golden("modern-sysctl.conf", files[SYSCTL_FILE])
    check_golden("modern-modules-load.conf", files[MODULES_LOAD_FILE])
    check_golden("modern-modprobe.conf", files[MODPROBE_FILE])


def test_legacy_kernel_uses_ip_conntrack_names(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    targets = SettingTargets(max=131072, buckets=16384, timeouts={"tcp_timeout_close_wait": 60})
    plan = plan_settings(snap(root_legacy_ip_conntrack, tmp_path), targets, netns=None, etc_dir=etc)
    files = files_of(plan.actions, etc)
    check_golden("legacy-sysctl.conf", files[SYSCTL_FILE])
    check_golden("legacy-modprobe.conf", files[MODPROBE_FILE])
    assert SetModuleParam("ip_conntrack", "hashsize", "16384", "resize the hash") in plan.actions


def test_existing_own_file_is_merged_and_identical_files_are_not_rewritten(
    tmp_path: Path,
) -> None:
    etc = tmp_path / "etc"
    (etc / "sysctl.d").mkdir(parents=True)
    (etc / SYSCTL_FILE).write_text(
        "# old\nnet.netfilter.nf_conntrack_max = 300000\n"
        "net.netfilter.nf_conntrack_udp_timeout = 20\n"
    )
    snapshot = snap(root_k618_sample, tmp_path)
    plan = plan_settings(snapshot, SettingTargets(max=400000), netns=None, etc_dir=etc)
    content = files_of(plan.actions, etc)[SYSCTL_FILE]
    assert "nf_conntrack_max = 400000" in content
    assert "nf_conntrack_udp_timeout = 20" in content
    for action in plan.actions:
        if isinstance(action, WriteFile):
            Path(action.path).parent.mkdir(parents=True, exist_ok=True)
            Path(action.path).write_text(action.content)
    again = plan_settings(snapshot, SettingTargets(max=400000), netns=None, etc_dir=etc)
    assert not any(isinstance(a, WriteFile) for a in again.actions)
    assert any("already up to date" in item for item in again.unchanged)


def test_values_already_in_force_are_unchanged_not_actions(tmp_path: Path) -> None:
    snapshot = snap(root_k618_sample, tmp_path)
    plan = plan_settings(
        snapshot,
        SettingTargets(max=snapshot.max, timeouts={"tcp_timeout_established": 432000}),
        netns=None,
        etc_dir=tmp_path / "etc",
        persist=False,
    )
    assert plan.empty
    assert len(plan.unchanged) == 2
    assert any("lost at reboot" in note for note in plan.notes)


def test_netns_plans_runtime_timeouts_only(tmp_path: Path) -> None:
    snapshot = snap(root_k618_sample, tmp_path)
    plan = plan_settings(
        snapshot,
        SettingTargets(timeouts={"udp_timeout": 15}),
        netns=NS,
        etc_dir=tmp_path / "etc",
    )
    assert plan.actions == (
        SetSysctl("net.netfilter.nf_conntrack_udp_timeout", "15", NS, "timeout"),
    )
    assert "in test" in plan.actions[0].describe()
    with pytest.raises(UsageError, match="global"):
        plan_settings(snapshot, SettingTargets(max=10**6), netns=NS, etc_dir=tmp_path)


def test_validation_errors_and_force(tmp_path: Path) -> None:
    snapshot = snap(root_k618_sample, tmp_path)  # count 10
    with pytest.raises(UsageError, match="below the 10 entries"):
        plan_settings(snapshot, SettingTargets(max=5), netns=None, etc_dir=tmp_path)
    forced = plan_settings(
        snapshot, SettingTargets(max=5), netns=None, etc_dir=tmp_path, force=True
    )
    assert forced.warnings and "--force" in forced.warnings[0]
    with pytest.raises(UsageError, match="unknown timeout"):
        plan_settings(
            snapshot, SettingTargets(timeouts={"tcp_nope": 5}), netns=None, etc_dir=tmp_path
        )
    with pytest.raises(UsageError, match="out of range"):
        plan_settings(
            snapshot, SettingTargets(timeouts={"udp_timeout": 0}), netns=None, etc_dir=tmp_path
        )
    with pytest.raises(UsageError, match="out of range"):
        plan_settings(snapshot, SettingTargets(max=2**31), netns=None, etc_dir=tmp_path)


def test_buckets_are_rounded_to_whole_pages_with_a_note(tmp_path: Path) -> None:
    snapshot = snap(root_k618_sample, tmp_path)
    plan = plan_settings(
        snapshot, SettingTargets(buckets=1000), netns=None, etc_dir=tmp_path, persist=False
    )
    assert plan.actions[0] == SetModuleParam("nf_conntrack", "hashsize", "1024", "resize the hash")
    assert any("rounded up to 1,024" in note for note in plan.notes)


def test_timeout_assignments_accept_short_and_dotted_names() -> None:
    assert parse_timeout_assignments(
        ["tcp_timeout_established=86400", "net.netfilter.nf_conntrack_udp_timeout=10"]
    ) == {"tcp_timeout_established": 86400, "udp_timeout": 10}
    with pytest.raises(UsageError, match="seconds"):
        parse_timeout_assignments(["udp_timeout=3h"])
    with pytest.raises(UsageError, match="KEY=SECONDS"):
        parse_timeout_assignments(["udp_timeout"])


def test_actions_round_trip_through_their_journal_form() -> None:
    for action in (
        SetSysctl("net.netfilter.nf_conntrack_max", "1", NS, "why"),
        SetModuleParam("nf_conntrack", "hashsize", "512"),
        WriteFile("/etc/x.conf", "a = 1\n", 0o600, "why"),
    ):
        assert action_from_dict(action.to_dict()) == action


def test_a_later_sysctl_file_setting_the_same_key_is_warned_about(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sysctl.d").mkdir(parents=True)
    (etc / "sysctl.conf").write_text("net.netfilter.nf_conntrack_max=65536\n")
    (etc / "sysctl.d/99-sysctl.conf").symlink_to("../sysctl.conf")
    (etc / "sysctl.d/10-early.conf").write_text("net.netfilter.nf_conntrack_max = 1\n")
    plan = plan_settings(
        snap(root_k618_sample, tmp_path), SettingTargets(max=400000), netns=None, etc_dir=etc
    )
    conflicts = [w for w in plan.warnings if "wins over 400000" in w]
    assert len(conflicts) == 1 and "65536" in conflicts[0]
