import pytest

from ctguard.errors import ParseError
from ctguard.parse.conntrack_stats_tool import parse_conntrack_stats_tool
from ctguard.parse.stat_nf_conntrack import parse_stat_nf_conntrack
from tests.fixture_roots import STAT_HEADER_LEGACY, sample, stat_rows


def test_6x_header_maps_renamed_columns():
    parsed = parse_stat_nf_conntrack(sample("stat_nf_conntrack_k6.18.txt"))
    totals = parsed.totals()
    assert parsed.header_variant.startswith("5.15+")
    assert len(parsed.per_cpu) == 2
    assert parsed.entries == 13
    assert totals["drop"] == 0x28
    assert totals["invalid"] == 0xC8
    assert "clash_resolve" in totals and "chaintoolong" in totals
    assert "clashres" not in totals and "entries" not in totals


def test_pre_5_10_header_node_exporter_fixture():
    parsed = parse_stat_nf_conntrack(sample("stat_nf_conntrack_node_exporter.txt"))
    totals = parsed.totals()
    assert parsed.header_variant.startswith("2.6-5.9")
    assert parsed.entries == 0x21
    assert totals["invalid"] == 3 + 2 + 1 + 0x2F
    assert totals["ignore"] == 0x588A + 0x56A4 + 0x58D4 + 0x5688
    assert totals["search_restart"] == 0 + 2 + 1 + 4
    assert "searched" in totals and "delete_list" in totals


def test_legacy_16_columns():
    parsed = parse_stat_nf_conntrack(stat_rows(STAT_HEADER_LEGACY, [{"drop": 5}, {"drop": 6}]))
    assert "search_restart" not in parsed.columns
    assert parsed.totals()["drop"] == 11


def test_counters_are_summed_as_32_bit_values_without_overflow_tricks():
    parsed = parse_stat_nf_conntrack(
        stat_rows(STAT_HEADER_LEGACY, [{"drop": 0xFFFFFFFF}, {"drop": 1}])
    )
    assert parsed.totals()["drop"] == 0x100000000


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", None),
        ("bogus header\n00 00\n", 1),
        ("entries drop\n0000000a\n", 2),
        ("entries drop\n0000000a zzzz\n", 2),
    ],
)
def test_malformed_files_name_the_line(text, line):
    with pytest.raises(ParseError) as info:
        parse_stat_nf_conntrack(text, source="/x/stat")
    assert info.value.line == line
    assert "/x/stat" in info.value.message


def test_conntrack_S_6_18_sample():
    parsed = parse_conntrack_stats_tool(sample("conntrack_S_k6.18.txt"))
    totals = parsed.totals()
    assert len(parsed.per_cpu) == 2
    assert totals["drop"] == 40 and totals["invalid"] == 200
    assert "icmp_error" in totals and "error" not in totals


def test_conntrack_S_hotsos_sample_with_ignore():
    totals = parse_conntrack_stats_tool(sample("conntrack_S_hotsos_openstack.txt")).totals()
    assert totals["ignore"] == 283790 + 275739
    assert totals["search_restart"] == 9916 + 4151
    assert totals["invalid"] == 6914 + 30


def test_conntrack_S_rejects_other_text():
    with pytest.raises(ParseError) as info:
        parse_conntrack_stats_tool("cpu=0 found=1\nconntrack v1.4.7: hello\n")
    assert info.value.line == 2
