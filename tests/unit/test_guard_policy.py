"""The guard's TOML policy: defaults, durations, overrides, and refusals naming the line."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from ctguard.errors import ParseError
from ctguard.guard.policy import Policy, parse_duration_value, parse_policy

EXAMPLE = Path(__file__).parents[2] / "etc" / "guard.toml"


def test_the_shipped_example_is_the_defaults() -> None:
    policy = parse_policy(EXAMPLE.read_text(), str(EXAMPLE))
    defaults = Policy()
    assert (policy.detect, policy.ban, policy.allow, policy.service) == (
        defaults.detect,
        defaults.ban,
        defaults.allow,
        defaults.service,
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("30s", 30.0), ("10m", 600.0), ("4h", 14400.0), ("1d", 86400.0), ("90", 90.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration_value(value) == seconds


def test_values_and_overrides() -> None:
    text = """
[detect]
new_flows_per_source = 200
[ban]
duration = "30s"
max_duration = "4h"
[allow]
networks = ["192.0.2.0/24", "2001:db8::1"]
[netns.web.detect]
new_flows_per_source = 5000
[netns.web.allow]
networks = ["198.51.100.7"]
"""
    policy = parse_policy(text, "g.toml")
    assert policy.detect.new_flows_per_source == 200
    assert policy.ban.duration == 30.0 and policy.ban.max_duration == 14400.0
    web = policy.for_netns("web")
    assert web.detect.new_flows_per_source == 5000
    assert web.ban.duration == 30.0  # not overridden: the file's value
    assert ipaddress.ip_network("198.51.100.7/32") in web.allow.networks
    assert ipaddress.ip_network("192.0.2.0/24") in web.allow.networks
    assert policy.for_netns("other").detect.new_flows_per_source == 200


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("[detect]\nsustain = 2\nnew_flows_per_sorce = 3\n", 3, "detect.new_flows_per_sorce"),
        ("# c\n[ban]\n\nduration = '10x'\n", 4, "ban.duration"),
        ('[allow]\nnetworks = ["10.0.0.300/24"]\n', 2, "allow.networks"),
        ("[netns.web.ban]\nduration = 5\nmax_per_minute = 0\n", 3, "netns.web.ban.max_per_minute"),
        ("[netns.web]\ndetect.sustain = 0\n", 2, "netns.web.detect.sustain"),
        ("[detect]\ntable_share = 1.5\n", 2, "detect.table_share"),
        ("[ban]\ndelete_entries = 1\n", 2, "ban.delete_entries"),
        ("[ban]\nduration = '1h'\nmax_duration = '10m'\n", 3, "ban.max_duration"),
        ("[detct]\nx = 1\n", 1, "detct"),
    ],
)
def test_a_bad_policy_names_file_line_and_key(text: str, line: int, key: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_policy(text, "/etc/ctguard/guard.toml")
    assert caught.value.line == line
    assert f"key {key}" in caught.value.what
    assert "/etc/ctguard/guard.toml" in caught.value.where


def test_bad_toml_names_the_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse_policy("[detect]\n\nsustain = = 2\n", "g.toml")
    assert caught.value.line == 3
