import pytest

from ctguard.errors import ParseError
from ctguard.parse.meminfo import parse_mem_total_bytes
from ctguard.parse.slabinfo import conntrack_caches, parse_slabinfo
from ctguard.parse.sysctl_dump import parse_sysctl_dump
from tests.fixture_roots import sample


def test_sysctl_dump_skips_prompts_and_noise():
    dump = parse_sysctl_dump(sample("sysctl_moooofly_lls_tengine_near_full.txt"))
    assert dump.values["net.netfilter.nf_conntrack_count"] == "65422"
    assert dump.values["net.nf_conntrack_max"] == "65536"
    assert dump.skipped_lines == 2  # the two prompt lines


def test_sysctl_dump_centos_transcript():
    dump = parse_sysctl_dump(sample("sysctl_moooofly_marksomethingdown_centos7_transcript.txt"))
    assert dump.values == {"net.nf_conntrack_max": "65536"}
    assert dump.skipped_lines > 10


def test_slabinfo_conntrack_name_variants():
    text = "\n".join(
        [
            "slabinfo - version: 2.1",
            "# name <active_objs> ...",
            "nf_conntrack 10 16 256 16 1 : tunables 0 0 0 : slabdata 1 1 0",
            "nf_conntrack_expect 0 0 216 18 1 : tunables 0 0 0 : slabdata 0 0 0",
            "nf_conntrack_ffffffff81a2b3c0 7 20 312 13 1 : tunables 0 0 0 : slabdata 1 1 0",
            "ip_conntrack 3 10 304 13 1 : tunables 0 0 0 : slabdata 1 1 0",
            "ip_conntrack_expect 0 0 136 29 1 : tunables 0 0 0 : slabdata 0 0 0",
            "kmalloc-128 1 1 128 32 1 : tunables 0 0 0 : slabdata 0 0 0",
        ]
    )
    names = [cache.name for cache in conntrack_caches(parse_slabinfo(text))]
    assert names == ["nf_conntrack", "nf_conntrack_ffffffff81a2b3c0", "ip_conntrack"]


def test_slabinfo_garbage_is_a_parse_error_with_line():
    with pytest.raises(ParseError) as info:
        parse_slabinfo("slabinfo - version: 2.1\nnf_conntrack x y z\n")
    assert info.value.line == 2


def test_meminfo():
    assert parse_mem_total_bytes("MemTotal:       24684096 kB\n") == 24684096 * 1024
    with pytest.raises(ParseError):
        parse_mem_total_bytes("MemFree: 1 kB\n")
