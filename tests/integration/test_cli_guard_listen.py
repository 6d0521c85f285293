"""`ctguard guard --listen`: a bad address or a busy port is a clear error before the
guard starts (nothing opened, no traceback), as for `ctguard exporter`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ctguard.cli.env import ExitStatus
from tests.conftest import run_cli


def environ(tmp_path: Path) -> dict[str, str]:
    return {"CTGUARD_STATE_DIR": str(tmp_path / "state"), "CTGUARD_ETC_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("listen", "status", "says"),
    [
        ("nonsense", ExitStatus.USAGE, "is not ADDR:PORT"),
        ("127.0.0.1:70000", ExitStatus.USAGE, "is not ADDR:PORT"),
        ("192.0.2.77:10372", ExitStatus.USAGE, "no such address"),
        ("no-such-host.invalid:10372", ExitStatus.USAGE, "unknown address"),
    ],
)
def test_a_bad_listen_address_exits_clearly(
    tmp_path: Path, listen: str, status: ExitStatus, says: str
) -> None:
    result = run_cli("guard", "--listen", listen, environ=environ(tmp_path))
    assert result.status == status, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()  # refused before the database was opened


def test_a_port_in_use_exits_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("guard", "--listen", f"127.0.0.1:{port}", environ=environ(tmp_path))
    assert result.status == ExitStatus.UNKNOWN, result.stderr
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_listen_is_checked_after_the_policy(tmp_path: Path) -> None:
    (tmp_path / "ctguard").mkdir()
    (tmp_path / "ctguard" / "guard.toml").write_text("[detect]\nsustain = 0\n")
    result = run_cli("guard", "--listen", "nonsense", environ=environ(tmp_path))
    assert result.status != ExitStatus.OK and "sustain" in result.stderr
