"""`ctguard advise`, `apply` (dry run) and `rollback` in-process, on fixture roots."""

from __future__ import annotations

import re
from pathlib import Path

from ctguard.cli.env import ExitStatus
from tests.conftest import run_cli
from tests.fixture_roots import root_k618_sample, root_near_full_with_drops


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"CTGUARD_STATE_DIR": str(tmp_path / "state"), "CTGUARD_ETC_DIR": str(tmp_path / "etc")}


def test_advise_json_on_a_full_pre_5_15_host(tmp_path: Path) -> None:
    root = root_near_full_with_drops(tmp_path / "root")
    result = run_cli("advise", "--root", str(root), "--json", environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    data = result.json()
    sizing = data["sizing"]
    assert sizing["reached_max"] is True
    assert sizing["recommended_max"] == 131072 and sizing["recommended_buckets"] == 32768
    assert sizing["ratio"] == 4
    kinds = [a["kind"] for a in data["plan"]["actions"]]
    assert kinds[:2] == ["module-param", "sysctl"] and kinds.count("file") == 3
    paths = [a["path"] for a in data["plan"]["actions"] if a["kind"] == "file"]
    assert all(p.startswith(str(tmp_path / "etc")) for p in paths)
    claims = [c["claim"] for c in data["corrections"]]
    assert any("1 GB" in claim for claim in claims)


def test_advise_text_explains_numbers_and_shows_the_files(tmp_path: Path) -> None:
    root = root_near_full_with_drops(tmp_path / "root")
    result = run_cli("advise", "--root", str(root), environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    out = result.stdout
    assert "the table was full at 65,536 (drop counter 1,234)" in out
    # both columns count the hash: 65,536 x 384 B + 16,384 x 8 B, and twice that
    assert re.search(r"memory at max \(entries \+ hash\)\s+24\.1 MiB\s+48\.2 MiB", out)
    assert "options nf_conntrack hashsize=32768" in out
    assert "dry run: nothing was changed" in out
    assert not (tmp_path / "etc").exists()


def test_apply_dry_run_changes_nothing_and_yes_refuses_a_bundle(tmp_path: Path) -> None:
    root = root_k618_sample(tmp_path / "root")
    env = env_for(tmp_path)
    max_file = root / "proc/sys/net/netfilter/nf_conntrack_max"
    before = max_file.read_text()
    dry = run_cli("apply", "--root", str(root), "--max", "300000", environ=env)
    assert dry.status == ExitStatus.OK, dry.stderr
    assert "sysctl -w net.netfilter.nf_conntrack_max=300000" in dry.stdout
    assert "hashsize=300032" in dry.stdout  # 1:1 convention, whole pages
    assert max_file.read_text() == before and not (tmp_path / "etc").exists()
    yes = run_cli("apply", "--root", str(root), "--max", "300000", "--yes", environ=env)
    assert yes.status == ExitStatus.USAGE and "cannot be combined with --root" in yes.stderr


def test_apply_refuses_max_below_count_and_yes_without_root(tmp_path: Path) -> None:
    root = root_near_full_with_drops(tmp_path / "root")
    env = env_for(tmp_path)
    low = run_cli("apply", "--root", str(root), "--max", "1000", environ=env)
    assert low.status == ExitStatus.USAGE
    assert "below the 65,422 entries" in low.stderr and "--force" in low.stderr
    user = run_cli("apply", "--timeout", "udp_timeout=10", "--yes", euid=1000, environ=env)
    assert user.status == ExitStatus.UNKNOWN and "needs root" in user.stderr


def test_apply_timeout_in_hours_is_a_usage_error(tmp_path: Path) -> None:
    root = root_k618_sample(tmp_path / "root")
    result = run_cli(
        "apply",
        "--root",
        str(root),
        "--timeout",
        "tcp_timeout_established=3h",
        environ=env_for(tmp_path),
    )
    assert result.status == ExitStatus.USAGE and "10800" in result.stderr


def test_rollback_with_an_empty_journal(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    listed = run_cli("rollback", "--list", environ=env)
    assert listed.status == ExitStatus.OK and "no change recorded" in listed.stdout
    preview = run_cli("rollback", environ=env)
    assert preview.status == ExitStatus.OK and "nothing to roll back" in preview.stdout
    missing = run_cli("rollback", "nope", environ=env)
    assert missing.status == ExitStatus.UNKNOWN and "no change set 'nope'" in missing.stderr


def test_journal_says_when_max_changed_and_the_log_is_split_there(tmp_path: Path) -> None:
    import json
    from datetime import UTC, datetime

    from ctguard.effects.journal import Journal, Step
    from ctguard.gather.journal_history import MaxEvent, last_max_change, max_events
    from ctguard.gather.kernel_log import max_periods
    from ctguard.kernel.root import KernelRoot
    from ctguard.plan.actions import SetSysctl
    from tests.fixture_roots import roots_write

    environ = env_for(tmp_path)
    state = Path(environ["CTGUARD_STATE_DIR"])
    assert last_max_change(state) is None and max_events(state) == []  # no journal yet
    journal = Journal(state)
    raise_max = SetSysctl("net.netfilter.nf_conntrack_max", "524288")
    timeout = SetSysctl("net.netfilter.nf_conntrack_udp_timeout", "30")
    change = journal.create("apply", [Step(timeout, "60\n"), Step(raise_max, "262144\n")])
    journal.save(change, "applied")
    applied_at = change.history[-1][0]
    assert last_max_change(state) == (datetime.fromtimestamp(applied_at, tz=UTC), 262144)
    journal.save(change, "rolled-back")  # put back: max was 524,288 until then
    rolled_at = change.history[-1][0]
    assert last_max_change(state) == (datetime.fromtimestamp(rolled_at, tz=UTC), 524288)
    assert max_events(state) == [
        MaxEvent(applied_at, 262144, 524288),
        MaxEvent(rolled_at, 524288, 262144),
    ]

    # a bundle booted at 1,799,999,000: lines at boot+500 s, +1500 s and +2500 s
    root = root_near_full_with_drops(tmp_path / "root")
    roots_write(root, "proc/uptime", "3000.00 3000.00\n")
    roots_write(root, "manifest.json", json.dumps({"captured_at_epoch": 1_800_002_000.0}))
    lines = [f"[{t:.6f}] nf_conntrack: table full, dropping packet\n" for t in (500, 1500, 2500)]
    roots_write(root, "cmd/dmesg.txt", "".join(lines))
    bundle = KernelRoot.from_bundle(root)
    # raised at boot+1000 s, put back at boot+2000 s: one line at each max in force
    events = [
        MaxEvent(1_800_000_000.0, 262144, 524288),
        MaxEvent(1_800_001_000.0, 524288, 262144),
    ]
    total, periods, note = max_periods(bundle, events, 262144)
    assert (total, note) == (3, "")
    assert [(p.value, p.lines, p.next_value) for p in periods] == [
        (262144, 1, 524288),
        (524288, 1, 262144),
        (262144, 1, None),
    ]
    assert periods[0].ended == "2027-01-15T08:00:00+00:00"
    # changes before this boot do not split it: one period, today's max
    old = [MaxEvent(1_799_990_000.0, 262144, 524288)]
    assert max_periods(bundle, old, 262144) == (3, (), "")
