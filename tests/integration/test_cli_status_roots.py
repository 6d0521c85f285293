"""`ctguard status` / `doctor` in-process against fixture roots built from samples."""

import pytest

from ctguard.cli.env import ExitStatus
from tests import fixture_roots as roots


def codes(payload):
    return {finding["code"] for finding in payload["findings"]}


def test_k618_sample_reports_drops_as_warn(cli, tmp_path):
    root = roots.root_k618_sample(tmp_path)
    result = cli("status", "--root", str(root), "--json")
    payload = result.json()
    assert result.status == ExitStatus.WARN
    assert (payload["count"], payload["max"], payload["buckets"]) == (10, 262144, 262144)
    assert payload["drop"] == 40 and payload["early_drop"] == 0 and payload["insert_failed"] == 0
    assert payload["invalid"] == 200
    assert payload["verdict"] == "warn"
    assert codes(payload) >= {"CT103", "CT301"}  # drops; udp_timeout 120 is not the default
    assert payload["counter_source"] == {
        "kind": "procfs",
        "variant": "5.15+ (clashres, chainlength)",
        "cpus": 2,
    }
    changed = {t["key"] for t in payload["timeouts"] if t["state"] == "changed"}
    assert changed == {"udp_timeout"}
    assert payload["memory"]["bytes_per_entry"] == 384 and payload["memory"]["measured"]
    assert payload["memory"]["table_now_bytes"] == 3840
    assert payload["kernel_defaults"][0]["max"] == 262144


def test_idle_6x_is_ok(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_idle_6x(tmp_path)), "--json")
    payload = result.json()
    assert result.status == ExitStatus.OK
    assert payload["verdict"] == "ok"
    assert payload["avg_chain"] == 0.0 and payload["max_buckets_ratio"] == 1.0
    assert "CT003" in codes(payload)
    assert not [t for t in payload["timeouts"] if t["state"] == "changed"]


def test_near_full_with_drops_is_crit(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_near_full_with_drops(tmp_path)), "--json")
    payload = result.json()
    assert result.status == ExitStatus.CRIT
    assert payload["fill"] == pytest.approx(65422 / 65536, abs=1e-6)
    assert (
        payload["drop"] == 1234 and payload["early_drop"] == 312 and payload["insert_failed"] == 7
    )
    assert payload["max_buckets_ratio"] == 4.0
    assert payload["ratio_meaning"].startswith("4:1")
    assert {"CT101", "CT103", "CT104", "CT105", "CT302"} <= codes(payload)
    assert payload["counter_source"]["variant"].startswith("2.6-5.9")
    # 8 GiB on 4.4: old default 65536 buckets / 262144 max; this max is lower.
    assert "CT203" in codes(payload)


def test_near_full_text_output_explains(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_near_full_with_drops(tmp_path)))
    assert result.status == ExitStatus.CRIT
    out = result.stdout
    assert "65,422 of 65,536" in out and "CRIT" in out
    assert "CT101" in out and "next:" in out
    assert "4:1, the pre-5.15 default rule" in out


def test_pre_5_10_header_and_custom_ratio(cli, tmp_path):
    payload = cli("status", "--root", str(roots.root_pre_5_10(tmp_path)), "--json").json()
    assert payload["count"] == 1498 and payload["max"] == 1000000 and payload["buckets"] == 204800
    assert payload["search_restart"] == 7
    assert payload["counters"]["searched"] == 0 and "delete_list" in payload["counters"]
    assert "set separately" in payload["ratio_meaning"]
    # 5.4 defaults: sctp established 432000 and shutdown 0 are older defaults, not changes.
    states = {t["key"]: t["state"] for t in payload["timeouts"]}
    assert states["sctp_timeout_established"] == "older-default"
    assert states["sctp_timeout_shutdown_sent"] == "older-default"


def test_legacy_ip_conntrack_kernel(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_legacy_ip_conntrack(tmp_path)), "--json")
    payload = result.json()
    assert payload["legacy"] is True
    assert (payload["count"], payload["max"], payload["buckets"]) == (5000, 65536, 8192)
    assert payload["counter_source"]["kind"] == "procfs-legacy"
    assert payload["counters"]["searched"] == 400
    assert "search_restart" not in payload["counters"]
    assert payload["ratio_meaning"].startswith("8:1")
    changed = {t["sysctl"]: t["state"] for t in payload["timeouts"]}
    assert changed["net.ipv4.netfilter.ip_conntrack_tcp_timeout_close_wait"] == "changed"
    assert changed["net.ipv4.netfilter.ip_conntrack_udp_timeout_stream"] == "default"
    assert payload["memory"]["slab_caches"][0]["name"] == "ip_conntrack"


def test_no_procfs_uses_captured_conntrack_S(cli, tmp_path):
    payload = cli("status", "--root", str(roots.root_no_procfs(tmp_path)), "--json").json()
    assert payload["counter_source"]["kind"] == "conntrack -S"
    assert payload["search_restart"] == 9916 + 4151
    assert payload["drop"] == 0


def test_no_procfs_and_no_counters_says_so(cli, tmp_path):
    result = cli(
        "status", "--root", str(roots.root_no_procfs(tmp_path, with_conntrack_s=False)), "--json"
    )
    payload = result.json()
    assert payload["drop"] is None and payload["counters"] is None
    assert "CT002" in codes(payload)
    assert any("per-CPU counters unavailable" in note for note in payload["notes"])


def test_module_not_loaded(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_no_conntrack(tmp_path)))
    assert result.status == ExitStatus.OK
    assert "connection tracking is not loaded" in result.stdout
    payload = cli("status", "--root", str(roots.root_no_conntrack(tmp_path)), "--json").json()
    assert payload["module_loaded"] is False and payload["count"] is None
    assert codes(payload) == {"CT001"}


def test_thresholds_are_configurable(cli, tmp_path):
    root = str(roots.root_pre_5_10(tmp_path))  # 0.15 % full
    assert cli("status", "--root", root, "--warn", "0.1", "--crit", "0.2").status == ExitStatus.WARN
    bad = cli("status", "--root", root, "--warn", "95", "--crit", "90")
    assert bad.status == ExitStatus.USAGE and "--warn" in bad.stderr


def test_doctor_on_bundle_lists_findings_with_next_commands(cli, tmp_path):
    root = str(roots.root_near_full_with_drops(tmp_path))
    result = cli("doctor", "--root", root)
    assert result.status == ExitStatus.CRIT
    assert "diagnosis" in result.stdout and "next:" in result.stdout
    payload = cli("doctor", "--root", root, "--json").json()
    assert payload["verdict"] == "crit"
    assert payload["status"]["count"] == 65422
    assert all(f["next_command"] for f in payload["findings"] if f["severity"] != "info")


def test_doctor_lists_the_latest_log_episodes_and_logs_lists_all(cli, tmp_path):
    root = roots.root_near_full_with_drops(tmp_path)
    # 12 episodes, 2 minutes apart (longer than the gap that separates them)
    line = "[{:.6f}] nf_conntrack: table full, dropping packet"
    lines = [line.format(100.0 + 120 * n) for n in range(12)]
    roots.roots_write(tmp_path, "cmd/dmesg.txt", "\n".join(lines) + "\n")
    roots.roots_write(tmp_path, "proc/uptime", "2000.00 3000.00\n")
    doctor = cli("doctor", "--root", str(root)).stdout
    assert "12 'table full' lines in 12 episode(s)" in doctor
    assert "the last 10 episodes; 2 earlier ones: ctguard logs" in doctor
    assert "boot+220.000s" not in doctor and "boot+340.000s" in doctor
    logs = cli("logs", "--root", str(root)).stdout
    assert "boot+100.000s" in logs and "boot+220.000s" in logs and "earlier ones" not in logs


def test_a_snapshot_carries_when_it_was_taken(tmp_path):
    import json
    import time

    from ctguard.kernel.root import KernelRoot
    from ctguard.kernel.snapshot import read_snapshot

    root = roots.root_idle_6x(tmp_path / "bundle")
    undated = read_snapshot(KernelRoot.from_bundle(root), use_netlink=False)
    assert (undated.taken_at, undated.taken_monotonic) == (None, None)
    roots.roots_write(root, "manifest.json", json.dumps({"captured_at_epoch": 1_800_000_000.5}))
    dated = read_snapshot(KernelRoot.from_bundle(root), use_netlink=False)
    # a bundle's time is when it was captured; it has no monotonic clock of ours
    assert (dated.taken_at, dated.taken_monotonic) == (1_800_000_000.5, None)
    before = time.monotonic()
    live = read_snapshot(KernelRoot.live(), use_netlink=False)
    assert live.taken_monotonic is not None and before <= live.taken_monotonic <= time.monotonic()
    assert live.taken_at is not None and abs(live.taken_at - time.time()) < 3600
