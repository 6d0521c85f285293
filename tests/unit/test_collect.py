"""The collection core (per namespace, per source) and the kernel-log tally."""

from pathlib import Path

import pytest

from ctguard.errors import SourceMissing
from ctguard.gather.collect import Collector
from ctguard.gather.kmsg_follow import KmsgFollower, KmsgTally, record_message
from ctguard.kernel.root import KernelRoot
from ctguard.model.collection import SOURCE_COUNTERS, SOURCE_SLABINFO, SOURCE_SYSCTL
from tests.fixture_roots import root_near_full_with_drops, root_no_conntrack


def test_bundle_round_reads_size_counters_and_memory(tmp_path: Path) -> None:
    root = KernelRoot.from_bundle(root_near_full_with_drops(tmp_path))
    collection = Collector(root, clock=lambda: 1234.5).collect()
    (sample,) = collection.samples
    assert (sample.label, sample.own, sample.taken_at) == ("host", True, 1234.5)
    assert (sample.count, sample.max, sample.buckets) == (65422, 65536, 16384)
    assert sample.counters is not None
    assert sample.counters["drop"] == 1234 and sample.counters["early_drop"] == 312
    assert "entries" not in sample.counters  # the count, repeated per CPU: not a counter
    # 256 B slab object + 128 B extensions per entry, 8 B per bucket
    assert collection.bytes_per_entry == 384 and collection.entry_size_measured
    assert sample.memory_at_max_bytes == 65536 * 384 + 16384 * 8
    assert [s.source for s in sample.sources] == [SOURCE_SYSCTL, SOURCE_COUNTERS]
    assert all(s.success and s.seconds >= 0 for s in sample.sources)
    assert collection.sources[0].source == SOURCE_SLABINFO
    assert collection.kernel_release == "4.4.0-1052-aws"


def test_no_conntrack_is_an_answer_not_a_failure(tmp_path: Path) -> None:
    root = KernelRoot.from_bundle(root_no_conntrack(tmp_path))
    (sample,) = Collector(root).collect().samples
    assert sample.max is None and sample.counters is None
    assert [(s.source, s.success) for s in sample.sources] == [(SOURCE_SYSCTL, True)]


def test_missing_slabinfo_assumes_an_entry_size(tmp_path: Path) -> None:
    base = root_near_full_with_drops(tmp_path)
    (base / "proc/slabinfo").unlink()
    collection = Collector(KernelRoot.from_bundle(base)).collect()
    slab = collection.sources[0]
    assert not slab.success and slab.error
    assert collection.bytes_per_entry == 384 and not collection.entry_size_measured


def test_unknown_namespace_fails_at_start() -> None:
    with pytest.raises(SourceMissing):
        Collector(specs=["ctguard-no-such-netns-xyz"])


KMSG = "6,{seq},{usec},-;{msg}"


def test_tally_counts_per_namespace_and_leaves_lab_lines_out() -> None:
    tally = KmsgTally()
    # a lab run marked before the follower started: learnt, not counted
    tally.feed("ctguard-lab: run=abc123 netns=4026532999 added", count=False)
    tally.feed("nf_conntrack: nf_conntrack: table full in netns 4026532999, dropping packet")
    tally.feed("nf_conntrack: nf_conntrack: table full in netns 4026532111, dropping packet")
    tally.feed("nf_conntrack: nf_conntrack: table full in netns 4026532111, dropping packet")
    tally.feed("nf_conntrack: table full, dropping packet")
    tally.feed("net_ratelimit: 17 callbacks suppressed")
    tally.feed("ctguard-lab: run=abc123 closed")
    # after the run closed, a new namespace reusing the inode is an operator's own
    tally.feed("nf_conntrack: nf_conntrack: table full in netns 4026532999, dropping packet")
    counts = tally.counts()
    assert counts.table_full == {4026532111: 2, None: 1, 4026532999: 1}
    assert counts.lab_lines == 1 and counts.suppressed == 17 and counts.records == 7


def test_tally_ignores_old_records_and_other_messages() -> None:
    tally = KmsgTally()
    tally.feed("nf_conntrack: table full, dropping packet", count=False)
    tally.feed("audit: kauditd hold queue overflow")
    assert tally.counts().table_full == {} and tally.counts().records == 1


def test_record_message_drops_prefix_and_continuation_lines() -> None:
    record = b"4,1234,5678,-;nf_conntrack: table full, dropping packet\n SUBSYSTEM=net\n"
    assert record_message(record) == "nf_conntrack: table full, dropping packet"


def test_follower_reads_a_fifo_from_its_start(tmp_path: Path) -> None:
    """A FIFO stands in for /dev/kmsg: one write() per record, read without blocking."""
    import os

    fifo = tmp_path / "kmsg"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(writer, b"6,1,1,-;nf_conntrack: table full, dropping packet\n")
        follower = KmsgFollower(str(fifo))
        follower.open()  # drains what was there before: not counted
        os.write(writer, b"6,2,2,-;nf_conntrack: table full in netns 7, dropping packet\n")
        follower.poll_once(2.0)
        assert follower.tally.counts().table_full == {7: 1}
        follower.stop()
    finally:
        os.close(writer)


def test_follower_missing_device_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceMissing):
        KmsgFollower(str(tmp_path / "nope")).open()
