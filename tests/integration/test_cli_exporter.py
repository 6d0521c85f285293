"""`ctguard exporter`: serving, stopping on SIGTERM, textfile, and clear errors."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ctguard.cli.env import ExitStatus
from tests.conftest import run_cli


def start_exporter(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ctguard", "exporter", "--listen", "127.0.0.1:0", *args],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)/metrics", line)
    if match is None:
        process.kill()
        process.wait()
        pytest.fail(f"exporter did not start: {line}{process.stderr.read()}")
    return process, match.group(1)


def test_serves_landing_and_metrics_and_stops_on_sigterm() -> None:
    process, base = start_exporter()
    try:
        landing = urllib.request.urlopen(base + "/", timeout=10).read().decode()
        assert 'href="/metrics"' in landing
        with urllib.request.urlopen(base + "/metrics", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            body = response.read().decode()
        assert "# TYPE ctguard_scrape_source_success gauge" in body
        assert re.search(r'^ctguard_info\{.*version="', body, re.M)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/nope", timeout=10)
        assert missing.value.code == 404
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_port_in_use_is_a_clear_error() -> None:
    process, base = start_exporter()
    try:
        result = run_cli("exporter", "--listen", base.removeprefix("http://"))
        assert result.status == ExitStatus.UNKNOWN
        assert "already in use" in result.stderr and "Traceback" not in result.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("argv", "status", "says"),
    [
        (["--listen", "nonsense"], ExitStatus.USAGE, "is not ADDR:PORT"),
        (["--listen", "127.0.0.1:99999"], ExitStatus.USAGE, "is not ADDR:PORT"),
        (["--listen", "192.0.2.77:10371"], ExitStatus.USAGE, "no such address"),
        (["--netns", "x", "--all-netns"], ExitStatus.USAGE, "exclude each other"),
        (["--textfile", "/nonexistent-dir/ctguard.prom"], ExitStatus.UNKNOWN, "does not exist"),
        (["--textfile", "/tmp/ctguard.txt"], ExitStatus.USAGE, "must end in .prom"),
    ],
)
def test_bad_input_exits_clearly(argv: list[str], status: ExitStatus, says: str) -> None:
    result = run_cli("exporter", *argv)
    assert result.status == status, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


def test_other_namespaces_need_root() -> None:
    result = run_cli("exporter", "--all-netns", euid=1000)
    assert result.status == ExitStatus.UNKNOWN and "needs root" in result.stderr


def test_textfile_is_written_whole_and_alone(tmp_path: Path) -> None:
    target = tmp_path / "ctguard.prom"
    target.write_text("old\n")
    result = run_cli("exporter", "--textfile", str(target))
    assert result.status == ExitStatus.OK, result.stderr
    text = target.read_text()
    assert text.startswith("# HELP") and "ctguard_scrape_duration_seconds" in text
    assert "table_full_log_lines" not in text  # counts from a running exporter's start only
    assert [p.name for p in tmp_path.iterdir()] == ["ctguard.prom"]


def test_status_does_not_import_prometheus_client() -> None:
    code = (
        "import io, sys\n"
        "from ctguard.cli.env import Environment\n"
        "from ctguard.cli.main import main\n"
        "main(['status', '--json'], Environment(stdout=io.StringIO(), stderr=io.StringIO()))\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
