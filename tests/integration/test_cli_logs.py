"""`ctguard logs` in-process: files, stdin, bundles, JSON keys, exit codes."""

import gzip
import json

from ctguard.cli.env import ExitStatus
from tests.fixture_roots import SAMPLES, roots_write


def test_logs_json_keys_on_sample(cli):
    result = cli("logs", str(SAMPLES / "kernlog_dmesg_k6.18_netns.txt"), "--json")
    payload = result.json()
    assert result.status == ExitStatus.WARN
    assert payload["table_full_lines"] == 59 and payload["suppressed"] == 0
    assert [e["netns"] for e in payload["episodes"]] == [4026532246, 4026532317, 4026532386]
    first = payload["episodes"][0]
    assert {"start", "end", "lines", "netns"} <= set(first)
    assert first["start"] == "boot+177.957s" and first["lines"] == 40
    assert payload["time_basis"] == "relative"


def test_logs_from_stdin_and_gz(cli, tmp_path):
    text = (SAMPLES / "kernlog_moooofly_marksomethingdown_dmesg.txt").read_text()
    assert cli("logs", "-", "--json", stdin=text).json()["table_full_lines"] == 5
    gz = tmp_path / "kern.log.1.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(text)
    assert cli("logs", str(gz), "--json").json()["table_full_lines"] == 5


def test_no_episodes_is_exit_0(cli):
    result = cli("logs", str(SAMPLES / "kernlog_hotsos_journal_no_conntrack_distractor.txt"))
    assert result.status == ExitStatus.OK
    assert "no 'table full" in result.stdout


def test_text_output_shows_episode_table(cli):
    result = cli(
        "logs", str(SAMPLES / "kernlog_moooofly_100w_net_ratelimit_orphaned_distractor.txt")
    )
    assert "4 'table full' lines in 1 episode(s)" in result.stdout
    assert "not attributed to conntrack" in result.stdout


def test_missing_file_is_a_clear_error(cli, tmp_path):
    result = cli("logs", str(tmp_path / "nope.log"))
    assert result.status == ExitStatus.UNKNOWN and "log file not found" in result.stderr


def test_bad_time_is_a_usage_error(cli):
    result = cli("logs", "-", "--since", "yesterday-ish")
    assert result.status == ExitStatus.USAGE and "ISO 8601" in result.stderr


def test_bundle_dmesg_gets_wall_clock(cli, tmp_path):
    roots_write(tmp_path, "proc/uptime", "1000.00 1800.00\n")
    roots_write(
        tmp_path, "cmd/dmesg.txt", "[  900.000000] nf_conntrack: table full, dropping packet\n"
    )
    roots_write(tmp_path, "manifest.json", json.dumps({"captured_at_epoch": 1_800_000_000.0}))
    payload = cli("logs", "--root", str(tmp_path), "--json").json()
    assert payload["time_basis"] == "boot"
    # boot = captured - uptime; the line is 900 s after boot = 100 s before capture
    assert payload["episodes"][0]["start"] == "2027-01-15T07:58:20+00:00"
