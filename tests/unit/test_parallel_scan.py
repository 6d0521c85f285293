"""A file scanned by several processes: failures in a child reach the caller."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.errors import ParseError
from ctguard.kernel import table_source
from ctguard.kernel.table_source import TableSource, scan_table
from ctguard.parse.table_scan import ScanSpec

SPEC = ScanSpec(columns=("src",), tallies=(("src",),))


@pytest.fixture
def dump(tmp_path: Path) -> TableSource:
    path = tmp_path / "dump.txt"
    path.write_text("".join(render_entry(e, "procfs") + "\n" for e in generate_entries(2000, 5)))
    return TableSource(str(path), "file", path=path)


def _in_children(action: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every range but the first (the children's) do ``action``."""
    original = table_source._scan_range

    def scan_range(path: str, start: int, end: int, spec: ScanSpec) -> Any:
        if start > 0:
            action()
        return original(path, start, end, spec)

    monkeypatch.setattr(table_source, "_scan_range", scan_range)


def test_children_results_add_up(dump: TableSource) -> None:
    one = scan_table(dump, SPEC, workers=1)
    three = scan_table(dump, SPEC, workers=3)
    assert three.entries == one.entries == 2000
    assert three.tallies[("src",)].counts == one.tallies[("src",)].counts


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
