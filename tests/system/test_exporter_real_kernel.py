"""`ctguard exporter` on the real kernel, end to end with a real Prometheus server.

Two namespaces joined by a veth pair; the server's table is filled with
real TCP connections from the client (ESTABLISHED, so ASSURED: nothing is
evictable) under a temporarily lowered global nf_conntrack_max, so further
connections are dropped for real.  The exporter (``--all-netns``) must
report the table as `conntrack -C` sees it and the drops as they grow, and
a Prometheus server on 127.0.0.1, loaded with the shipped rules (``for:``
shortened in a test copy), must fire CtguardConntrackDropping for that
namespace and not for the host.  Everything started is stopped and removed.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ctguard.lab.global_max import set_temporary_max
from ctguard.lab.namespaces import Lab, LabNamespace
from ctguard.lab.runner import raise_open_files_limit
from ctguard.lab.traffic import TcpServer, open_tcp_connections
from ctguard.parse.conntrack_stats_tool import parse_conntrack_stats_tool

MONITORING = Path(__file__).parents[2] / "monitoring"
TABLE_MAX = 1024  # the lowered global max: that many real connections fill the table
SERVICE_PORT = 8094
START_DEADLINE = 30.0  # seconds for the exporter or Prometheus to come up
FIRE_DEADLINE = 90.0  # seconds for Prometheus to scrape, evaluate and fire
MAX_KNOCKS = 600  # connection attempts into the full table, at most


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def scrape(exporter: str) -> dict[tuple[str, str], float]:
    """{(sample name, netns label): value} of one scrape (samples with a netns label)."""
    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(get(exporter + "/metrics").decode()):
        for sample in family.samples:
            if "netns" in sample.labels and "source" not in sample.labels:
                values[(sample.name, sample.labels["netns"])] = sample.value
    return values


def own_label(exporter: str) -> str:
    """The ``netns`` label the exporter gives its own namespace (the host's)."""
    for family in text_string_to_metric_families(get(exporter + "/metrics").decode()):
        for sample in family.samples:
            if sample.name == "ctguard_netns_info" and sample.labels.get("own") == "true":
                return str(sample.labels["netns"])
    raise AssertionError("the exporter does not name its own namespace")


def wait_for_line(log: Path, pattern: str, process: subprocess.Popen[bytes]) -> re.Match[str]:
    deadline = time.monotonic() + START_DEADLINE
    while True:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text()[-2000:]
            pytest.fail(f"{pattern!r} never came (exit {process.poll()}): {tail}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL if it has not stopped within 15 s; the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temporary directory removed on every exit path (not kept like tmp_path)."""
    path = Path(tempfile.mkdtemp(prefix="ctguard-e2e-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is missing (Debian package prometheus; scripts/test installs it)")
    return binary


@pytest.fixture
def exporter(workdir: Path) -> Iterator[str]:
    log = workdir / "exporter.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "ctguard", "exporter", "--all-netns", "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        match = wait_for_line(log, r"listening on (http://127\.0\.0\.1:\d+)/metrics", process)
        yield match.group(1)
    finally:
        status = stop(process)
    assert status == 0, f"the exporter did not stop cleanly on SIGTERM: {log.read_text()[-2000:]}"


@pytest.fixture
def prometheus(workdir: Path, exporter: str, prometheus_binary: str) -> Iterator[str]:
    """Prometheus on 127.0.0.1 scraping the exporter and evaluating the shipped
    rules every second, ``for:`` shortened to 1s; its API's base URL."""
    alerts = (MONITORING / "alerts.yaml").read_text()
    shortened = re.sub(r"(?m)^(\s+for:) \d+[smh]$", r"\1 1s", alerts)
    assert shortened != alerts, "no `for:` to shorten in monitoring/alerts.yaml"
    (workdir / "alerts.yaml").write_text(shortened)
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(workdir / "alerts.yaml"), str(MONITORING / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": "ctguard",
                "static_configs": [{"targets": [exporter.removeprefix("http://")]}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_loopback_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                prometheus_binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=workdir,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                get(base + "/-/ready", timeout=2)
                break
            except OSError:  # refused, or 503 while it starts
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prometheus did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        rules = json.loads(get(base + "/api/v1/rules"))["data"]["groups"]
        names = {g["name"] for g in rules}
        assert names == {"ctguard-conntrack", "ctguard-conntrack.rules", "ctguard-guard"}
        yield base
    finally:
        stop(process)


def api(base: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    answer = json.loads(get(f"{base}/api/v1/{path}{query}"))
    assert answer["status"] == "success", answer
    return answer["data"]


def firing_for(base: str, alertname: str) -> set[str]:
    """The ``netns`` labels ``alertname`` fires for now."""
    return {
        alert["labels"].get("netns", "")
        for alert in api(base, "alerts")["alerts"]
        if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"
    }


def knock(client: LabNamespace, server: str, stop_knocking: threading.Event) -> None:
    """New connections into the full table, bounded in count and time (each one's
    SYN is dropped by the server's conntrack, so it times out)."""
    deadline = time.monotonic() + FIRE_DEADLINE + 10
    for _ in range(MAX_KNOCKS):
        if stop_knocking.is_set() or time.monotonic() > deadline:
            return
        with client.entered():
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.25)
        try:
            probe.connect((server, SERVICE_PORT))
        except OSError:
            pass
        finally:
            probe.close()
        stop_knocking.wait(0.05)


def test_dropping_alert_fires_for_the_full_namespace_and_not_the_host(
    host_globals: tuple[int, int], lab: Lab, exporter: str, prometheus: str
) -> None:
    client, server = lab.add_namespace("client"), lab.add_namespace("server")
    _, server_address = lab.link(client, server, subnet=94)
    server.enable_conntrack()
    set_temporary_max(TABLE_MAX, lab.state_dir)  # the lab's close puts the original back
    assert int(server.read_sysctl("net.netfilter.nf_conntrack_max")) == TABLE_MAX
    raise_open_files_limit()
    host = own_label(exporter)

    with TcpServer(server, server_address, SERVICE_PORT):
        connections = open_tcp_connections(client, server_address, SERVICE_PORT, TABLE_MAX)
        try:
            counted = int(server.exec(["conntrack", "-C"]))
            before = scrape(exporter)
            assert counted == TABLE_MAX, f"{len(connections)} connections, {counted} entries"
            assert before[("ctguard_conntrack_entries", server.name)] == counted
            assert before[("ctguard_conntrack_max", server.name)] == TABLE_MAX

            stop_knocking = threading.Event()
            knocker = threading.Thread(target=knock, args=(client, server_address, stop_knocking))
            knocker.start()
            try:
                deadline = time.monotonic() + FIRE_DEADLINE
                firing = firing_for(prometheus, "CtguardConntrackDropping")
                while server.name not in firing and time.monotonic() < deadline:
                    time.sleep(0.5)
                    firing = firing_for(prometheus, "CtguardConntrackDropping")
            finally:
                stop_knocking.set()
                knocker.join(timeout=30)
            after = scrape(exporter)
            stats = parse_conntrack_stats_tool(server.exec(["conntrack", "-S"])).totals()
        finally:
            for connection in connections:
                connection.close()

    assert server.name in firing, f"not firing for {server.name} within {FIRE_DEADLINE:.0f}s"
    assert host not in firing and client.name not in firing, firing
    # The host's series is there and evaluated: its silence is an answer.
    host_rate = api(
        prometheus, "query", query=f'rate(ctguard_conntrack_drop_total{{netns="{host}"}}[5m])'
    )["result"]
    assert [float(r["value"][1]) for r in host_rate] == [0.0], host_rate
    dropped = ("ctguard_conntrack_drop_total", server.name)
    assert before[dropped] < after[dropped] <= stats["drop"]  # conntrack -S read a moment later
    # The kernel logged the drops (rate-limited), naming the namespace (6.16+)
    # or none (older kernels), and the exporter counted them.
    logged = after[("ctguard_conntrack_table_full_log_lines_total", server.name)] + after.get(
        ("ctguard_conntrack_table_full_log_lines_total", ""), 0.0
    )
    assert logged >= 1
