"""Where kernel state is read from: the live host or a captured bundle.

Every reader takes a :class:`KernelRoot`.  Paths are given relative to
``/proc`` or ``/sys`` ("net/stat/nf_conntrack", "module/nf_conntrack"), so
the same reader works on ``/proc`` and on ``DIR/proc`` of a bundle made by
``ctguard capture``.

"Missing" is a normal answer (``None``), distinct from "unreadable"
(:class:`~ctguard.errors.AccessDenied`).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from ctguard.errors import AccessDenied, CtguardError

# The proc net directory follows the netns of the *reading thread* only via
# /proc/thread-self/net; /proc/net is /proc/self/net, which follows the thread
# group leader.  Reading through thread-self keeps netns entry (which is per
# thread) correct whichever thread reads.
_LIVE_PROC_NET = "thread-self/net"


@dataclass(frozen=True)
class KernelRoot:
    """A tree laid out like the kernel's /proc and /sys.

    ``bundle`` is the capture directory when reading offline; it also holds
    the outputs of tools (``cmd/``) and ctguard's own captures (``ctguard/``).
    """

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    bundle: Path | None = None
    # what the operator named (a directory or a .tar.gz unpacked into ``bundle``):
    # the --root of the commands ctguard suggests
    origin: str | None = None

    @classmethod
    def live(cls) -> KernelRoot:
        return cls()

    @classmethod
    def from_bundle(cls, directory: Path) -> KernelRoot:
        return cls(proc=directory / "proc", sys=directory / "sys", bundle=directory)

    @property
    def is_live(self) -> bool:
        return self.bundle is None

    @property
    def root_argument(self) -> str | None:
        """The ``--root`` that names this bundle again (None: the live host)."""
        if self.bundle is None:
            return None
        return self.origin or str(self.bundle)

    @property
    def label(self) -> str:
        return "this host" if self.bundle is None else f"bundle {self.bundle}"

    def proc_path(self, rel: str) -> Path:
        if self.is_live and (rel == "net" or rel.startswith("net/")):
            rel = _LIVE_PROC_NET + rel[3:]
        return self.proc / rel

    def sys_path(self, rel: str) -> Path:
        return self.sys / rel

    def bundle_path(self, rel: str) -> Path | None:
        return None if self.bundle is None else self.bundle / rel

    def read_proc(self, rel: str) -> str | None:
        return read_text_or_none(self.proc_path(rel))

    def read_sys(self, rel: str) -> str | None:
        return read_text_or_none(self.sys_path(rel))

    def read_bundle(self, rel: str) -> str | None:
        path = self.bundle_path(rel)
        return None if path is None else read_text_or_none(path)


def read_text_or_none(path: Path) -> str | None:
    """Read a small text file; ``None`` when it does not exist (or vanished).

    A file vanishing between listing and reading (a netns exiting, a
    process ending) is normal and also answers ``None``.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except PermissionError as err:
        raise AccessDenied(
            "permission denied reading a kernel file",
            where=str(path),
            hint="run ctguard as root (sudo ctguard ...), or capture a bundle as root "
            "with `sudo ctguard capture DIR` and read it with `--root DIR`",
        ) from err
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ESRCH, errno.ENOTDIR, errno.EINVAL):
            return None
        raise CtguardError(
            f"cannot read kernel file: {os.strerror(err.errno or 0)}", where=str(path)
        ) from err


def list_dir_or_empty(path: Path) -> list[str]:
    """Sorted names in a directory; empty when it does not exist."""
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except PermissionError as err:
        raise AccessDenied(
            "permission denied listing a kernel directory",
            where=str(path),
            hint="run ctguard as root",
        ) from err
