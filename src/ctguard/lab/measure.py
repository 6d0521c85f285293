"""What the lab measures: the gateway's table, its counters, its log lines, a probe."""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from ctguard.lab.namespaces import LabNamespace
from ctguard.model.kernlog import LogKind
from ctguard.parse.kernlog import classify_message
from ctguard.parse.stat_nf_conntrack import parse_stat_nf_conntrack

PROBE_PORT = 8080


@dataclass(frozen=True)
class TableReading:
    count: int
    max: int
    drop: int
    early_drop: int
    insert_failed: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def read_table(namespace: LabNamespace) -> TableReading:
    """Count and max (sysctls) and the summed per-CPU counters, inside ``namespace``."""
    with namespace.entered():
        with open("/proc/thread-self/net/stat/nf_conntrack") as handle:
            totals = parse_stat_nf_conntrack(handle.read()).totals()
        count = _read_int("/proc/sys/net/netfilter/nf_conntrack_count")
        maximum = _read_int("/proc/sys/net/netfilter/nf_conntrack_max")
    return TableReading(
        count,
        maximum,
        totals.get("drop", 0),
        totals.get("early_drop", 0),
        totals.get("insert_failed", 0),
    )


def _read_int(path: str) -> int:
    with open(path) as handle:
        return int(handle.read().split()[0])


class KernelLogWatch:
    """Kernel messages since creation, read from /dev/kmsg (root only).

    "table full" lines name their netns on 6.16+; older kernels' lines have
    no netns and are all counted.  The kernel rate-limits them (10 per 5 s),
    so they undercount drops: the drop counter is the truth.
    """

    def __init__(self, path: str = "/dev/kmsg") -> None:
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError:
            self._fd = None  # no ring buffer here: lines are reported as unknown

    @property
    def available(self) -> bool:
        return self._fd is not None

    def table_full_lines(self, netns_inode: int) -> int:
        """Lines since the last call that concern ``netns_inode`` (or name none)."""
        if self._fd is None:
            return 0
        found = 0
        while True:
            if not select.select([self._fd], [], [], 0)[0]:
                break
            try:
                record = os.read(self._fd, 8192)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno == errno.EPIPE:
                    continue
                raise
            if not record:
                break
            message = record.decode("utf-8", "replace").split(";", 1)[-1].split("\n", 1)[0]
            kind, _count, inode, _vps = classify_message(message)
            if kind is LogKind.TABLE_FULL and inode in (None, netns_inode):
                found += 1
        return found

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def probe(namespace: LabNamespace, address: str, port: int = PROBE_PORT, attempts: int = 3) -> int:
    """TCP connections from an innocent client that succeeded (1 s each, no retry).

    A SYN the gateway drops is retransmitted only after 1 s, so a 1 s
    connect timeout turns one drop into one failed attempt.
    """
    succeeded = 0
    with namespace.entered():
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(attempts)]
    for sock in sockets:
        with sock:
            sock.settimeout(1.0)
            try:
                sock.connect((address, port))
                succeeded += 1
            except OSError:
                pass
        time.sleep(0.05)
    return succeeded


def table_lines(namespace: LabNamespace) -> list[str]:
    """The namespace's table as procfs prints it (addresses fully expanded)."""
    with namespace.entered(), open("/proc/thread-self/net/nf_conntrack") as handle:
        return handle.readlines()


def lines_from(namespace: LabNamespace, source: str) -> Iterator[str]:
    """Entries whose original source (the first ``src=``) is ``source``."""
    needle = f" src={source} "
    for line in table_lines(namespace):
        first = line.find(" src=")
        if first >= 0 and line.startswith(needle, first):
            yield line


def entries_from(namespace: LabNamespace, source: str, *, dport: int | None = None) -> int:
    """Entries from ``source`` (and to destination port ``dport``, original direction)."""
    if dport is None:
        return sum(1 for _ in lines_from(namespace, source))
    port = f" dport={dport} "
    count = 0
    for line in lines_from(namespace, source):
        first = line.find(" src=")
        reply = line.find(" src=", first + 5)
        if port in line[first : reply if reply > 0 else len(line)]:
            count += 1
    return count


def timers_from(namespace: LabNamespace, source: str) -> list[int]:
    """Seconds left on each entry from ``source`` (the procfs timeout column)."""
    fields = (line.split() for line in lines_from(namespace, source))
    return [int(f[4]) for f in fields if len(f) > 4 and f[4].isdigit()]
