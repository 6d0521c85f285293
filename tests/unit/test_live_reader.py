"""The live table's `cat` reader, started ahead of the scan (reading_started).

A TableSource of kind "live-procfs" whose path is a sample dump goes through
exactly the code the live table does: a `cat` child, its output channel,
the exit check and the reaping.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ctguard.errors import SourceMissing
from ctguard.kernel import table_source
from ctguard.kernel.table_source import TableSource, reading_started, scan_table
from ctguard.parse.table_scan import ScanSpec

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "samples"
    / "nf_conntrack_procfs_moooofly_lls_k8s_node_timewait.txt"
)
SPEC = ScanSpec(columns=("src", "dport"), tallies=(("src",), ("dport",)))


def _live(path: Path) -> TableSource:
    return TableSource(str(path), "live-procfs", path=path)


def test_a_reader_started_ahead_gives_what_the_file_gives() -> None:
    expected = scan_table(TableSource("f", "file", path=SAMPLE), SPEC)
    with reading_started(_live(SAMPLE)) as source:
        assert source.reader is not None
        scan = scan_table(source, SPEC)
    assert scan.entries == expected.entries > 0
    assert scan.tallies == expected.tallies
    assert source.reader.proc.returncode == 0


def test_without_a_reader_ahead_the_scan_starts_its_own() -> None:
    scan = scan_table(_live(SAMPLE), SPEC)
    assert scan.entries == scan_table(TableSource("f", "file", path=SAMPLE), SPEC).entries


def test_leaving_the_block_unread_stops_and_reaps_the_child() -> None:
    with pytest.raises(RuntimeError), reading_started(_live(SAMPLE)) as source:
        assert source.reader is not None
        raise RuntimeError("a usage error found after the start")
    assert source.reader.proc.returncode is not None  # waited for: no zombie
    assert source.reader.stream.closed and source.reader.errors.closed


def test_a_reader_that_fails_is_an_error_never_an_empty_table(tmp_path: Path) -> None:
    with (
        pytest.raises(SourceMissing, match="cannot read the conntrack table"),
        reading_started(_live(tmp_path / "gone")) as source,
    ):
        scan_table(source, SPEC)


def test_other_sources_are_left_as_they_are() -> None:
    file_source = TableSource("f", "file", path=SAMPLE)
    with reading_started(file_source) as source:
        assert source is file_source


def _read_through(read_fd: int, write_fd: int) -> bytes:
    os.write(write_fd, b"entry\n" * 1000)
    os.close(write_fd)
    with open(read_fd, "rb") as stream:
        return stream.read()


def test_the_output_channel_is_a_large_socket_or_else_a_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read_fd, write_fd = table_source._cat_output_channel()
    kind = os.fstat(read_fd).st_mode
    assert stat.S_ISSOCK(kind) or stat.S_ISFIFO(kind)
    assert _read_through(read_fd, write_fd) == b"entry\n" * 1000

    # a send buffer that may not be forced: the pipe
    monkeypatch.setattr(table_source, "SO_SNDBUFFORCE", 0x7FFF)
    read_fd, write_fd = table_source._cat_output_channel()
    assert stat.S_ISFIFO(os.fstat(read_fd).st_mode)
    assert _read_through(read_fd, write_fd) == b"entry\n" * 1000
