"""The processes of each network namespace, with the container their cgroup names."""

from __future__ import annotations

import os
from pathlib import Path

from ctguard.model.container import NetnsProcess
from ctguard.parse.cgroup import container_of


def read_process(proc: Path, pid: str) -> tuple[int, NetnsProcess] | None:
    """(netns inode, the process) for one /proc entry; None when it is gone or not readable."""
    base = proc / pid
    try:
        inode = os.stat(base / "ns" / "net").st_ino
        comm = (base / "comm").read_text().strip()
    except OSError:
        return None  # gone, or not ours to read: normal
    try:
        container = container_of((base / "cgroup").read_text().splitlines())
    except OSError:
        container = None
    return inode, NetnsProcess(int(pid), comm, container)


def processes_by_netns(proc: Path = Path("/proc")) -> dict[int, list[NetnsProcess]]:
    """Every readable process, grouped by the inode of its network namespace, pid order."""
    found: dict[int, list[NetnsProcess]] = {}
    pids = sorted((entry for entry in os.listdir(proc) if entry.isdigit()), key=int)
    for pid in pids:
        read = read_process(proc, pid)
        if read is not None:
            found.setdefault(read[0], []).append(read[1])
    return found


def first_process_by_netns(proc: Path = Path("/proc")) -> dict[int, int]:
    """The lowest pid of every readable process's network namespace (inode -> pid).

    One stat per process and nothing else: what a caller needs to find the
    namespaces only processes hold, at each scrape of a host with thousands
    of processes, without their names or containers.
    """
    found: dict[int, int] = {}
    pids = sorted(int(entry) for entry in os.listdir(proc) if entry.isdigit())
    for pid in pids:
        try:
            inode = os.stat(proc / str(pid) / "ns" / "net").st_ino
        except OSError:
            continue  # gone, or not ours to read: normal
        found.setdefault(inode, pid)
    return found
