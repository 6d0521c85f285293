"""`ctguard explain` in-process, its values read from fixture roots."""

from ctguard.cli.env import ExitStatus
from ctguard.explain.topics import TOPICS
from tests import fixture_roots as roots


def test_no_topic_lists_them_all(cli):
    result = cli("explain", "--json")
    assert result.status == ExitStatus.OK
    assert [t["name"] for t in result.json()["topics"]] == [t.name for t in TOPICS]
    text = cli("explain").stdout
    assert "SYN_RECV" in text and "early_drop" in text and "nf_conntrack_max" in text


def test_a_counter_with_the_hosts_value(cli, tmp_path):
    root = roots.root_k618_sample(tmp_path)
    status = cli("status", "--root", str(root), "--json").json()
    result = cli("explain", "drop", "--root", str(root), "--json")
    payload = result.json()
    assert result.status == ExitStatus.OK
    assert payload["topic"] == "drop" and payload["kind"] == "per-CPU counter"
    assert payload["host"]["value"] == status["drop"] == 40
    assert "table full" in payload["text"]


def test_a_timeout_with_the_hosts_value_and_default(cli, tmp_path):
    root = roots.root_k618_sample(tmp_path)
    payload = cli("explain", "udp_timeout", "--root", str(root), "--json").json()
    assert payload["sysctl"] == "net.netfilter.nf_conntrack_udp_timeout"
    assert (payload["host"]["value"], payload["host"]["default"]) == (120, 30)
    text = cli("explain", "udp_timeout", "--root", str(root)).stdout
    assert "udp_timeout = 120 s (2m), default 30 s" in text


def test_a_state_without_a_value_reads_nothing(cli):
    payload = cli("explain", "UNTRACKED", "--json", "--root", "/nonexistent").json()
    assert payload["host"] is None and "NOTRACK" in payload["text"]


def test_unknown_topic_is_a_usage_error_with_near_matches(cli):
    result = cli("explain", "SYN_RECIEVED")
    assert result.status == ExitStatus.USAGE == 64
    assert "no topic 'SYN_RECIEVED'" in result.stderr and "SYN_RECV" in result.stderr
    assert "`ctguard explain` lists every topic" in result.stderr


def test_findings_say_which_topic_explains_them(cli, tmp_path):
    root = roots.root_k618_sample(tmp_path)
    findings = cli("status", "--root", str(root), "--json").json()["findings"]
    ct103 = next(f for f in findings if f["code"] == "CT103")
    assert ct103["explain"] == "ctguard explain drop"
    assert "what it is: ctguard explain drop" in cli("status", "--root", str(root)).stdout
