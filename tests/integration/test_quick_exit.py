"""Read-only commands skip the interpreter's teardown (os._exit) once their
output is flushed; nothing they print or clean up may be lost by it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from ctguard.cli.main import QUICK_EXIT_COMMANDS
from tests import fixture_roots as roots

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "samples"
SRC = Path(__file__).resolve().parents[2] / "src"


def _ctguard(*args: str, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TMPDIR": str(tmpdir),
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "ctguard", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_read_only_commands_are_the_quick_ones() -> None:
    assert {"top", "analyze", "status", "doctor"} == QUICK_EXIT_COMMANDS


def test_piped_output_is_complete_and_the_status_kept(tmp_path: Path) -> None:
    dump = SAMPLES / "nf_conntrack_procfs_moooofly_lls_k8s_node_timewait.txt"
    done = _ctguard("top", str(dump), "--json", "--limit", "0", tmpdir=tmp_path)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)  # the whole document arrived
    assert sum(group["count"] for group in payload["groups"]) == payload["entries"] > 0

    missing = _ctguard("top", str(tmp_path / "absent.txt"), tmpdir=tmp_path)
    assert missing.returncode != 0
    assert "no such dump file" in missing.stderr  # stderr flushed before the exit


def test_exit_handlers_still_run(tmp_path: Path) -> None:
    # a packed bundle is unpacked into a temporary directory that an exit
    # handler removes; the quick exit must run it
    root = roots.root_near_full_with_drops(tmp_path / "bundle")
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="bundle")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    done = _ctguard("status", "--root", str(archive), "--json", tmpdir=scratch)
    assert json.loads(done.stdout)["count"] == 65422, done.stderr
    assert list(scratch.iterdir()) == []
