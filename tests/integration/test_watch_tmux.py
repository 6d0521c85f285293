"""`ctguard watch` in a real terminal (tmux, 80x24): it draws, q quits with 0,
and the terminal is given back (alternate screen left, cursor shown)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (scripts/test installs it)"
)


def tmux(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-S", server, *args], capture_output=True, text=True, timeout=20, check=False
    )


def wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("key", ["q", "C-c"])
def test_watch_in_tmux_draws_and_quits_cleanly(tmp_path: Path, key: str) -> None:
    server = str(tmp_path / "tmux.sock")  # the server's socket: removed with tmp_path
    status = tmp_path / "status"
    command = (
        f"cd {shlex.quote(os.getcwd())} && {shlex.quote(sys.executable)} -m ctguard watch "
        f"--interval 0.5; echo $? > {shlex.quote(str(status))}; sleep 30"
    )
    env = {**os.environ, "CTGUARD_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color"}
    try:
        started = subprocess.run(
            ["tmux", "-S", server, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y",
             "24", "bash", "-c", command],
            env=env, capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr

        def drawn() -> bool:
            pane = tmux(server, "capture-pane", "-p").stdout
            return "entries" in pane and "q quit" in pane

        assert wait_for(drawn, 30), tmux(server, "capture-pane", "-p").stdout
        pane = tmux(server, "capture-pane", "-p").stdout.splitlines()
        assert len(pane) <= 24 and all(len(line) <= 80 for line in pane)
        assert any("drop" in line and "early_drop" in line for line in pane)
        tmux(server, "send-keys", key)
        assert wait_for(status.exists, 20), f"ctguard watch did not exit on {key}"
        assert wait_for(lambda: status.read_text().strip() != "", 5)
        assert status.read_text().strip() == "0"
        after = tmux(server, "capture-pane", "-p").stdout
        assert "q quit" not in after, "the alternate screen was not left"
        cursor = tmux(server, "display-message", "-p", "#{alternate_on} #{cursor_flag}").stdout
        assert cursor.split() == ["0", "1"], f"terminal not restored: {cursor!r}"
    finally:
        tmux(server, "kill-server")


def test_watch_exits_when_its_terminal_closes(tmp_path: Path) -> None:
    """A closed SSH session: the terminal goes away (SIGHUP), the view must not linger."""
    server = str(tmp_path / "tmux.sock")  # the server's socket: removed with tmp_path
    pid_file = tmp_path / "pid"
    command = (
        f"cd {shlex.quote(os.getcwd())} && echo $$ > {shlex.quote(str(pid_file))} && "
        f"exec {shlex.quote(sys.executable)} -m ctguard watch --interval 0.5"
    )
    env = {**os.environ, "CTGUARD_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color"}
    pid = None
    try:
        subprocess.run(
            ["tmux", "-S", server, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y",
             "24", "bash", "-c", command],
            env=env, capture_output=True, text=True, timeout=20, check=True,
        )  # fmt: skip
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10)
        pid = int(pid_file.read_text())
        assert wait_for(lambda: "q quit" in tmux(server, "capture-pane", "-p").stdout, 30)
        tmux(server, "kill-server")

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

        assert wait_for(gone, 20), "ctguard watch still runs after its terminal closed"
    finally:
        tmux(server, "kill-server")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
