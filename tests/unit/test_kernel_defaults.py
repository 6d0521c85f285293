import pytest

from ctguard.model.kernel_defaults import (
    default_sizing_modern,
    default_sizing_pre_5_15,
    humanize_seconds,
    ratio_meaning,
)

GIB = 1024**3


@pytest.mark.parametrize(
    ("mem", "buckets", "max_entries"),
    [
        (24684096 * 1024, 262144, 262144),  # LIVE: 23.5 GiB VM -> 262144 / 262144
        (8 * GIB, 262144, 262144),
        (4 * GIB, 65536, 65536),  # not > 4 GiB
        (2 * GIB, 65536, 65536),
        (GIB, 8192, 8192),  # RAM/16384/8
        (512 * 1024**2, 4096, 4096),
        (64 * 1024**2, 1024, 1024),  # floor 1024
    ],
)
def test_modern_defaults(mem, buckets, max_entries):
    sizing = default_sizing_modern(mem)
    assert (sizing.buckets, sizing.max) == (buckets, max_entries)


@pytest.mark.parametrize(
    ("mem", "buckets", "max_entries"),
    [
        (8 * GIB, 65536, 262144),
        (2 * GIB, 16384, 65536),  # the famous 65536: any 1-4 GiB box before 5.15
        (GIB, 8192, 32768),  # RAM/32768 below the caps
    ],
)
def test_pre_5_15_defaults(mem, buckets, max_entries):
    sizing = default_sizing_pre_5_15(mem)
    assert (sizing.buckets, sizing.max) == (buckets, max_entries)


def test_32_bit_formula_uses_pointer_size():
    assert default_sizing_modern(512 * 1024**2, bits=32).buckets == 8192


def test_ratio_meanings():
    assert ratio_meaning(262144, 262144).startswith("1:1")
    assert ratio_meaning(65536, 16384).startswith("4:1")
    assert ratio_meaning(65536, 8192).startswith("8:1")
    assert "without resizing" in ratio_meaning(1_000_000, 16384)


def test_humanize_seconds_are_seconds():
    assert humanize_seconds(432000) == "5d"
    assert humanize_seconds(180) == "3m"
    assert humanize_seconds(3600) == "1h"
    assert humanize_seconds(90) == "1m30s"
