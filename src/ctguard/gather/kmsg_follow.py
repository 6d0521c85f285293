"""Follow /dev/kmsg from now on and count 'table full' lines per namespace.

Which namespace a line belongs to is what the kernel printed, no more:

- Linux 6.16 and later print ``nf_conntrack: table full in netns <inum>,
  dropping packet``: the inode of the namespace whose table was full, the
  host's own included.  Those lines are counted under that namespace.
- Older kernels print no namespace at all (``nf_conntrack: table full,
  dropping packet``), whichever namespace dropped; the ``net_ratelimit: N
  callbacks suppressed`` lines that follow a burst carry none either (and
  count every rate-limited network message, not only conntrack's).  Those
  lines are counted under "no namespace" (``None``), never guessed.

The lines are rate-limited (10 per 5 s by default), so a count is a lower
bound of the drops; the drop counter is the exact figure.  The namespaces a
`ctguard lab` run marks in the log are rehearsals: their lines are left out
(counted apart), as `ctguard logs` and `doctor` do.  The marks of a run that
began before the follower are learnt from the records already in the ring
buffer, which are otherwise not counted: the counts start at the follower's
start, as a Prometheus counter should.
"""

from __future__ import annotations

import errno
import os
import select
import threading
from dataclasses import dataclass

from ctguard.analyze.log_episodes import note_lab_marker
from ctguard.errors import AccessDenied, CtguardError, SourceMissing
from ctguard.model.kernlog import LogKind, LogRecord
from ctguard.parse.kernlog import classify_message

KMSG = "/dev/kmsg"
RECORD_MAX = 8192  # a /dev/kmsg read returns one record, at most this long


@dataclass(frozen=True)
class KmsgCounts:
    """What the follower counted since it started."""

    table_full: dict[int | None, int]  # netns inode (None: not printed) -> lines
    lab_lines: int  # 'table full' lines of namespaces a lab run marked
    suppressed: int  # sum of "N callbacks suppressed" (all net_ratelimit users)
    records: int  # records read
    overruns: int  # times the ring buffer overwrote records before they were read


class KmsgTally:
    """The counting, apart from the device (pure; thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._table_full: dict[int | None, int] = {}
        self._lab_netns: dict[int, str] = {}
        self._lab_lines = 0
        self._suppressed = 0
        self._records = 0
        self._overruns = 0

    def feed(self, message: str, *, count: bool = True) -> None:
        """One record's message text (without the ``pri,seq,usec,flags;`` prefix).

        With ``count=False`` only lab marks are learnt (records from before
        the start).
        """
        kind, suppressed, inode, _vps = classify_message(message)
        with self._lock:
            if kind is LogKind.LAB_NETNS or kind is LogKind.LAB_CLOSED:
                _learn_marker(self._lab_netns, kind, inode, message)
            if not count:
                return
            self._records += 1
            if kind is LogKind.TABLE_FULL:
                if inode is not None and inode in self._lab_netns:
                    self._lab_lines += 1
                else:
                    self._table_full[inode] = self._table_full.get(inode, 0) + 1
            elif kind is LogKind.RATELIMIT:
                self._suppressed += suppressed

    def overrun(self) -> None:
        with self._lock:
            self._overruns += 1

    def counts(self) -> KmsgCounts:
        with self._lock:
            return KmsgCounts(
                dict(self._table_full),
                self._lab_lines,
                self._suppressed,
                self._records,
                self._overruns,
            )


def _learn_marker(lab_netns: dict[int, str], kind: LogKind, inode: int | None, text: str) -> None:
    record = LogRecord(0, kind, None, True, None, None, text, 0, inode, None)
    note_lab_marker(lab_netns, record)


def record_message(record: bytes) -> str:
    """The message of one /dev/kmsg record (``pri,seq,usec,flags;message``,
    then continuation lines `` KEY=value`` that are dropped)."""
    text = record.decode("utf-8", "replace").split("\n", 1)[0]
    _prefix, sep, message = text.partition(";")
    return message if sep else text


class KmsgFollower:
    """A daemon thread reading /dev/kmsg without blocking the process.

    ``open()`` raises at once when the device is missing or unreadable, so
    the caller can say so before it serves anything.
    """

    def __init__(self, path: str = KMSG, tally: KmsgTally | None = None) -> None:
        self.path = path
        self.tally = tally or KmsgTally()
        self._fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as err:
            raise SourceMissing("no kernel ring buffer device", where=self.path) from err
        except PermissionError as err:
            raise AccessDenied(
                "reading the kernel ring buffer needs root (kernel.dmesg_restrict=1)",
                where=self.path,
                hint="run as root, or without the kernel-log counter",
            ) from err
        self._fd = fd
        self._drain(count=False)  # what is already there: lab marks only

    def _drain(self, *, count: bool = True) -> None:
        """Read every record available now."""
        assert self._fd is not None
        while True:
            try:
                record = os.read(self._fd, RECORD_MAX)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.EPIPE:  # overwritten before we read it: go on
                    if count:
                        self.tally.overrun()
                    continue
                raise CtguardError(
                    f"cannot read the kernel log: {os.strerror(err.errno or 0)}", where=self.path
                ) from err
            if not record:
                return
            self.tally.feed(record_message(record), count=count)

    def poll_once(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for records and count them."""
        assert self._fd is not None
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            self._drain()

    def start(self) -> None:
        if self._fd is None:
            self.open()
        self._thread = threading.Thread(target=self._run, name="ctguard-kmsg", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(0.5)
            except CtguardError:
                self.tally.overrun()
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
