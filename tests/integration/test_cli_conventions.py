"""CLI conventions: exit codes, errors without tracebacks, bundles."""

import tarfile

from ctguard.cli.env import ExitStatus
from tests import fixture_roots as roots


def test_no_command_prints_help_and_usage_status(cli):
    result = cli()
    assert result.status == ExitStatus.USAGE
    assert "status" in result.stdout and "doctor" in result.stdout


def test_unknown_option_is_a_usage_error(cli):
    result = cli("status", "--bogus")
    assert result.status == ExitStatus.USAGE
    assert "unrecognized arguments" in result.stderr and "Traceback" not in result.stderr


def test_help_and_version(cli):
    assert cli("--version").status == ExitStatus.OK
    result = cli("status", "--help")
    assert result.status == ExitStatus.OK and "--all-netns" in result.stdout


def test_version_names_where_it_runs_from(cli):
    import platform
    import sys
    from pathlib import Path

    import ctguard

    result = cli("--version")
    lines = result.stdout.splitlines()
    assert lines[0] == f"ctguard {ctguard.__version__}"
    assert f"package: {Path(ctguard.__file__).resolve().parent}" in result.stdout
    assert f"python:  {platform.python_version()} ({sys.executable})" in result.stdout


def test_doctor_on_a_bundle_names_no_missing_tools(cli, tmp_path):
    payload = cli("doctor", "--root", str(roots.root_idle_6x(tmp_path)), "--json").json()
    assert payload["missing_tools"] == []
    assert not any("optional tools" in note for note in payload["notes"])


def test_missing_root_is_a_clear_error(cli, tmp_path):
    result = cli("status", "--root", str(tmp_path / "nope"))
    assert result.status == ExitStatus.UNKNOWN
    assert "bundle not found" in result.stderr and "ctguard capture" in result.stderr


def test_root_that_is_not_a_bundle(cli, tmp_path):
    result = cli("status", "--root", str(tmp_path))
    assert result.status == ExitStatus.UNKNOWN
    assert "no proc/ directory" in result.stderr


def test_malformed_stat_file_names_file_and_line(cli, tmp_path):
    root = roots.root_idle_6x(tmp_path)
    (root / "proc/net/stat/nf_conntrack").write_text(roots.STAT_HEADER_6X + "\n0000 00zz\n")
    result = cli("status", "--root", str(root))
    assert result.status == ExitStatus.UNKNOWN
    assert "proc/net/stat/nf_conntrack, line 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_netns_and_root_exclude_each_other(cli, tmp_path):
    result = cli("status", "--root", str(roots.root_idle_6x(tmp_path)), "--netns", "x")
    assert result.status == ExitStatus.USAGE


def test_tar_gz_bundle(cli, tmp_path):
    root = roots.root_near_full_with_drops(tmp_path / "bundle")
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="bundle")
    payload = cli("status", "--root", str(archive), "--json").json()
    assert payload["count"] == 65422


def test_all_netns_needs_root(cli):
    result = cli("status", "--all-netns", euid=1000)
    assert result.status == ExitStatus.UNKNOWN
    assert "sudo ctguard status --all-netns" in result.stderr
