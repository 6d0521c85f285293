"""The shipped alerts, rules and dashboard: promtool checks and unit tests,
the mixin style, and a real scrape that promtool accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ctguard.exporter.server import make_registry
from ctguard.gather.collect import Collector
from ctguard.kernel.root import KernelRoot
from tests.fixture_roots import root_near_full_with_drops

MONITORING = Path(__file__).parents[2] / "monitoring"
DOCS = Path(__file__).parents[2] / "docs" / "monitoring.md"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool missing (Debian package prometheus; scripts/test installs it)",
)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, timeout=60, check=False
    )


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


@needs_promtool
def test_rules_pass_promtool_check_with_lint() -> None:
    done = promtool(
        "check",
        "rules",
        "--lint=all",
        "--lint-fatal",
        str(MONITORING / "alerts.yaml"),
        str(MONITORING / "rules.yaml"),
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_alert_unit_tests_pass() -> None:
    done = promtool("test", "rules", str(MONITORING / "tests" / "alerts_test.yaml"))
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


@needs_promtool
def test_a_real_scrape_passes_promtool_check_metrics(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    root = KernelRoot.from_bundle(root_near_full_with_drops(tmp_path))
    body = generate_latest(make_registry(Collector(root), None))
    assert b'ctguard_conntrack_drop_total{netns="host"} 1234.0' in body
    done = promtool("check", "metrics", stdin=body)
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_every_alert_follows_the_mixin_style_and_has_a_runbook() -> None:
    docs = DOCS.read_text()
    anchors = {m.lower().replace(" ", "-") for m in re.findall(r"^#### (\w+)$", docs, re.M)}
    names = []
    for rule in alerts():
        name = str(rule["alert"])
        names.append(name)
        assert re.fullmatch(r"Ctguard([A-Z][a-z0-9]*)+", name) and len(name) <= 40, name
        labels = rule["labels"]
        assert isinstance(labels, dict) and labels["severity"] in {"critical", "warning", "info"}
        notes = rule["annotations"]
        assert isinstance(notes, dict)
        summary, description = notes["summary"], notes["description"]
        assert "{{" not in summary and summary[0].isupper() and summary.endswith("."), name
        assert "{{" in description, name
        assert notes["runbook"] == f"docs/monitoring.md#{name.lower()}"
        assert name.lower() in anchors, f"no runbook section '#### {name}' in docs/monitoring.md"
    assert len(names) == len(set(names))
    assert {"CtguardConntrackDropping", "CtguardConntrackTableNearlyFull"} <= set(names)


def test_early_drop_pages_nothing() -> None:
    """early_drop alone is the table coping at max (FACTS §4), not loss."""
    assert not [rule for rule in alerts() if "early_drop" in str(rule["expr"])]
    (dropping,) = [r for r in alerts() if r["alert"] == "CtguardConntrackDropping"]
    assert dropping["labels"] == {"severity": "critical"}


def test_dashboard_has_a_uid_a_datasource_variable_and_known_metrics(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    dashboard = json.loads((MONITORING / "dashboards" / "ctguard-conntrack.json").read_text())
    assert dashboard["uid"] == "ctguard-conntrack"
    variables = dashboard["templating"]["list"]
    assert [v["name"] for v in variables if v["type"] == "datasource"] == ["datasource"]
    root = KernelRoot.from_bundle(root_near_full_with_drops(tmp_path))
    exposed = set(
        re.findall(
            r"^# TYPE (\S+)", generate_latest(make_registry(Collector(root), None)).decode(), re.M
        )
    )
    exposed |= {name + "_total" for name in exposed} | {"ctguard_info"}
    exposed |= {"ctguard_conntrack_table_full_log_lines_total"}  # live exporter only
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["description"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            for metric in re.findall(r"\b(ctguard_[a-z_]+)\{", target["expr"]):
                assert metric in exposed, (panel["title"], metric)
