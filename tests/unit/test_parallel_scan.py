"""A file scanned by several processes: failures in a child reach the caller."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from array import array
from pathlib import Path
from typing import Any

import pytest
from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.errors import ParseError
from ctguard.kernel import range_scan
from ctguard.kernel.table_source import TableSource, scan_table
from ctguard.parse.table_scan import ScanSpec

SPEC = ScanSpec(columns=("src",), tallies=(("src",),))


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 KiB: a small dump is many blocks, as a large one is."""
    monkeypatch.setattr(range_scan, "BLOCK_BYTES", 4096)


@pytest.fixture
def dump(tmp_path: Path) -> TableSource:
    path = tmp_path / "dump.txt"
    path.write_text("".join(render_entry(e, "procfs") + "\n" for e in generate_entries(2000, 5)))
    return TableSource(str(path), "file", path=path)


def _in_children(action: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every process but this one (the children) do ``action`` first."""
    original = range_scan.scan_blocks
    parent = os.getpid()

    def scan_blocks(*args: Any) -> Any:
        if os.getpid() != parent:
            action()
        return original(*args)

    monkeypatch.setattr(range_scan, "scan_blocks", scan_blocks)


def test_children_results_add_up(dump: TableSource) -> None:
    one = scan_table(dump, SPEC, workers=1)
    three = scan_table(dump, SPEC, workers=3)
    assert three.entries == one.entries == 2000
    assert three.tallies[("src",)].counts == one.tallies[("src",)].counts


def test_blocks_scanned_in_any_order_by_any_process_count_as_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bad lines here and there, blank lines, a line longer than several
    blocks (and than a line may be), no newline at the end: entries, line
    numbers and tallies are those of one process reading the file in order,
    whichever process claims which block."""
    lines = [render_entry(e, "procfs") for e in generate_entries(900, 11)]
    lines[5] = "hello"
    lines[300] = ""
    lines[301] = "x" * 20_000 + " src=1.2.3.4 dst=1.2.3.4"  # through five blocks
    lines[302] = "y" * 70_000  # past the 64 KiB a line may hold
    lines[650] = lines[650][:60]
    path = tmp_path / "dump.txt"
    path.write_text("\n".join(lines))  # the last line without its newline
    source = TableSource(str(path), "file", path=path)
    spec = ScanSpec(columns=("proto", "state", "src"), tallies=(("src",), ("proto", "state")))
    one = scan_table(source, spec, workers=1)
    assert one.entries == 895 and one.blank == 1
    assert [line for line, _, _ in one.skipped.examples] == [6, 302, 303, 651]
    mine: list[int] = []  # blocks this process scanned (the children's are theirs)
    original = range_scan._scan_block

    def note_block(scanner: Any, handle: Any, start: int, end: int) -> None:
        mine.append(start)
        original(scanner, handle, start, end)

    monkeypatch.setattr(range_scan, "_scan_block", note_block)
    blocks = -(-path.stat().st_size // 4096)
    for workers, wait in ((2, None), (3, None), (2, lambda: time.sleep(0.2))):
        mine.clear()
        many = scan_table(source, spec, workers=workers, while_waiting=wait)
        assert (many.entries, many.lines, many.blank) == (one.entries, one.lines, one.blank)
        assert many.skipped.examples == one.skipped.examples
        assert many.skipped.reasons == one.skipped.reasons
        for columns in spec.tallies:
            assert many.tallies[columns].counts == one.tallies[columns].counts
        assert len(set(mine)) == len(mine) < blocks  # a child took the rest


def test_a_line_longer_than_one_read_across_a_block_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line of 150 KiB from the first block into the second: its end is
    found however many reads it takes, so it is one bad line, and the
    entries after it in the second block count."""
    monkeypatch.setattr(range_scan, "BLOCK_BYTES", 128 << 10)
    entries = [render_entry(e, "procfs") for e in generate_entries(1200, 4)]
    path = tmp_path / "dump.txt"
    path.write_text("\n".join([*entries[:200], "z" * (150 << 10), *entries[200:]]) + "\n")
    source = TableSource(str(path), "file", path=path)
    assert path.stat().st_size > 2 * (128 << 10)
    for workers in (1, 2):
        result = scan_table(source, SPEC, workers=workers)
        assert (result.entries, result.skipped.count) == (1200, 1)
        assert result.skipped.examples[0][0] == 201


def test_the_key_budget_holds_in_every_process_and_through_the_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tally of (nearly) all-distinct keys, across three processes and with
    slices small enough that the merge has to prune between them."""
    from ctguard.analyze.table_analysis import ANALYZE_SPEC, T_PORT_CLASS, build_profile
    from ctguard.parse import table_scan
    from ctguard.parse.table_scan import ScanResult, key_bytes

    path = tmp_path / "flood.txt"
    entries = list(generate_entries(6000, 9, v6_share=0.5))
    path.write_text("".join(render_entry(e, "procfs") + "\n" for e in entries))
    budget = 40_000
    spec = dataclasses.replace(ANALYZE_SPEC, key_budget=budget)
    peaks: list[int] = []
    fit = ScanResult.fit_budget

    def fit_and_measure(self: ScanResult) -> None:
        fit(self)
        peaks.append(sum(len(t.counts) * key_bytes(k) for k, t in self.tallies.items()))

    merge = ScanResult.merge_keys

    def merge_and_measure(self: ScanResult, *args: Any, **kwargs: Any) -> None:
        merge(self, *args, **kwargs)
        peaks.append(sum(len(t.counts) * key_bytes(k) for k, t in self.tallies.items()))

    monkeypatch.setattr(ScanResult, "fit_budget", fit_and_measure)
    monkeypatch.setattr(ScanResult, "merge_keys", merge_and_measure)
    monkeypatch.setattr(table_scan, "PRUNE_SLICE", 50)
    source = TableSource(str(path), "file", path=path)
    three = scan_table(source, spec, workers=3)
    assert three.entries == 6000 and len(peaks) > 10 and max(peaks) <= budget
    assert three.tallies[T_PORT_CLASS].pruned_entries > 0
    profile = build_profile("test", three)
    assert sum(profile.by_proto.values()) == 6000  # totals exact all the same
    assert profile.assured == sum(1 for e in entries if e.status == "ASSURED")


def test_a_child_exception_is_raised_here(
    dump: TableSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail() -> None:
        raise OSError(5, "Input/output error")

    _in_children(fail, monkeypatch)
    with pytest.raises(ParseError, match=r"cannot read the table: .*Input/output error"):
        scan_table(dump, SPEC, workers=3)
    _assert_no_child_left()


def test_a_killed_child_is_an_error_not_a_short_count(
    dump: TableSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    _in_children(lambda: os.kill(os.getpid(), signal.SIGKILL), monkeypatch)
    with pytest.raises(ParseError, match="killed by signal 9"):
        scan_table(dump, SPEC, workers=2)
    _assert_no_child_left()


def _assert_no_child_left() -> None:
    with pytest.raises(ChildProcessError):  # every child was waited for: no zombie
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize(
    "counts",
    [
        {b"10.0.0.1": 3, b"": 1, b"2001:0db8:0000:0000:0000:0000:0000:0001": 2**40},
        {b"": 7},
        {(b"tcp", b"ESTABLISHED"): 5, (b"udp", b""): 1},
        {b"a\nb": 1, b"c": 2},  # a newline in a key: sent as a list instead
    ],
)
def test_a_slice_of_a_tally_comes_back_as_it_was_sent(counts: dict[Any, int]) -> None:
    keys = list(counts)
    packed, numbers = range_scan.pack_slice(keys, array("q", counts.values()))
    assert isinstance(packed, bytes) == all(
        isinstance(key, bytes) and b"\n" not in key for key in keys
    )
    assert dict(range_scan.unpack_slice(packed, numbers)) == counts


def test_while_waiting_runs_once_before_this_process_s_blocks_and_the_merge(
    dump: TableSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    merge = range_scan._merge_child_result

    def merge_and_note(*args: Any) -> Any:
        events.append("merge")
        return merge(*args)

    monkeypatch.setattr(range_scan, "_merge_child_result", merge_and_note)
    result = scan_table(dump, SPEC, workers=2, while_waiting=lambda: events.append("waiting"))
    assert events == ["waiting", "merge"] and result.entries == 2000
    events.clear()
    scan_table(dump, SPEC, workers=1, while_waiting=lambda: events.append("waiting"))
    assert events == []


def test_a_scan_forks_only_when_its_caller_asks(
    dump: TableSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running caller (threads) gets a scan in its own process by
    default, whatever the file's size; "auto" and N ask for workers."""
    forks: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(range_scan, "PARALLEL_MIN_BYTES", 1024)  # the dump is "large"
    monkeypatch.setattr(os, "fork", fork)
    alone = scan_table(dump, SPEC)
    assert forks == [] and alone.entries == 2000
    assert scan_table(dump, SPEC, workers="auto").entries == 2000
    expected = min(range_scan.MAX_WORKERS, len(os.sched_getaffinity(0))) - 1
    assert len(forks) == expected
    assert scan_table(dump, SPEC, workers=3).entries == 2000
    assert len(forks) == expected + 2


def test_the_block_scan_and_the_source_import_no_circle() -> None:
    """range_scan and table_chunks never import table_source (it imports them)."""
    import ast
    import inspect

    from ctguard.kernel import table_chunks

    for module in (range_scan, table_chunks):
        tree = ast.parse(inspect.getsource(module))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module is not None
        }
        imported |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert "ctguard.kernel.table_source" not in imported, module.__name__
