"""The optional command-line tools ctguard uses, and the Debian package of each.

ctguard reads /proc and /sys itself; these tools only widen what it can do
(reading the table through netlink, firewall changes). doctor names the ones
missing so an operator knows what `apt install` brings them back.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class OptionalTool:
    command: str
    package: str  # the Debian/Ubuntu package that installs it
    used_for: str


OPTIONAL_TOOLS = (
    OptionalTool("conntrack", "conntrack", "netlink table reads"),
    OptionalTool("nft", "nftables", "nftables rules and audit"),
    OptionalTool("iptables", "iptables", "iptables rules and audit"),
)


def missing_tools(path: str | None = None) -> list[OptionalTool]:
    """The optional tools not found on ``path`` (default: $PATH, then /usr/sbin and
    /sbin, which a non-root user's PATH often lacks although the tools are there)."""
    if path is None:
        path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return [tool for tool in OPTIONAL_TOOLS if shutil.which(tool.command, path=path) is None]


def missing_tools_note(missing: list[OptionalTool]) -> str:
    """One doctor line naming each missing tool and the package to install."""
    names = ", ".join(f"{tool.command} ({tool.used_for})" for tool in missing)
    packages = " ".join(sorted({tool.package for tool in missing}))
    return f"optional tools not found: {names}; install with: apt install {packages}"
