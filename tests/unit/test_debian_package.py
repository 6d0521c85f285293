"""The Debian package's sources agree with the Python project they package."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import ctguard

REPO = Path(__file__).resolve().parents[2]
DEBIAN = REPO / "debian"


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (DEBIAN / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"debian/requirements.txt: {line!r} is not pinned with =="
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = pinned()
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is a dependency but not pinned in debian/requirements.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"debian/requirements.txt pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_changelog_names_the_version():
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    match = re.match(r"ctguard \(([^)]+)\)", first)
    assert match and match.group(1) == ctguard.__version__


def test_units_run_the_commands_they_are_named_for():
    units = {
        p.name.removeprefix("ctguard."): p.read_text() for p in DEBIAN.glob("ctguard.*.service")
    }
    assert "ExecStart=/usr/bin/ctguard exporter\n" in units["ctguard-exporter.service"]
    assert "ExecStart=/usr/bin/ctguard guard " in units["ctguard-guard.service"]
    assert (
        "ExecStart=/usr/bin/ctguard exporter --textfile "
        "/var/lib/prometheus/node-exporter/ctguard.prom"
        in units["ctguard-exporter-textfile.service"]
    )
    for name, text in units.items():
        for setting in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "PrivateTmp=yes",
            "ReadWritePaths=/var/lib/ctguard",
        ):
            assert setting in text, f"{name} lacks {setting}"
        bounding = re.findall(r"^CapabilityBoundingSet=(.*)$", text, flags=re.MULTILINE)
        assert bounding and "CAP_SYS_ADMIN" not in bounding[0], name
