"""`ctguard report` from a capture of a real namespace filled here, opened in
headless Chromium (Debian's chromium): it renders without console errors,
requests nothing, and a screenshot of it is taken."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ctguard.lab.fill import fill_table, synthetic_flows
from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, logging the page's console; stopped after 90 s at most."""
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",  # root in a VM: the sandbox needs a user namespace setup
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # a request could not leave anyway
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--log-level=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def console_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def report_of_a_filled_namespace(lab, tmp_path: Path) -> Path:
    ns = lab.add_namespace("report")
    ns.enable_conntrack()
    created, _ = fill_table(ns, synthetic_flows(1500, sources=1, dport=8443))
    others, _ = fill_table(ns, synthetic_flows(600, sources=60, dport=443))
    assert (created, others) == (1500, 600)
    bundle = tmp_path / "host.tar.gz"
    captured = run_cli("capture", "--netns", ns.name, str(bundle))
    assert captured.status == 0, captured.stderr
    page = tmp_path / "post mortem.html"
    done = run_cli("report", "--root", str(bundle), "-o", str(page))
    assert done.status == 0, done.stderr
    return page


def test_the_report_names_the_namespace_top_source_and_findings(report_of_a_filled_namespace):
    html = report_of_a_filled_namespace.read_text()
    top = next(synthetic_flows(1, sources=1)).src
    assert top in html
    assert "CT501" in html and "one source holds" in html
    assert "2,100 entries read" in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test installs it)")
def test_chromium_renders_it_without_console_errors_or_requests(
    report_of_a_filled_namespace, tmp_path: Path
):
    page = report_of_a_filled_namespace
    # the detector sees a blocked request: a copy with an external image must complain
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("<body>", '<body><img src="http://127.0.0.1:9/x">', 1))
    assert any(
        "Content Security Policy" in line
        for line in console_lines(chromium(bad, tmp_path / "profile-bad", "--dump-dom"))
    )
    rendered = chromium(page, tmp_path / "profile", "--dump-dom")
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert console_lines(rendered) == []
    assert "Who holds the table" in rendered.stdout  # the DOM Chromium built
    shot = tmp_path / "report.png"
    taken = chromium(
        page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,2400"
    )
    assert taken.returncode == 0 and console_lines(taken) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    keep = Path(__file__).parent.parent.parent / "benchmarks" / "out"
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "report-screenshot.png")  # for a look by eye (git-ignored)
