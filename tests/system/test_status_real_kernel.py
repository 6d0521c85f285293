"""`ctguard status --netns` against the kernel's own tools, on real entries."""

import json
import os
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ctguard.cli.env import ExitStatus
from ctguard.effects.journal import Journal, Step
from ctguard.lab.fill import fill_table, synthetic_flows
from ctguard.lab.traffic import TcpServer, open_tcp_connections, send_udp
from ctguard.parse.conntrack_stats_tool import parse_conntrack_stats_tool
from ctguard.plan.actions import SetSysctl
from tests.conftest import run_cli

COMPARED = (
    "drop",
    "early_drop",
    "insert_failed",
    "invalid",
    "found",
    "search_restart",
    "clash_resolve",
    "chaintoolong",
)


def tool_totals(ns):
    return parse_conntrack_stats_tool(ns.exec(["conntrack", "-S"])).totals()


def test_status_netns_agrees_with_conntrack_tools(lab):
    ns = lab.add_namespace("srv")
    ns.enable_conntrack()
    with TcpServer(ns, "127.0.0.1", 8090) as server:
        conns = open_tcp_connections(ns, "127.0.0.1", 8090, 40)
        send_udp(ns, "127.0.0.1", list(range(7000, 7025)))
        result = run_cli("status", "--netns", ns.name, "--json")
        payload = result.json()
        assert int(ns.exec(["conntrack", "-C"])) == payload["count"] == 65
        totals = tool_totals(ns)
        for name in COMPARED:
            if name in totals:
                assert payload["counters"][name] == totals[name], name
        assert payload["netns"]["inode"] == os.stat(f"/run/netns/{ns.name}").st_ino
        assert payload["verdict"] == "ok" and result.status == ExitStatus.OK
        for conn in conns:
            conn.close()
        assert len(server.accepted) == 40


def test_full_table_drops_are_seen_and_crit(lab, tmp_path):
    """Fill a namespace to the global max with ASSURED entries: the next flow is dropped."""
    ns = lab.add_namespace("full")
    ns.enable_conntrack()
    max_entries = int(ns.read_sysctl("net.netfilter.nf_conntrack_max"))
    created, failures = fill_table(ns, synthetic_flows(max_entries, sources=4096))
    assert created == max_entries, failures
    before = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    follower: dict[str, object] = {}
    watcher = threading.Thread(
        target=lambda: follower.update(
            result=run_cli("logs", "--follow", "--gap", "1", "--for", "4", "--json")
        )
    )
    watcher.start()
    time.sleep(0.5)  # let the follower reach the end of the ring buffer
    with ns.entered():
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    with TcpServer(ns, "127.0.0.1", 8091):
        try:
            probe.connect(("127.0.0.1", 8091))
            connected = True
        except OSError:
            connected = False
        finally:
            probe.close()
    assert not connected, "a new flow got through a table full of ASSURED entries"
    watcher.join(timeout=15)
    inode = os.stat(f"/run/netns/{ns.name}").st_ino
    events = [json.loads(line) for line in follower["result"].stdout.splitlines()]
    mine = [e["event"] for e in events if e["netns"] == inode]
    assert mine[:2] == ["episode started", "episode ended"], events
    result = run_cli("status", "--netns", ns.name, "--json")
    payload = result.json()
    totals = tool_totals(ns)
    assert payload["drop"] == totals["drop"] > 0
    assert payload["count"] == max_entries and payload["fill"] == 1.0
    assert result.status == ExitStatus.CRIT
    assert {"CT101", "CT103"} <= {f["code"] for f in payload["findings"]}

    # The kernel logged it, rate-limited, with this namespace's inode (6.16+).
    logs = run_cli("logs", "--since", before, "--json")
    assert logs.status == ExitStatus.WARN, logs.stderr
    episodes = [e for e in logs.json()["episodes"] if e["netns"] == inode]
    assert len(episodes) == 1
    assert 1 <= episodes[0]["lines"] <= payload["drop"]
    assert episodes[0]["netns_name"] == ns.name
    doctor = run_cli("doctor", "--json").json()
    ct403 = [f for f in doctor["findings"] if f["code"] == "CT403"]
    assert ct403 and ns.name in ct403[0]["evidence"]

    # Had ctguard raised max to today's value since those drops, they are history.
    journal = Journal(tmp_path / "state")
    raised = SetSysctl("net.netfilter.nf_conntrack_max", str(max_entries))
    journal.save(journal.create("raise", [Step(raised, f"{max_entries // 2}\n")]), "applied")
    environ = {"CTGUARD_STATE_DIR": str(tmp_path / "state")}
    doctor = run_cli("doctor", "--json", environ=environ).json()
    (ct403,) = [f for f in doctor["findings"] if f["code"] == "CT403"]
    assert ct403["severity"] == "info" and "all before ctguard raised" in ct403["title"]


def test_all_netns_lists_namespaces_in_use(lab):
    busy, idle = lab.add_namespace("busy"), lab.add_namespace("idle")
    fill_table(busy, synthetic_flows(123))
    result = run_cli("status", "--all-netns", "--json")
    payload = result.json()
    rows = {tuple(row["names"]): row for row in payload["namespaces"]}
    assert rows[(busy.name,)]["count"] == 123
    assert (idle.name,) not in rows
    assert payload["namespaces"][0]["names"] == ["host"]
    text = run_cli("status", "--all-netns").stdout
    assert busy.name in text


def test_doctor_mentions_other_namespaces(lab):
    ns = lab.add_namespace("busy")
    fill_table(ns, synthetic_flows(50))
    payload = run_cli("doctor", "--json").json()
    ct004 = [f for f in payload["findings"] if f["code"] == "CT004"]
    assert ct004 and ns.name in ct004[0]["evidence"]


def test_capture_of_a_namespace_reads_back_identically(lab, tmp_path):
    ns = lab.add_namespace("cap")
    fill_table(ns, synthetic_flows(77))
    ns.write_sysctl("net.netfilter.nf_conntrack_tcp_timeout_established", "3600")
    bundle = tmp_path / "bundle"
    result = run_cli("capture", str(bundle), "--netns", ns.name, "--json")
    assert result.status == ExitStatus.OK
    assert (bundle / "proc/net/nf_conntrack").read_text().count("dport=443") == 77
    assert (bundle / "manifest.json").exists()
    live = run_cli("status", "--netns", ns.name, "--json").json()
    offline = run_cli("status", "--root", str(bundle), "--json").json()
    for key in ("count", "max", "buckets", "drop", "early_drop", "insert_failed", "timeouts"):
        assert offline[key] == live[key], key
    est = {t["key"]: t for t in offline["timeouts"]}["tcp_timeout_established"]
    assert est["seconds"] == 3600 and est["state"] == "changed"
    archive = tmp_path / "bundle.tar.gz"
    assert (
        run_cli("capture", str(archive), "--netns", ns.name, "--no-table").status == ExitStatus.OK
    )
    assert run_cli("status", "--root", str(archive), "--json").json()["count"] == 77


def test_capture_refuses_non_empty_directory(tmp_path):
    (tmp_path / "x").write_text("keep me")
    result = run_cli("capture", str(tmp_path))
    assert result.status == ExitStatus.UNKNOWN and "not empty" in result.stderr
    assert (tmp_path / "x").read_text() == "keep me"


def _as_nobody(*argv):
    """Run the CLI in a forked child that dropped root (the interpreter and its
    packages may live where nobody cannot read, so everything is imported first)."""
    import ctguard.cli.doctor
    import ctguard.kernel.snapshot
    import ctguard.render.status_text  # noqa: F401  (pulls in rich)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result = run_cli(*argv, euid=os.geteuid())
            payload = json.dumps([int(result.status), result.stdout, result.stderr]).encode()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        status, stdout, stderr = json.loads(pipe.read() or b'[99, "", "child died"]')
    os.waitpid(pid, 0)
    return subprocess.CompletedProcess(argv, status, stdout, stderr)


def test_status_without_root(lab):
    ns = lab.add_namespace("priv")
    done = _as_nobody("status", "--json")
    assert done.returncode in (0, 1, 2), done.stderr
    assert "Traceback" not in done.stderr
    assert '"measured": false' in done.stdout  # slabinfo is root-only: assumed size, noted
    assert "slabinfo is readable by root only" in done.stdout
    denied = _as_nobody("status", "--netns", ns.name)
    assert denied.returncode == ExitStatus.UNKNOWN
    assert "CAP_SYS_ADMIN" in denied.stderr and "sudo" in denied.stderr
    assert "Traceback" not in denied.stderr
    missing = _as_nobody("status", "--netns", "no-such-ns")
    assert missing.returncode == ExitStatus.UNKNOWN and "ip netns list" in missing.stderr
    assert Path(f"/run/netns/{ns.name}").exists()


def test_netlink_counters_equal_procfs_counters(lab):
    """The fallback for kernels without CONFIG_NF_CONNTRACK_PROCFS reads the same numbers."""
    from ctguard.kernel.ctnetlink import CtnetlinkSocket
    from ctguard.parse.stat_nf_conntrack import parse_stat_nf_conntrack

    ns = lab.add_namespace("nl")
    ns.enable_conntrack()
    send_udp(ns, "127.0.0.1", list(range(7100, 7110)))
    with ns.entered():
        with CtnetlinkSocket() as sock:
            rows = sock.stats_per_cpu()
            entries, max_entries = sock.stats_global()
        with open("/proc/thread-self/net/stat/nf_conntrack") as handle:
            procfs = parse_stat_nf_conntrack(handle.read())
    assert len(rows) == len(procfs.per_cpu)
    totals = procfs.totals()
    for name in ("drop", "early_drop", "insert_failed", "invalid", "found", "clash_resolve"):
        assert sum(row.get(name, 0) for row in rows) == totals[name], name
    assert entries == procfs.entries == int(ns.read_sysctl("net.netfilter.nf_conntrack_count"))
    assert max_entries == int(ns.read_sysctl("net.netfilter.nf_conntrack_max"))
