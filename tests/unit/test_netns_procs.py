"""Finding the namespaces processes hold, from a /proc-shaped directory."""

from __future__ import annotations

import os
from pathlib import Path

from ctguard.kernel.netns_procs import first_process_by_netns, processes_by_netns


def fake_proc(tmp_path: Path) -> Path:
    """pids 1 and 12 share one namespace file (a hard link: one inode), 7 has its own,
    'self' and a process that vanished (no ns/net) are skipped."""
    proc = tmp_path / "proc"
    for pid in ("1", "7", "12", "99", "self"):
        (proc / pid / "ns").mkdir(parents=True)
        (proc / pid / "comm").write_text(f"p{pid}\n")
        (proc / pid / "cgroup").write_text("0::/system.slice/x.service\n")
    (proc / "1" / "ns" / "net").write_text("")
    os.link(proc / "1" / "ns" / "net", proc / "12" / "ns" / "net")
    (proc / "7" / "ns" / "net").write_text("")
    (proc / "self" / "ns" / "net").write_text("")
    return proc


def test_first_process_by_netns_is_the_lowest_pid_of_each(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    init = os.stat(proc / "1" / "ns" / "net").st_ino
    other = os.stat(proc / "7" / "ns" / "net").st_ino
    assert first_process_by_netns(proc) == {init: 1, other: 7}


def test_it_finds_the_namespaces_the_full_scan_finds(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    full = processes_by_netns(proc)
    assert {inode: members[0].pid for inode, members in full.items()} == first_process_by_netns(
        proc
    )
