"""`ctguard explain` topics: complete, consistent with the rest of ctguard, findable."""

import re
from pathlib import Path

import pytest

from ctguard.explain.topics import TOPICS, find_topic, near_matches, normalize
from ctguard.kernel.snapshot import SETTING_KEYS
from ctguard.model.findings import FINDING_TOPICS, Finding, Severity
from ctguard.model.kernel_defaults import TIMEOUT_DEFAULTS
from ctguard.parse.stat_nf_conntrack import HEADER_ALIASES

DOCS = Path(__file__).resolve().parents[2] / "docs"

REQUIRED = [
    *("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"),
    *("SYN_SENT", "SYN_RECV", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"),
    *("ASSURED", "UNREPLIED"),
    *("early_drop", "drop", "insert_failed", "clash_resolve", "search_restart"),
    *("chaintoolong", "invalid"),
    *("nf_conntrack_max", "nf_conntrack_count", "nf_conntrack_buckets"),
]


@pytest.mark.parametrize("name", REQUIRED)
def test_every_topic_an_operator_meets_is_there(name):
    assert find_topic(name) is not None


def test_every_timeout_and_setting_ctguard_reads_is_a_topic():
    for key in TIMEOUT_DEFAULTS:
        topic = find_topic(key)
        assert topic is not None and topic.sysctl == f"net.netfilter.nf_conntrack_{key}", key
        assert str(TIMEOUT_DEFAULTS[key].current) in topic.text
    for key in SETTING_KEYS:
        assert find_topic(f"nf_conntrack_{key}") is not None, key


def test_names_do_not_collide_once_normalized():
    keys = [normalize(key) for topic in TOPICS for key in (topic.name, *topic.aliases)]
    assert len(keys) == len(set(keys))


def test_every_reference_is_a_topic():
    for topic in TOPICS:
        for name in topic.see_also:
            assert find_topic(name) is not None, (topic.name, name)
    for code, name in FINDING_TOPICS.items():
        assert find_topic(name) is not None and find_topic(name).name == name, code


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        (
            "net.netfilter.nf_conntrack_tcp_timeout_established",
            "nf_conntrack_tcp_timeout_established",
        ),
        ("tcp_timeout_established", "nf_conntrack_tcp_timeout_established"),
        ("ip_conntrack_max", "nf_conntrack_max"),
        ("max", "nf_conntrack_max"),
        ("[ASSURED]", "ASSURED"),
        ("syn-recv", "SYN_RECV"),
        ("time_wait", "TIME_WAIT"),
        ("clashres", "clash_resolve"),
        ("chainlength", "chaintoolong"),
        ("invalid", "INVALID"),
    ],
)
def test_names_as_operators_type_them(typed, name):
    assert find_topic(typed).name == name


def test_near_matches_for_typos():
    assert near_matches("syn_rcv")[0] == "SYN_RECV"
    assert "early_drop" in near_matches("earlydrop")
    assert near_matches("zzzz") == []


def test_counter_aliases_follow_the_procfs_parser():
    for alias, canonical in HEADER_ALIASES.items():
        assert find_topic(alias).name == canonical


def test_findings_point_to_their_topic():
    finding = Finding("CT104", Severity.WARN, "t", "e")
    assert finding.explain == "ctguard explain early_drop"
    assert finding.to_json()["explain"] == "ctguard explain early_drop"
    assert Finding("CT509", Severity.INFO, "t", "e").explain == ""


def test_findings_doc_names_each_topic():
    text = (DOCS / "findings.md").read_text()
    for code, name in FINDING_TOPICS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {code} "))
        assert f"`ctguard explain {name}`" in row, code
    documented = set(re.findall(r"^\| (CT\d{3}) ", text, re.M))
    assert set(FINDING_TOPICS) <= documented
