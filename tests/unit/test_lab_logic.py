"""The lab's decisions that need no kernel: scale, remedy choice, rendering, refusals."""

from __future__ import annotations

import json

import pytest

from ctguard.cli.env import ExitStatus
from ctguard.errors import UsageError
from ctguard.lab.remedy import RemedyRun
from ctguard.lab.runner import choose_remedy, scenario_spec, table_size
from ctguard.lab.scenario import Check, PhaseResult, ScenarioResult
from ctguard.lab.scenarios import SCENARIOS, flows_from
from tests.conftest import run_cli


def test_fill_scenarios_default_to_the_real_max_and_never_exceed_it() -> None:
    spec = scenario_spec("assured-flood")
    assert table_size(spec, None, 262144) == (262144, 262144)
    assert table_size(spec, 4096, 262144) == (4096, 4096)  # lowered for the run
    with pytest.raises(UsageError, match="above this host's nf_conntrack_max"):
        table_size(spec, 300000, 262144)
    with pytest.raises(UsageError, match="at least"):
        table_size(spec, 10, 262144)


def test_connection_scenarios_scale_connections_not_the_table() -> None:
    orphans = scenario_spec("orphans")
    assert table_size(orphans, None, 262144) == (500, 262144)
    with pytest.raises(UsageError, match=r"1\.\.8,000 connections"):
        table_size(orphans, 9000, 262144)
    nat = scenario_spec("nat-gateway")
    assert table_size(nat, None, 262144) == (2048, 2048)
    assert table_size(nat, 100000, 262144) == (6000, 6000)  # real sockets: capped


def test_remedies_and_names_are_checked() -> None:
    spec = scenario_spec("udp-flood")
    assert choose_remedy(spec, None) == "notrack"
    assert choose_remedy(spec, "block") == "block"
    with pytest.raises(UsageError, match="its remedies: notrack, block"):
        choose_remedy(spec, "max")
    with pytest.raises(UsageError, match="choose one of: assured-flood"):
        scenario_spec("ddos")
    assert SCENARIOS["assured-flood"].needs_global("max")
    assert not SCENARIOS["assured-flood"].needs_global("block")


def test_flood_flows_are_distinct_and_avoid_the_probe_port() -> None:
    flows = list(flows_from("10.1.0.2", "10.3.0.2", 130000))
    assert len({(f.sport, f.dport) for f in flows}) == 130000
    assert {f.dport for f in flows} == {10000, 10001, 10002}
    assert all(1024 <= f.sport < 65535 for f in flows)


def phase(**changes: object) -> PhaseResult:
    values: dict[str, object] = {
        "count": 2048,
        "max": 2048,
        "drop": 7,
        "early_drop": 0,
        "insert_failed": 0,
        "log_lines": 7,
        "probes_ok": 0,
        "probes": 3,
        "extra": {"attacker entries": 2048},
    }
    values.update(changes)
    return PhaseResult(**values)  # type: ignore[arg-type]


def result(*checks: Check) -> ScenarioResult:
    return ScenarioResult(
        name="assured-flood",
        title="Connection flood with ASSURED entries",
        scale=2048,
        table_max=2048,
        max_lowered=True,
        remedy="block",
        before=phase(),
        after=phase(count=3, drop=0, log_lines=None, probes_ok=3, extra={"attacker entries": 0}),
        remedies=[RemedyRun("ctguard block 10.1.0.2 --netns gw --yes", 0, "blocked", "")],
        checks=list(checks),
        notes=["nf_conntrack_max was 2,048 during the run"],
    )


def test_text_report_shows_before_and_after_side_by_side() -> None:
    from io import StringIO

    from rich.console import Console

    from ctguard.render.lab_text import render_lab_result

    out = StringIO()
    console = Console(file=out, width=120, no_color=True, highlight=False)
    render_lab_result(console, result(Check("no drops after the remedy", True, "drop +0")))
    text = out.getvalue()
    assert "drop" in text and "+7" in text and "+0" in text
    assert "innocent probe connected" in text and "0/3" in text and "3/3" in text
    assert "n/a" in text  # no kernel log in the after phase
    assert "remedy: ctguard block 10.1.0.2 --netns gw --yes" in text
    assert "ok   no drops after the remedy" in text
    assert "every expected behaviour was measured" in text


def test_a_failed_check_fails_the_result() -> None:
    good, bad = Check("a", True, "x"), Check("b", False, "y")
    assert result(good).passed and not result(good, bad).passed
    data = result(good, bad).to_dict()
    assert data["passed"] is False and data["before"]["drop"] == 7
    assert data["after"]["log_lines"] is None


def test_lab_needs_root_but_list_does_not() -> None:
    refused = run_cli("lab", "run", "syn-flood", euid=1000)
    assert refused.status == ExitStatus.UNKNOWN
    assert "needs root" in refused.stderr
    assert run_cli("lab", "clean", euid=1000).status == ExitStatus.UNKNOWN
    listed = run_cli("lab", "list", euid=1000)
    assert listed.status == ExitStatus.OK
    assert all(name in listed.stdout for name in SCENARIOS)


def test_lab_list_json_names_every_scenario_with_its_remedies() -> None:
    listed = run_cli("lab", "list", "--json", euid=1000)
    assert listed.status == ExitStatus.OK
    scenarios = json.loads(listed.stdout)["scenarios"]
    assert [item["name"] for item in scenarios] == list(SCENARIOS)
    orphans = next(item for item in scenarios if item["name"] == "orphans")
    assert orphans["remedies"] == ["timeout"] and orphans["default_remedy"] == "timeout"
    assert orphans["scale_is"] == "connections" and orphans["max_scale"] == 8000
    flood = next(item for item in scenarios if item["name"] == "assured-flood")
    assert flood["scale_is"] == "table size" and flood["default_scale"] is None
    assert flood["clients"] == ["attacker", "innocent"]


def test_unknown_scenario_is_a_usage_error() -> None:
    bad = run_cli("lab", "run", "nope")
    assert bad.status == ExitStatus.USAGE and "choose one of" in bad.stderr


def test_a_busy_host_table_refuses_a_lowered_max_before_anything_is_built(monkeypatch) -> None:
    import ctguard.lab.global_max as global_max
    import ctguard.lab.runner as runner
    from ctguard.errors import CtguardError

    monkeypatch.setattr(runner, "lab_preflight", lambda: None)
    monkeypatch.setattr(runner, "clean_leftovers", lambda: [])
    monkeypatch.setattr(runner, "current_max", lambda: 262144)
    monkeypatch.setattr(global_max, "in_init_netns", lambda: True)
    monkeypatch.setattr(global_max, "host_table_count", lambda: 1234)
    monkeypatch.setattr(runner, "global_change_refusal", global_max.global_change_refusal)

    def no_lab(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lab was built")

    monkeypatch.setattr(runner, "Lab", no_lab)
    with pytest.raises(CtguardError, match="host's own table is in use \\(1,234 entries\\)"):
        runner.run_scenario("syn-flood", scale=2048)
    with pytest.raises(CtguardError, match="remedy 'max' raises the global"):
        runner.run_scenario("assured-flood", remedy="max")


def test_a_finished_run_leaves_no_empty_journal_directory(tmp_path, monkeypatch) -> None:
    import ctguard.lab.namespaces as namespaces

    journal_dir = tmp_path / "ctguard" / "lab"
    monkeypatch.setattr(namespaces, "JOURNAL_DIR", journal_dir)
    other = namespaces.Lab(journal_dir=journal_dir)
    other._record("other")  # a second run still under way keeps the directory
    with namespaces.Lab(journal_dir=journal_dir) as lab:
        lab._record("first")
    assert journal_dir.is_dir()
    other.journal.unlink()
    with namespaces.Lab(journal_dir=journal_dir) as lab:
        lab._record("second")
    assert not (tmp_path / "ctguard").exists()
    assert namespaces.clean_leftovers(journal_dir) == []  # nothing there: no error


def test_kernel_log_marks_are_best_effort(tmp_path) -> None:
    from ctguard.lab.namespaces import lab_marker_text, mark_kernel_log

    log = tmp_path / "kmsg"
    log.touch()
    assert mark_kernel_log(lab_marker_text("ab12cd", 4026532177), log)
    assert mark_kernel_log(lab_marker_text("ab12cd"), log)
    assert log.read_text() == (
        "<6>ctguard-lab: run=ab12cd netns=4026532177 added\n<6>ctguard-lab: run=ab12cd closed\n"
    )
    # no kernel log to write to: the marks are lost, nothing else (and no file made)
    assert not mark_kernel_log("x", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()
    assert not mark_kernel_log("x", None)
