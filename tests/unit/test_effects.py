"""The executor on a fake /proc,/sys tree: journal first, verify, undo on every exit path."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from ctguard.effects import executor, slots
from ctguard.effects.executor import (
    ChangeFailed,
    Terminated,
    apply_plan,
    recover_interrupted,
    rollback_change,
)
from ctguard.effects.journal import Journal
from ctguard.effects.slots import System
from ctguard.errors import CtguardError
from ctguard.plan.actions import Plan, SetModuleParam, SetSysctl, WriteFile
from tests.crash import CRASH_STATUS, apply_then_die

MAX = "net.netfilter.nf_conntrack_max"
EST = "net.netfilter.nf_conntrack_tcp_timeout_established"


@pytest.fixture
def tree(tmp_path: Path) -> System:
    proc, sys = tmp_path / "proc", tmp_path / "sys"
    (proc / "sys/net/netfilter").mkdir(parents=True)
    (proc / "sys/net/netfilter/nf_conntrack_max").write_text("262144\n")
    (proc / "sys/net/netfilter/nf_conntrack_tcp_timeout_established").write_text("432000\n")
    (sys / "module/nf_conntrack/parameters").mkdir(parents=True)
    (sys / "module/nf_conntrack/parameters/hashsize").write_text("262144\n")
    return System(proc=proc, sys=sys)


def value(system: System, rel: str) -> str:
    return (system.proc / rel).read_text().strip()


def plan_for(tmp_path: Path, *extra: object) -> Plan:
    return Plan(
        "test",
        (
            SetModuleParam("nf_conntrack", "hashsize", "524288"),
            SetSysctl(MAX, "524288"),
            SetSysctl(EST, "86400"),
            WriteFile(str(tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf"), "x = 1\n"),
            *extra,  # type: ignore[arg-type]
        ),
    )


def test_apply_writes_verifies_and_journals_originals(tree: System, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan_for(tmp_path), journal, tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "524288"
    assert (tree.sys / "module/nf_conntrack/parameters/hashsize").read_text() == "524288"
    assert (tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf").read_text() == "x = 1\n"
    stored = journal.get(change.id)
    assert stored.status == "applied"
    assert [s.original for s in stored.steps] == ["262144\n", "262144\n", "432000\n", None]
    assert [h[1] for h in stored.history] == ["applying", "applied"]


def test_rollback_restores_values_and_removes_created_files(tree: System, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan_for(tmp_path), journal, tree)
    report = rollback_change(change, journal, tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"
    assert value(tree, "sys/net/netfilter/nf_conntrack_tcp_timeout_established") == "432000"
    assert not (tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf").exists()
    assert journal.get(change.id).status == "rolled-back"
    assert not (tmp_path / "etc").exists()  # apply created etc/ and etc/sysctl.d/: gone too
    assert len(report.restored) == 6 and not report.errors
    assert f"{tmp_path / 'etc'} = (removed: the change created it)" in report.restored


def tree_listing(top: Path) -> list[str]:
    return sorted(str(path.relative_to(top)) for path in top.rglob("*"))


def test_rollback_puts_the_tree_back_exactly(tree: System, tmp_path: Path) -> None:
    """/etc exists with sysctl.d but no modprobe.d: only what apply created goes."""
    etc = tmp_path / "etc"
    (etc / "sysctl.d").mkdir(parents=True)
    (etc / "sysctl.d/10-other.conf").write_text("a = 1\n")
    before = tree_listing(etc)
    plan = plan_for(
        tmp_path,
        WriteFile(str(etc / "modprobe.d/ctguard-conntrack.conf"), "options nf_conntrack x\n"),
        WriteFile(str(etc / "modprobe.d/deeper/second.conf"), "y\n"),
    )
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan, journal, tree)
    assert (etc / "modprobe.d/deeper/second.conf").exists()
    stored = journal.get(change.id)  # the missing directories are in the journal
    assert stored.steps[-2].created_dirs == [str(etc / "modprobe.d")]
    assert stored.steps[-1].created_dirs == [
        str(etc / "modprobe.d"),
        str(etc / "modprobe.d/deeper"),
    ]
    report = rollback_change(stored, journal, tree)
    assert tree_listing(etc) == before and not report.errors and not report.drifted


def test_a_created_directory_someone_else_filled_is_kept_and_said(
    tree: System, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan_for(tmp_path), journal, tree)
    (tmp_path / "etc/sysctl.d/50-theirs.conf").write_text("b = 2\n")
    report = rollback_change(change, journal, tree)
    assert (tmp_path / "etc/sysctl.d/50-theirs.conf").read_text() == "b = 2\n"
    assert not (tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf").exists()
    assert report.drifted == [
        f"{tmp_path / 'etc/sysctl.d'} kept: it holds files ctguard did not write",
        f"{tmp_path / 'etc'} kept: it holds files ctguard did not write",
    ]
    assert not report.errors


def test_a_journal_without_created_dirs_still_rolls_back(tree: System, tmp_path: Path) -> None:
    """Change sets journaled before directories were recorded restore their files."""
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan_for(tmp_path), journal, tree)
    path = journal.directory / f"{change.id}.json"
    data = json.loads(path.read_text())
    for step in data["steps"]:
        step.pop("created_dirs", None)
    path.write_text(json.dumps(data))
    report = rollback_change(journal.get(change.id), journal, tree)
    assert not (tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf").exists()
    assert not report.errors


def test_rollback_reports_values_changed_by_someone_else(tree: System, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    change = apply_plan(plan_for(tmp_path), journal, tree)
    (tree.proc / "sys/net/netfilter/nf_conntrack_max").write_text("999\n")
    report = rollback_change(change, journal, tree)
    assert any("changed since" in item and "999" in item for item in report.drifted)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"


def test_failure_mid_plan_restores_everything_already_written(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = slots.write_slot

    def failing_write(system: System, action: object, text: str | None) -> None:
        if isinstance(action, WriteFile) and text is not None:
            Path(action.path).parent.mkdir(parents=True)  # the directories, then no space
            raise CtguardError("disk full", where=action.path)
        real_write(system, action, text)  # type: ignore[arg-type]

    monkeypatch.setattr(executor, "write_slot", failing_write)
    journal = Journal(tmp_path / "state")
    with pytest.raises(ChangeFailed, match="disk full; every original value was restored"):
        apply_plan(plan_for(tmp_path), journal, tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"
    assert value(tree, "sys/net/netfilter/nf_conntrack_tcp_timeout_established") == "432000"
    assert (tree.sys / "module/nf_conntrack/parameters/hashsize").read_text() == "262144\n"
    assert journal.all()[0].status == "failed"
    assert not (tmp_path / "etc").exists()  # the directories made for the file are gone


def test_a_missing_slot_fails_before_anything_is_written(tree: System, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    missing = SetSysctl("net.netfilter.nf_conntrack_nope", "1")
    with pytest.raises(Exception, match="does not exist"):
        apply_plan(plan_for(tmp_path, missing), journal, tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"
    assert journal.all() == []


def test_a_value_the_kernel_does_not_keep_is_rolled_back(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = slots.write_slot

    def clamping_write(system: System, action: object, text: str | None) -> None:
        if isinstance(action, SetSysctl) and action.name == EST and text == "86400":
            text = "3600"  # what a kernel clamping the value would leave
        real_write(system, action, text)  # type: ignore[arg-type]

    monkeypatch.setattr(executor, "write_slot", clamping_write)
    with pytest.raises(ChangeFailed, match="did not keep"):
        apply_plan(plan_for(tmp_path), Journal(tmp_path / "state"), tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_tcp_timeout_established") == "432000"


def test_sigterm_mid_apply_unwinds_through_the_rollback(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = slots.write_slot
    calls = []

    def signalling_write(system: System, action: object, text: str | None) -> None:
        real_write(system, action, text)  # type: ignore[arg-type]
        calls.append(action)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(executor, "write_slot", signalling_write)
    journal = Journal(tmp_path / "state")
    with pytest.raises(Terminated):
        apply_plan(plan_for(tmp_path), journal, tree)
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"
    assert journal.all()[0].status == "failed"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_daemon_change_completes_through_a_sigterm(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard notes SIGTERM and stops between ticks: a ban being put in must not
    be undone by the signal (it would vanish until the next start)."""
    noted: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: noted.append(signum))
    real_write = slots.write_slot
    calls = []

    def signalling_write(system: System, action: object, text: str | None) -> None:
        real_write(system, action, text)  # type: ignore[arg-type]
        calls.append(action)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(executor, "write_slot", signalling_write)
    journal = Journal(tmp_path / "state")
    try:
        apply_plan(plan_for(tmp_path), journal, tree, unwind_on_signal=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert noted == [signal.SIGTERM] and len(calls) > 1
    assert journal.all()[0].status == "applied"


def test_a_crash_mid_apply_is_recovered_from_the_journal(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "state")
    status = apply_then_die(plan_for(tmp_path), journal, tree, monkeypatch, writes=2)
    assert status == CRASH_STATUS
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "524288"  # left half-done
    assert [c.status for c in journal.interrupted()] == ["applying"]
    reports = recover_interrupted(journal, tree)
    assert len(reports) == 1 and not reports[0].errors
    assert value(tree, "sys/net/netfilter/nf_conntrack_max") == "262144"
    assert (tree.sys / "module/nf_conntrack/parameters/hashsize").read_text() == "262144\n"
    assert journal.all()[0].status == "recovered"
    assert journal.interrupted() == []


def test_a_crash_after_the_file_is_written_recovers_the_tree(
    tree: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "state")
    status = apply_then_die(plan_for(tmp_path), journal, tree, monkeypatch, writes=4)
    assert status == CRASH_STATUS
    assert (tmp_path / "etc/sysctl.d/95-ctguard-conntrack.conf").exists()
    reports = recover_interrupted(journal, tree)
    assert len(reports) == 1 and not reports[0].errors
    assert not (tmp_path / "etc").exists()


def test_damaged_journal_entry_is_a_clear_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    journal.directory.mkdir(parents=True)
    (journal.directory / "bad.json").write_text("{not json")
    with pytest.raises(Exception, match="damaged change journal entry"):
        journal.all()


def test_only_one_changer_at_a_time(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "state")
    with (
        journal.locked(),
        pytest.raises(Exception, match="another ctguard"),
        Journal(tmp_path / "state").locked(),
    ):
        pass


def test_rollback_preview_names_the_directories_it_would_remove(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    etc = tmp_path / "etc"
    journal = Journal(tmp_path / "state")
    plan = Plan("file only", (WriteFile(str(etc / "modprobe.d/ctguard.conf"), "x\n"),))
    apply_plan(plan, journal, System(proc=tmp_path / "proc", sys=tmp_path / "sys"))
    environ = {"CTGUARD_STATE_DIR": str(tmp_path / "state")}
    preview = json.loads(run_cli("rollback", "--json", environ=environ).stdout)
    assert preview["steps"][0]["restore"] is None
    assert preview["steps"][0]["remove_dirs"] == [str(etc / "modprobe.d"), str(etc)]
    text = "".join(run_cli("rollback", environ=environ).stdout.split())  # long lines wrap
    assert f"{etc / 'modprobe.d'}:createdbythechange->removeitifempty" in text
