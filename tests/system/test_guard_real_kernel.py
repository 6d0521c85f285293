"""`ctguard guard` on the real kernel, in namespaces of its own (bounded floods).

A server namespace is linked to an attacker and an innocent client; the guard
runs as a separate process (as systemd runs it) watching the server's
namespace, with its state in a temp dir.  The kernel's own tables
(`nft list`, `conntrack -L`) say what happened.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ctguard.kernel.ctnetlink import CtnetlinkSocket, Flow
from ctguard.lab.traffic import send_udp, udp_flood, wait_until

POLICY = """
[detect]
new_flows_per_source = 200
sustain = 2
[ban]
duration = "5m"
[service]
reconcile_interval = 2
"""


@pytest.fixture
def topology(lab):
    server = lab.add_namespace("gsrv")
    attacker = lab.add_namespace("gatk")
    innocent = lab.add_namespace("ginn")
    atk_addr, srv_a = lab.link(attacker, server, subnet=86)
    inn_addr, srv_b = lab.link(innocent, server, subnet=87)
    server.enable_conntrack()
    return server, (attacker, atk_addr, srv_a), (innocent, inn_addr, srv_b)


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CTGUARD_STATE_DIR": str(tmp_path / "state"),
        "CTGUARD_ETC_DIR": str(tmp_path / "etc"),
        "CTGUARD_ALLOWLIST": str(tmp_path / "allowlist"),
    }


@contextmanager
def guard(tmp_path: Path, server, policy: str = POLICY, *extra: str) -> Iterator[Path]:
    config = tmp_path / "guard.toml"
    config.write_text(policy)
    log = tmp_path / "guard.log"
    argv = [sys.executable, "-m", "ctguard", "guard", "--netns", server.name]
    with open(log, "a") as stream:
        process = subprocess.Popen(
            [*argv, "--config", str(config), *extra], env=env_for(tmp_path), stderr=stream
        )
    try:
        assert wait_until(lambda: "event=watching" in log.read_text(), timeout=20)
        yield log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def scrape(log: Path) -> dict[str, float]:
    """The guard's metrics (--listen 127.0.0.1:0: the port is in its log), by series."""
    urls = re.findall(r"guard metrics on (http://127\.0\.0\.1:\d+/metrics)", log.read_text())
    assert urls, log.read_text()
    body = urllib.request.urlopen(urls[-1], timeout=10).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }


def kill(log: Path) -> None:
    """SIGKILL the guard writing ``log`` (found by its open log file)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            for fd in fds:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(log):
                    os.kill(int(pid), signal.SIGKILL)
                    return
        except OSError:
            continue


def blocked(server, address: str) -> bool:
    out = server.exec(["nft", "list", "table", "inet", "ctguard"], check=False)
    return address in out


def entries_of(server, address: str) -> int:
    out = server.exec(["conntrack", "-L", "-s", address], check=False)
    return sum(1 for line in out.splitlines() if "src=" in line)


def flood_until(attacker, src: str, dst: str, stop, seconds: float = 8.0) -> bool:
    """~1000 new flows per second from ``src`` (a new port each round) until ``stop()``."""
    end = time.monotonic() + seconds
    port = 1000
    while time.monotonic() < end:
        udp_flood(attacker, [src], dst, port, 100, deadline=1)
        port += 1
        time.sleep(0.1)
        if stop():
            return True
    return False


def test_a_flooder_is_blocked_the_innocent_never_and_the_ban_survives_kill_and_flush(
    topology, tmp_path: Path
) -> None:
    server, (attacker, atk, srv_a), (innocent, inn, srv_b) = topology
    listen = ("--listen", "127.0.0.1:0")
    with guard(tmp_path, server, POLICY, *listen) as log:
        for round_ in range(20):
            send_udp(innocent, srv_b, [3000 + round_])  # 10 new flows per second: normal
            time.sleep(0.1)
        assert flood_until(attacker, atk, srv_a, lambda: "event=blocked" in log.read_text())
        assert blocked(server, atk)
        assert not blocked(server, inn)
        # the blocked source creates no entries, and its old ones are gone
        udp_flood(attacker, [atk], srv_a, 7000, 300, deadline=2)
        assert entries_of(server, atk) == 0
        assert wait_until(lambda: "event=verified" in log.read_text(), timeout=10)
        text = log.read_text()
        line = next(x for x in text.splitlines() if "action=block " in x)
        assert f"source={atk}/32" in line and "signal=new-flows-source" in line
        assert "until=" in line
        # the metrics show the block beside the exporter's families of the namespace
        ns = server.name
        assert wait_until(
            lambda: scrape(log).get(f'ctguard_guard_bans_active{{netns="{ns}"}}') == 1
        )
        seen = scrape(log)
        block = 'ctguard_guard_decisions_total{action="block",signal="new-flows-source"}'
        assert seen[block] == 1
        assert seen["ctguard_guard_detection_latency_seconds_count"] == 1
        assert seen[f'ctguard_conntrack_entries{{netns="{ns}"}}'] >= 0
        kill(log)
    server.exec(["nft", "flush", "ruleset"])
    assert not blocked(server, atk)
    with guard(tmp_path, server, POLICY, *listen) as log:
        assert wait_until(lambda: blocked(server, atk), timeout=4)  # one reconcile interval
        repairs = f'ctguard_guard_reconcile_repairs_total{{netns="{server.name}"}}'
        assert wait_until(lambda: scrape(log).get(repairs) == 1, timeout=5)
        url = re.findall(r"guard metrics on (\S+)", log.read_text())[-1]
    # SIGTERM stopped the metrics server with the guard
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=5)
    # SIGTERM left the ban in the kernel
    assert blocked(server, atk)
    env = env_for(tmp_path)
    shown = subprocess.run(
        [sys.executable, "-m", "ctguard", "blocked", "--netns", server.name, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (row,) = json.loads(shown.stdout)["blocks"]
    assert row["origin"] == "guard" and row["network"] == f"{atk}/32"
    history = subprocess.run(
        [sys.executable, "-m", "ctguard", "guard", "--history", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    actions = [d["action"] for d in json.loads(history.stdout)["decisions"]]
    assert actions == ["block"]


def test_dry_run_changes_nothing(topology, tmp_path: Path) -> None:
    server, (attacker, atk, srv_a), _ = topology
    before = server.exec(["nft", "list", "tables"])
    with guard(tmp_path, server, POLICY, "--dry-run") as log:
        assert flood_until(attacker, atk, srv_a, lambda: "would-block" in log.read_text())
    assert f"source={atk}/32" in log.read_text()
    assert server.exec(["nft", "list", "tables"]) == before  # no table of ctguard's
    assert not (tmp_path / "state" / "firewall").exists()
    assert entries_of(server, atk) > 0


def test_an_allowlisted_flooder_is_reported_not_blocked(topology, tmp_path: Path) -> None:
    server, (attacker, atk, srv_a), _ = topology
    policy = POLICY + f'[allow]\nnetworks = ["{atk}/32"]\n'
    with guard(tmp_path, server, policy) as log:
        assert flood_until(attacker, atk, srv_a, lambda: "action=allowlisted" in log.read_text())
        assert not blocked(server, atk)
    assert "ctguard" not in server.exec(["nft", "list", "tables"])


def test_a_table_filled_before_the_guard_starts_is_found(topology, tmp_path: Path) -> None:
    """No new-entry event for anything already there: the start-up table read finds it."""
    server, (_attacker, atk, srv_a), (_innocent, inn, srv_b) = topology
    limit = int(server.read_sysctl("net.netfilter.nf_conntrack_max"))
    flows = [Flow(atk, srv_a, 1024 + i, 80) for i in range(min(3000, limit // 2))]
    flows += [Flow(inn, srv_b, 1024 + i, 80) for i in range(min(100, limit // 20))]
    with server.entered(), CtnetlinkSocket() as sock:
        created, failures = sock.create_entries(flows)
    assert created == len(flows), failures
    # "full" for this test: over 0.1% of the (global) max, so the load stays small
    policy = POLICY.replace(
        "sustain = 2\n", "sustain = 2\ntable_fill = 0.001\ntable_share = 0.5\nmin_entries = 10\n"
    )
    with guard(tmp_path, server, policy) as log:
        assert wait_until(lambda: "event=blocked" in log.read_text(), timeout=10)
        assert "signal=table-share" in log.read_text()
    assert not blocked(server, inn)
    assert entries_of(server, atk) == 0


def test_a_capture_taken_while_the_guard_runs_reports_its_history(topology, tmp_path: Path) -> None:
    """The guard's database copied live into a bundle: the report shows the namespace's
    fill, the dry run's would-block decisions and their source."""
    server, (attacker, atk, srv_a), _ = topology
    bundle = tmp_path / "host.tar.gz"
    ctguard = [sys.executable, "-m", "ctguard"]
    with guard(tmp_path, server, POLICY, "--dry-run") as log:
        assert flood_until(attacker, atk, srv_a, lambda: "would-block" in log.read_text())
        captured = subprocess.run(
            [*ctguard, "capture", "--netns", server.name, "--no-table", str(bundle)],
            env=env_for(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert captured.returncode == 0, captured.stderr
    report = subprocess.run(
        [*ctguard, "report", "--root", str(bundle), "--json"],
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    history = json.loads(report.stdout)["guard"]
    assert history["state"] == "recorded", history["summary"]
    (netns,) = history["namespaces"]
    assert netns["netns"] == server.name
    assert any(b is not None and b["peak"] > 0 for b in netns["bins"])  # the flood's entries
    assert sum(history["decisions_per_bin"]["would-block"]) >= 1
    assert f"{atk}/32" in {d["target"] for d in history["decisions"]}
    assert history["bans"] == []  # a dry run bans nothing


def spread_until_blocked(log: Path, send_round: Callable[[int], None]) -> str:
    """``send_round(port)`` every ~50 ms (a new port each round) until the guard logs a
    block, at most 10 s; the block's log line."""
    end, port = time.monotonic() + 10.0, 1000
    while time.monotonic() < end and "event=blocked" not in log.read_text():
        send_round(port)
        port += 4
        time.sleep(0.05)
    text = log.read_text()
    assert "event=blocked" in text, text[-2000:]
    return next(x for x in text.splitlines() if "action=block " in x)


def test_a_flood_spread_over_one_24_blocks_the_network(topology, tmp_path: Path) -> None:
    """Spoofed or rotating sources: each under the per-source rate, their /24 over
    its own; the guard blocks the network, and the innocent client's stays open."""
    server, (attacker, _atk, srv_a), (innocent, inn, srv_b) = topology
    network = "10.86.9.0/24"  # none of the server's own addresses is in it
    sources = [f"10.86.9.{i}" for i in range(1, 51)]

    def send_round(port: int) -> None:
        for source in sources:  # 4 new flows each a round: far under 200/s
            udp_flood(attacker, [source], srv_a, port, 4, deadline=1)

    policy = POLICY.replace("sustain = 2\n", "sustain = 2\nnew_flows_per_net24 = 300\n")
    with guard(tmp_path, server, policy) as log:
        line = spread_until_blocked(log, send_round)
        assert f"source={network}" in line and "signal=new-flows-net24" in line
        assert blocked(server, network)
        assert not blocked(server, inn)
        assert "signal=new-flows-source" not in log.read_text()
        send_udp(innocent, srv_b, [4000])  # the innocent client still gets through
        assert wait_until(lambda: entries_of(server, inn) > 0)


def test_a_flood_spread_over_one_64_blocks_the_network(topology, tmp_path: Path) -> None:
    """The same over IPv6: 50 addresses of one /64 (outside the server's own), each
    under the per-source rate; the guard blocks the /64."""
    server, (attacker, _atk, _srv_a), _ = topology
    network = "fd00:86:0:9::/64"
    sources = [f"fd00:86:0:9::{i:x}" for i in range(1, 51)]
    shown = attacker.exec(["ip", "-o", "-6", "addr", "show"])
    device = next(line.split()[1] for line in shown.splitlines() if "fd00:86::1/" in line)
    for source in sources:
        attacker.exec(["ip", "-6", "addr", "add", f"{source}/64", "dev", device, "nodad"])
    with attacker.entered():
        sockets = [socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in sources]

    def send_round(port: int) -> None:
        for sock in sockets:  # 4 new flows each a round (4 ports): far under 200/s
            for offset in range(4):
                sock.sendto(b"ctguard-lab", ("fd00:86::2", port + offset))

    try:
        for sock, source in zip(sockets, sources, strict=True):
            sock.bind((source, 0))
        policy = POLICY.replace("sustain = 2\n", "sustain = 2\nnew_flows_per_net64 = 300\n")
        with guard(tmp_path, server, policy) as log:
            line = spread_until_blocked(log, send_round)
            assert f"source={network}" in line and "signal=new-flows-net64" in line
            assert blocked(server, network)
    finally:
        for sock in sockets:
            sock.close()
