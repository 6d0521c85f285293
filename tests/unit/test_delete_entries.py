"""Deleting a source's entries: conntrack's line per deleted entry (stdout) is not kept,
its count (stderr) is the answer, and a failure says why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctguard.effects.commands import delete_entries
from ctguard.errors import CtguardError


def fake_conntrack(tmp_path: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "bin" / "conntrack"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")


def test_the_count_comes_from_stderr_and_the_listing_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 200,000 entry lines (~16 MiB) on stdout, as a flood's deletion prints them
    fake_conntrack(
        tmp_path,
        'echo "$@" > "$(dirname "$0")/argv"\n'
        'out=$(readlink /proc/$$/fd/1); echo "$out" > "$(dirname "$0")/stdout"\n'
        "yes 'udp 17 29 src=10.88.0.10 dst=10.88.0.2 sport=1024 dport=2000' | head -n 200000\n"
        'echo "conntrack v1.4.7 (conntrack-tools): 200000 flow entries have been deleted." >&2\n',
        monkeypatch,
    )
    assert delete_entries("10.88.0.10/32", None) == 200000
    assert (tmp_path / "bin" / "argv").read_text().split() == ["-D", "-s", "10.88.0.10/32"]
    assert (tmp_path / "bin" / "stdout").read_text().strip() == "/dev/null"  # never in memory


def test_nothing_to_delete_is_zero_and_a_failure_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_conntrack(
        tmp_path,
        'case "$3" in\n'
        "  10.*) echo 'conntrack v1.4.7: 0 flow entries have been deleted.' >&2; exit 1;;\n"
        '  *) echo "conntrack v1.4.7 (conntrack-tools): Operation not permitted" >&2; exit 1;;\n'
        "esac\n",
        monkeypatch,
    )
    assert delete_entries("10.0.0.1/32", None) == 0
    with pytest.raises(CtguardError, match="Operation not permitted"):
        delete_entries("192.0.2.1/32", None)


def test_an_entry_that_expired_mid_deletion_is_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race seen under a flood: conntrack stops at an entry that timed out meanwhile.
    Deletion is retried (the rest goes), and never undoes the block it belongs to."""
    fake_conntrack(
        tmp_path,
        'runs="$(dirname "$0")/runs"; echo x >> "$runs"\n'
        'if [ "$(wc -l < "$runs")" -lt 2 ]; then\n'
        "  echo \"conntrack v1.4.7 (conntrack-tools): Operation failed: such conntrack doesn't"
        ' exist" >&2; exit 1\n'
        "fi\n"
        "echo 'conntrack v1.4.7 (conntrack-tools): 5 flow entries have been deleted.' >&2\n",
        monkeypatch,
    )
    assert delete_entries("10.88.0.10/32", None) == 5
    assert (tmp_path / "bin" / "runs").read_text().count("x") == 2


def test_an_entry_that_keeps_vanishing_gives_up_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_conntrack(
        tmp_path,
        'echo x >> "$(dirname "$0")/runs"\n'
        "echo \"conntrack v1.4.7 (conntrack-tools): Operation failed: such conntrack doesn't"
        ' exist" >&2; exit 1\n',
        monkeypatch,
    )
    assert delete_entries("10.88.0.10/32", None) == 0
    assert (tmp_path / "bin" / "runs").read_text().count("x") == 3
