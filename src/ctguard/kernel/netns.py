"""Network namespaces: name/PID/path resolution, entering, and enumeration.

The entry count is per network namespace while nf_conntrack_max is global,
so the host's count excludes every container (FACTS §2).  Entering a netns
with setns(2) changes only the calling thread; ctguard enters, reads and
returns in one ``with`` block, and reads proc's net files through
/proc/thread-self so they follow the thread.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ctguard.errors import AccessDenied, CtguardError, SourceMissing, UsageError
from ctguard.model.netns_ref import NetnsRef

if TYPE_CHECKING:
    import ctypes

CLONE_NEWNET = 0x40000000
NAMED_NETNS_DIRS = (Path("/run/netns"), Path("/var/run/netns"))

_libc: ctypes.CDLL | None = None
_lock = threading.Lock()


def _setns(fd: int) -> None:
    import ctypes  # only entering a namespace needs it: other commands start sooner

    global _libc
    if _libc is None:
        # the running interpreter's own symbols include libc's (no `ldconfig -p`
        # child, which ctypes.util.find_library would run on every start)
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        if code == 1:  # EPERM
            raise AccessDenied(
                "entering a network namespace needs CAP_SYS_ADMIN",
                where="setns",
                hint="run ctguard as root (sudo)",
            )
        raise CtguardError(f"setns failed: {os.strerror(code)}", where="setns")


def netns_inode(path: str | Path) -> int:
    return os.stat(path).st_ino


def named_netns() -> dict[int, list[str]]:
    """inode -> names, from `ip netns` bind mounts."""
    names: dict[int, list[str]] = {}
    for directory in NAMED_NETNS_DIRS:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in entries:
            try:
                inode = netns_inode(directory / name)
            except OSError:
                continue
            if name not in names.setdefault(inode, []):
                names[inode].append(name)
    return names


def resolve_netns(spec: str, proc: Path = Path("/proc"), *, processes: bool = True) -> NetnsRef:
    """NAME (ip netns), PID, or a path to a netns file -> NetnsRef.

    ``processes=False`` leaves the namespace's processes out (reading them
    means reading every process's cgroup: the exporter's scrapes skip it)."""
    if "/" in spec:
        path = Path(spec)
        what = f"network namespace file {spec}"
    elif spec.isdigit():
        path = proc / spec / "ns" / "net"
        what = f"process {spec}"
    else:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", spec):
            raise UsageError(f"invalid network namespace name {spec!r}")
        candidates = [d / spec for d in NAMED_NETNS_DIRS if (d / spec).exists()]
        if not candidates:
            raise SourceMissing(
                f"no network namespace named {spec!r}",
                where=str(NAMED_NETNS_DIRS[0]),
                hint="`ip netns list` shows the names; a container's netns can be given "
                "by the PID of a process in it (`--netns PID`) or as a path",
            )
        path = candidates[0]
        what = f"network namespace {spec}"
    try:
        inode = netns_inode(path)
    except FileNotFoundError as err:
        raise SourceMissing(f"{what} does not exist", where=str(path)) from err
    except PermissionError as err:
        raise AccessDenied(f"cannot inspect {what}", where=str(path), hint="run as root") from err
    names = tuple(named_netns().get(inode, ()))
    if not names and spec.isdigit():
        names = (f"pid {spec}",)
    if not processes:
        return NetnsRef(inode=inode, path=str(path), names=names)
    from ctguard.kernel.netns_procs import processes_by_netns

    members = tuple(processes_by_netns(proc).get(inode, ()))
    return NetnsRef(inode=inode, path=str(path), names=names, processes=members)


@contextmanager
def entered_netns(ref: NetnsRef | None) -> Iterator[None]:
    """Run the block in ``ref``'s network namespace (this thread only); None = stay."""
    if ref is None:
        yield
        return
    with _lock:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                target = os.open(ref.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as err:
                raise SourceMissing(
                    "network namespace vanished", where=ref.path, hint="the container exited?"
                ) from err
            except PermissionError as err:
                raise AccessDenied(
                    "cannot open network namespace", where=ref.path, hint="run as root"
                ) from err
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)


def current_netns_inode() -> int:
    return netns_inode("/proc/thread-self/ns/net")


def list_netns(proc: Path = Path("/proc"), *, processes: bool = True) -> list[NetnsRef]:
    """Every network namespace reachable from named mounts or processes, init first,
    each with its processes (and their containers, from their cgroups).

    ``processes=False``: without them (one stat per process, no cgroup read);
    a namespace without an `ip netns` name is then named ``pid N``."""
    from ctguard.kernel.netns_procs import first_process_by_netns, processes_by_netns

    found: dict[int, tuple[str, list[str]]] = {}
    for inode, names in named_netns().items():
        directory = next(d for d in NAMED_NETNS_DIRS if (d / names[0]).exists())
        found[inode] = (str(directory / names[0]), list(names))
    if not processes:
        first_pids = first_process_by_netns(proc)
        for inode, pid in first_pids.items():
            if inode not in found:
                found[inode] = (str(proc / str(pid) / "ns" / "net"), [f"pid {pid}"])
        init = next((inode for inode, pid in first_pids.items() if pid == 1), None)
        bare = [NetnsRef(inode, path, tuple(names)) for inode, (path, names) in found.items()]
        bare.sort(key=lambda ref: (ref.inode != init, ref.inode))
        return bare
    by_netns = processes_by_netns(proc)
    init_inode: int | None = None
    for inode, members in by_netns.items():
        first = members[0]
        if first.pid == 1:
            init_inode = inode
        if inode not in found:
            found[inode] = (str(proc / str(first.pid) / "ns" / "net"), [])
        names = found[inode][1]
        # Name a namespace by its `ip netns` name, else by its first process.
        if not names:
            names.append(f"pid {first.pid} ({first.comm})")
    refs = [
        NetnsRef(inode, path, tuple(names), tuple(by_netns.get(inode, ())))
        for inode, (path, names) in found.items()
    ]
    refs.sort(key=lambda ref: (ref.inode != init_inode, ref.inode))
    return refs
