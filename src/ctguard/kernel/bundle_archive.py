"""Unpacking a packed bundle (.tar.gz) safely, on every supported Python.

tarfile's extraction filters (``filter="data"``) arrived in Python 3.11.4;
Debian 12 ships 3.11.2, where passing one is a TypeError.  There the same
rules are applied by hand: nothing lands outside the target, no device or
FIFO is made, no setuid bit or foreign owner is kept.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _checked_members(archive: tarfile.TarFile, root: Path) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    for member in archive.getmembers():
        dest = (root / member.name).resolve()
        if os.path.isabs(member.name) or not _inside(root, dest):
            raise tarfile.TarError(f"{member.name!r} would land outside the bundle")
        if member.issym():
            link = (dest.parent / member.linkname).resolve()
            if os.path.isabs(member.linkname) or not _inside(root, link):
                raise tarfile.TarError(f"{member.name!r} links outside the bundle")
        elif member.islnk():
            if not _inside(root, (root / member.linkname).resolve()):
                raise tarfile.TarError(f"{member.name!r} links outside the bundle")
        elif not (member.isfile() or member.isdir()):
            continue  # devices, FIFOs: never part of a bundle, never made
        member.mode &= 0o755  # no setuid/setgid/sticky, no group/other write
        if member.isdir():
            member.mode |= 0o700
        member.uid, member.gid = os.getuid(), os.getgid()
        member.uname = member.gname = ""
        members.append(member)
    return members


def extract_bundle(
    archive: tarfile.TarFile, target: Path, *, use_filter: bool | None = None
) -> None:
    """Extract ``archive`` under ``target`` with the "data" filter's rules."""
    if use_filter is None:
        use_filter = hasattr(tarfile, "data_filter")
    if use_filter:
        archive.extractall(target, filter="data")
        return
    root = target.resolve()
    archive.extractall(root, members=_checked_members(archive, root), numeric_owner=True)
