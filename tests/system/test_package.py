"""The Debian package, built and installed for real: it installs, `ctguard doctor`
runs from /usr/bin with only Debian's Python on PATH, every unit passes
`systemd-analyze verify`, lintian reports no error, a reinstall keeps the
edited configuration and the state, and purge leaves the file system as it was.

The package is always purged when the module ends, whatever happened.  The
build is cached in dist/ keyed on the hash of the files it is built from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ctguard

REPO = Path(__file__).resolve().parents[2]
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
APT_ENV = {**CLEAN_ENV, "DEBIAN_FRONTEND": "noninteractive"}
UNITS = (
    "ctguard-exporter.service",
    "ctguard-guard.service",
    "ctguard-exporter-textfile.service",
    "ctguard-exporter-textfile.timer",
)
# what purge must leave as it found it; dpkg's and apt's own databases and
# caches change with any install and are left out (dpkg's file list of
# ctguard is checked on its own)
WATCHED = ("/etc", "/usr", "/lib", "/opt", "/var/lib", "/srv")
IGNORED = ("/var/lib/dpkg", "/var/lib/apt", "/var/lib/ucf", "/usr/lib/python3/dist-packages")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (installs a package)"
    for tool in ("dpkg", "apt-get", "dpkg-query"):
        if shutil.which(tool, path=CLEAN_ENV["PATH"]) is None:
            return f"not a Debian system ({tool} missing)"
    installed = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", "ctguard"], capture_output=True, text=True
    )
    if "installed" in installed.stdout and "not-installed" not in installed.stdout:
        return "a ctguard package is already installed on this host; not touching it"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: int = 120) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env or CLEAN_ENV, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(argv)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _tree_hash() -> str:
    """The files scripts/build-deb copies: tracked and untracked, not ignored."""
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    digest = hashlib.sha256()
    for name in sorted(filter(None, listing.split(b"\0"))):
        path = REPO / os.fsdecode(name)
        if path.is_file():
            digest.update(name + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _arch() -> str:
    return _run(["dpkg", "--print-architecture"]).strip()


def _file_list() -> set[str]:
    found: set[str] = set()
    for top in WATCHED:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not os.path.join(dirpath, d).startswith(IGNORED)]
            found.add(dirpath)
            found.update(os.path.join(dirpath, name) for name in filenames)
    return found


def _installed() -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", "ctguard"], capture_output=True, text=True
    ).stdout
    return out not in ("", "not-installed")


def _purge() -> None:
    if _installed():
        _run(["apt-get", "purge", "-y", "-qq", "ctguard"], env=APT_ENV)


@pytest.fixture(scope="module")
def deb() -> Path:
    package = REPO / "dist" / f"ctguard_{ctguard.__version__}_{_arch()}.deb"
    stamp = package.with_name(package.name + ".tree")
    tree = _tree_hash()
    if not (package.exists() and stamp.exists() and stamp.read_text() == tree):
        _run(["bash", str(REPO / "scripts" / "build-deb")], timeout=900)
        stamp.write_text(tree)
    assert package.exists()
    return package


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[set[str]]:
    """Installs the package; yields the file list from before; purges at the end."""
    before = _file_list()
    try:
        _run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", str(deb)],
            env=APT_ENV,
            timeout=300,
        )
        yield before
    finally:
        _purge()


def test_doctor_runs_from_usr_bin_with_debian_python_only(installed):
    version = _run(["/usr/bin/ctguard", "--version"])
    assert version.startswith(f"ctguard {ctguard.__version__}\n")
    assert "package: /usr/lib/ctguard/lib/python3" in version
    assert "(/usr/lib/ctguard/bin/python" in version
    assert os.path.realpath("/usr/lib/ctguard/bin/python").startswith("/usr/bin/python3")
    doctor = subprocess.run(
        ["/usr/bin/ctguard", "doctor"], capture_output=True, text=True, env=CLEAN_ENV
    )
    assert doctor.returncode in (0, 1, 2), doctor.stderr  # ok / warn / crit: a verdict
    assert "verdict:" in doctor.stdout and "Traceback" not in doctor.stderr


def test_packed_bundle_reads_with_debian_python(installed, tmp_path):
    # Debian 12's Python predates tarfile's extraction filters
    import tarfile

    from tests import fixture_roots

    root = fixture_roots.root_idle_6x(tmp_path / "bundle")
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="bundle")
    out = _run(["/usr/bin/ctguard", "status", "--root", str(archive), "--json"])
    assert '"verdict": "ok"' in out


def test_man_page_and_completion_are_installed(installed):
    page = _run(["man", "-P", "cat", "ctguard"], env={**CLEAN_ENV, "MANWIDTH": "100"})
    assert "ctguard doctor" in page and "--json" in page
    completion = Path("/usr/share/bash-completion/completions/ctguard").read_text()
    assert "complete -o filenames -F _ctguard ctguard" in completion


def test_every_unit_passes_systemd_analyze_verify(installed):
    units = [Path("/lib/systemd/system") / unit for unit in UNITS]
    assert all(unit.exists() for unit in units), [str(u) for u in units if not u.exists()]
    _run(["systemd-analyze", "verify", *map(str, units)])
    # installed, not enabled: no link to them in any .wants directory
    enabled = [str(p) for unit in UNITS for p in Path("/etc/systemd/system").rglob(unit)]
    assert enabled == []


def test_lintian_reports_no_error(installed, deb):
    if shutil.which("lintian", path=CLEAN_ENV["PATH"]) is None:
        pytest.skip("lintian is not installed (scripts/test installs it)")
    result = subprocess.run(
        ["lintian", "--fail-on", "error", str(deb)], capture_output=True, text=True, env=CLEAN_ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("E:")]


def test_reinstall_keeps_edited_config_and_state(installed, deb):
    config = Path("/etc/ctguard/guard.toml")
    assert "[detect]" in config.read_text()
    edited = config.read_text() + "# edited by the operator\n"
    config.write_text(edited)
    state = Path("/var/lib/ctguard/state-kept-across-upgrades")
    state.write_text("x")
    _run(
        [
            "apt-get", "install", "-y", "-qq", "--reinstall", "--no-install-recommends",
            "-o", "Dpkg::Options::=--force-confold", str(deb),
        ],
        env=APT_ENV,
        timeout=300,
    )  # fmt: skip
    assert config.read_text() == edited
    assert state.read_text() == "x"


def test_purge_leaves_the_host_as_it_was(installed):
    before = installed
    Path("/var/lib/ctguard/journal-left-by-a-run").write_text("x")
    _purge()
    assert not _installed()
    after = _file_list()
    assert sorted(after - before) == [], "left behind by purge"
    assert sorted(before - after) == [], "removed by install + purge"
    assert not list(Path("/var/lib/dpkg/info").glob("ctguard.*"))
