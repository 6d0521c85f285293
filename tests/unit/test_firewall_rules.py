"""Firewall rules as data: golden nftables scripts, state round trip, safety checks."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from ctguard.cli.firewall_common import parse_duration
from ctguard.errors import UsageError
from ctguard.rules.backends.nft import render_nft
from ctguard.rules.model import Block, FirewallState, NotrackRule, Trace
from ctguard.rules.safety import Protected, check_block_targets, parse_targets

GOLDEN = Path(__file__).parent.parent / "golden" / "firewall"
NOW = 1_800_000_000.0

STATES = {
    "empty": FirewallState(),
    "notrack-web": FirewallState(notrack=(NotrackRule("tcp", (80, 443)),)),
    "notrack-dns-iface-peer": FirewallState(
        notrack=(
            NotrackRule("udp", (53,), "eth0", "192.0.2.0/24"),
            NotrackRule("any", (123,), None, "2001:db8::/32"),
        )
    ),
    "block-mixed": FirewallState(
        blocks=(
            Block("203.0.113.7/32", NOW - 10, NOW + 3600, 'syn "flood"'),
            Block("198.51.100.0/24", NOW - 10, None, ""),
            Block("2001:db8:dead::/48", NOW - 10, NOW + 600, "scan"),
            Block("192.0.2.1/32", NOW - 100, NOW - 1, "expired: not rendered"),
        )
    ),
    "block-qualified": FirewallState(
        blocks=(
            Block("50.2.6.12/32", NOW - 10, NOW + 3600, "resolver replies", "udp", 53),
            Block("50.2.6.0/24", NOW - 10, None, "", "tcp", None, 443),
            Block("2001:db8::/64", NOW - 10, NOW + 600, "", "sctp", 5000, 6000),
            Block("2001:db8:1::7/128", NOW - 10, None, "", "icmpv6"),
            Block("198.51.100.9/32", NOW - 10, NOW + 60, "every packet"),
            Block("198.51.100.7/32", NOW - 10, None, "", "icmp"),
        )
    ),
    "trace": FirewallState(trace=Trace(NOW + 600, "10.0.0.0/8", 53, "udp", 5)),
    "trace-qualified": FirewallState(
        trace=Trace(NOW + 600, "2001:db8::/32", 53, "any", 5, "2001:db8:1::/48", 1024)
    ),
    "trace-icmp": FirewallState(trace=Trace(NOW + 600, None, None, "icmp", 5, "192.0.2.1/32")),
    "everything": FirewallState(
        notrack=(NotrackRule("tcp", (8080,)),),
        blocks=(Block("203.0.113.9/32", NOW, NOW + 60, "x"),),
        trace=Trace(NOW + 60),
    ),
}


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("name", sorted(STATES))
def test_nft_scripts_match_golden_files(name: str) -> None:
    golden(f"{name}.nft", render_nft(STATES[name], NOW))


def test_empty_state_deletes_the_table_and_nothing_else() -> None:
    assert render_nft(FirewallState(), NOW) == "table inet ctguard\ndelete table inet ctguard\n"
    expired = FirewallState(trace=Trace(NOW - 1))
    assert render_nft(expired, NOW) == render_nft(FirewallState(), NOW)


def test_blocks_drop_at_raw_priority_and_notrack_in_raw_chains() -> None:
    script = render_nft(STATES["everything"], NOW)
    prerouting = script.split("chain prerouting {")[1].split("}")[0]
    assert "priority raw" in prerouting and "@block4 counter drop" in prerouting
    assert "th dport 8080 notrack" in prerouting and "th sport 8080 notrack" in prerouting
    trace = script.split("chain trace {")[1]
    assert "priority mangle" in trace and "ct state new" in trace  # after conntrack


def test_state_round_trips_through_json() -> None:
    for state in STATES.values():
        assert FirewallState.from_dict(state.to_dict()) == state


def test_live_drops_expired_blocks_and_trace() -> None:
    live = STATES["block-mixed"].live(NOW)
    assert [b.network for b in live.blocks] == [
        "203.0.113.7/32",
        "198.51.100.0/24",
        "2001:db8:dead::/48",
    ]


PROTECTED = [
    Protected(ipaddress.ip_network("127.0.0.0/8"), "loopback"),
    Protected(ipaddress.ip_network("10.77.0.2/32"), "an address of eth0"),
    Protected(ipaddress.ip_network("10.77.0.1/32"), "the default gateway"),
    Protected(ipaddress.ip_network("192.0.2.50/32"), "the SSH client of this session"),
]


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("10.77.0.1", "default gateway"),
        ("10.77.0.0/24", "eth0"),
        ("10.77.0.2", "eth0"),
        ("192.0.2.0/24", "SSH client"),
    ],
)
def test_protected_addresses_are_never_blocked(target: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        check_block_targets(parse_targets([target]), PROTECTED, force=True)


def test_wide_ranges_need_force() -> None:
    with pytest.raises(UsageError, match="wider than /8"):
        check_block_targets(parse_targets(["100.0.0.0/7"]), PROTECTED, force=False)
    with pytest.raises(UsageError, match="wider than /32"):
        check_block_targets(parse_targets(["2001:db8::/31"]), PROTECTED, force=False)
    check_block_targets(parse_targets(["100.0.0.0/7"]), PROTECTED, force=True)
    check_block_targets(parse_targets(["203.0.113.7,2001:db8::1"]), PROTECTED, force=False)


def test_bad_targets_and_durations_are_clear_errors() -> None:
    with pytest.raises(UsageError, match="not an IP address"):
        parse_targets(["example.com"])
    assert parse_duration("90s", "--ttl") == 90
    assert parse_duration("2d", "--ttl") == 172800
    assert parse_duration("never", "--ttl") is None
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration("1 hour", "--ttl")


class FakeReader:
    """Rules in place for the planner: one existing raw rule of the host's own."""

    def nft_table_exists(self) -> bool:
        return False

    def iptables_save(self, tool: str, table: str) -> str:
        host_rule = "-A PREROUTING -p udp -m udp --dport 9 -j CT --notrack\n"
        return (
            f"# Generated by {tool}-save v1.8.9 (nf_tables) on Sun Nov 22 10:00:00 2026\n"
            f"*{table}\n:PREROUTING ACCEPT [10:600]\n:OUTPUT ACCEPT [0:0]\n"
            + (host_rule if table == "raw" else "")
            + "COMMIT\n# Completed on Sun Nov 22 10:00:00 2026\n"
        )

    def ipset_exists(self, name: str) -> bool:
        return False


@pytest.mark.parametrize("name", sorted(STATES))
def test_iptables_plans_match_golden_files(name: str, tmp_path: Path) -> None:
    from dataclasses import replace

    from ctguard.plan.actions import LoadIpset, LoadIptables
    from ctguard.plan.firewall import FirewallTarget, plan_firewall

    state = replace(STATES[name], backend="iptables")
    plan = plan_firewall(FirewallTarget(None, tmp_path), state, NOW, title="t", reader=FakeReader())
    parts = []
    for action in plan.actions:
        if isinstance(action, LoadIptables):
            parts.append(f"### {action.tool}-restore\n{action.content}")
            assert "-A PREROUTING -p udp -m udp --dport 9 -j CT --notrack" in action.content or (
                action.table == "mangle"
            )  # the host's own rule is kept
        elif isinstance(action, LoadIpset):
            parts.append(f"### ipset {action.name}\n{action.script}")
    golden(f"{name}.iptables", "".join(parts))


def test_iptables_chains_are_recognised_and_replaced_not_duplicated() -> None:
    from ctguard.rules.backends.iptables import merge_save, render_iptables_part

    state = STATES["notrack-web"]
    part = render_iptables_part(state, NOW, 4, "raw")
    once = merge_save(FakeReader().iptables_save("iptables", "raw"), "raw", part)
    saved_form = once.replace("-I PREROUTING 1 -j CTGUARD-PRE", "-A PREROUTING -j CTGUARD-PRE")
    twice = merge_save(saved_form, "raw", part)
    assert twice.count("-j CTGUARD-PRE") == 1 and twice.count(":CTGUARD-PRE") == 1
    emptied = merge_save(saved_form, "raw", [])
    assert "CTGUARD" not in emptied and "--dport 9" in emptied


def test_block_merging_never_leaves_overlapping_intervals() -> None:
    from ctguard.rules.model import merge_blocks

    old_net = Block("10.9.0.0/24", NOW - 60, NOW + 60, "old")
    old_host = Block("10.8.0.5/32", NOW - 60, NOW + 60, "old")
    inside = Block("10.9.0.5/32", NOW, NOW + 3600, "new")
    wider = Block("10.8.0.0/16", NOW, NOW + 3600, "new")
    blocks, notes = merge_blocks((old_net, old_host), (inside, wider, wider))
    assert [b.network for b in blocks] == ["10.9.0.0/24", "10.8.0.0/16"]
    assert notes == [
        "10.9.0.5/32 is already blocked by 10.9.0.0/24 (its expiry stays); "
        "unblock 10.9.0.0/24 first to block it on its own"
    ]
    again, _ = merge_blocks(blocks, (Block("10.8.0.0/16", NOW, None, "renewed"),))
    assert [(b.network, b.expires) for b in again] == [
        ("10.9.0.0/24", NOW + 60),
        ("10.8.0.0/16", None),
    ]


def test_a_version_1_state_file_is_read_and_written_back_as_version_2() -> None:
    v1 = {
        "version": 1,
        "notrack": [],
        "blocks": [{"network": "203.0.113.7/32", "added": NOW, "expires": None, "reason": "x"}],
        "trace": {"expires": NOW + 60, "src": None, "dport": 53, "proto": "udp"},
        "backend": "nft",
    }
    state = FirewallState.from_dict(v1)
    assert state.blocks == (Block("203.0.113.7/32", NOW, None, "x"),)
    assert not state.blocks[0].qualified  # a version 1 block drops every packet
    assert state.trace == Trace(NOW + 60, None, 53, "udp")
    assert state.to_dict()["version"] == 2
    assert state.to_dict()["blocks"][0]["proto"] is None
    with pytest.raises(ValueError, match="newer"):
        FirewallState.from_dict({**v1, "version": 99})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["block", "203.0.113.7", "--sport", "53"], "--sport needs a protocol with ports"),
        (["block", "203.0.113.7", "--proto", "icmp", "--dport", "1"], "--proto icmp has none"),
        (["block", "2001:db8::1", "--proto", "icmp"], "only for IPv4"),
        (["block", "203.0.113.7", "--proto", "udp", "--sport", "70000"], "not a port"),
        (["unblock", "203.0.113.7", "--dport", "443"], "--dport needs a protocol"),
        (["trace", "--proto", "gre", "--sport", "1"], "--proto gre has none"),
        (["trace", "--src", "10.0.0.0/8", "--dst", "2001:db8::/32"], "different IP versions"),
    ],
)
def test_ports_without_a_protocol_that_has_them_are_usage_errors(
    argv: list[str], message: str
) -> None:
    from ctguard.cli.env import ExitStatus
    from tests.conftest import run_cli

    result = run_cli(*argv)
    assert result.status == ExitStatus.USAGE == 64
    assert message in result.stderr


def test_blocks_of_different_protocols_or_ports_do_not_merge() -> None:
    from ctguard.rules.model import merge_blocks

    plain = Block("10.9.0.0/24", NOW, None)
    udp53 = Block("10.9.0.5/32", NOW, None, "", "udp", 53)
    tcp = Block("10.9.0.5/32", NOW, None, "", "tcp", 53)
    wider_udp53 = Block("10.9.0.0/16", NOW, None, "", "udp", 53)
    blocks, notes = merge_blocks((plain, udp53), (tcp, wider_udp53))
    assert blocks == (plain, wider_udp53, tcp) and notes == []
    assert udp53.label() == "10.9.0.5/32 udp sport 53"


def test_conntrack_deletion_matches_the_qualified_block() -> None:
    from ctguard.plan.firewall import conntrack_match

    assert conntrack_match(None, None, None) == ()
    assert conntrack_match("udp", 53, None) == ("-p", "udp", "--sport", "53")
    assert conntrack_match("tcp", None, 443) == ("-p", "tcp", "--dport", "443")
    assert conntrack_match("esp", None, None) is None  # conntrack cannot select it
