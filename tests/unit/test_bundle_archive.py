"""Packed bundles unpack safely with and without tarfile's extraction filters
(Debian 12's Python 3.11.2 has none)."""

import io
import tarfile

import pytest

from ctguard.kernel.bundle_archive import extract_bundle


def _archive(tmp_path, members):
    path = tmp_path / "b.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                info.mode = 0o4777
                tar.addfile(info, io.BytesIO(payload))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = payload.decode()
                tar.addfile(info)
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)
    return path


@pytest.mark.parametrize("use_filter", [False, None])
def test_a_bundle_unpacks(tmp_path, use_filter):
    path = _archive(
        tmp_path,
        [
            ("bundle", "dir", b""),
            ("bundle/proc", "dir", b""),
            ("bundle/proc/count", "file", b"42\n"),
            ("bundle/proc/alias", "symlink", b"count"),
        ],
    )
    target = tmp_path / "out"
    target.mkdir()
    with tarfile.open(path) as archive:
        extract_bundle(archive, target, use_filter=use_filter)
    assert (target / "bundle/proc/count").read_text() == "42\n"
    assert (target / "bundle/proc/alias").read_text() == "42\n"
    assert not (target / "bundle/proc/count").stat().st_mode & 0o4022


@pytest.mark.parametrize(
    "members",
    [
        [("../escape", "file", b"x")],
        [("/tmp/absolute", "file", b"x")],
        [("bundle/link", "symlink", b"../../etc/passwd")],
        [("bundle/link", "symlink", b"/etc/passwd")],
    ],
    ids=["dotdot", "absolute", "relative-link-out", "absolute-link"],
)
def test_nothing_lands_outside_without_filters(tmp_path, members):
    path = _archive(tmp_path, members)
    target = tmp_path / "out"
    target.mkdir()
    with tarfile.open(path) as archive, pytest.raises(tarfile.TarError):
        extract_bundle(archive, target, use_filter=False)
    assert not (tmp_path / "escape").exists()


def test_no_fifo_is_made_without_filters(tmp_path):
    path = _archive(tmp_path, [("bundle", "dir", b""), ("bundle/pipe", "fifo", b"")])
    target = tmp_path / "out"
    target.mkdir()
    with tarfile.open(path) as archive:
        extract_bundle(archive, target, use_filter=False)
    assert (target / "bundle").is_dir() and not (target / "bundle/pipe").exists()
