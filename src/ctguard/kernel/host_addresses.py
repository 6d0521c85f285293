"""Read what a block must never cover, in a namespace (read-only).

The interfaces' addresses and the default gateways (`ip -j`, run inside the
namespace), the DNS resolvers (/etc/resolv.conf), the peers of established
connections to the local sshd (/proc/thread-self/net/tcp and tcp6, read
while the thread is in the namespace), and the allowlist.  The parsing is
pure (parse/host_facts.py, rules/safety.py); this module only reads.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

from ctguard.kernel.netns import entered_netns
from ctguard.model.netns_ref import NetnsRef
from ctguard.parse.host_facts import parse_resolv_conf, parse_ssh_peers, parse_sshd_ports
from ctguard.rules.safety import DEFAULT_ALLOWLIST, Protected, parse_allowlist

RESOLV_CONF = Path("/etc/resolv.conf")
SSHD_CONFIG = Path("/etc/ssh/sshd_config")
TIMEOUT = 10.0


def _ip_json(argv: list[str]) -> list[dict[str, object]]:
    """`ip -j ...` output (in the current thread's namespace); [] when it fails."""
    if shutil.which("ip") is None:
        return []
    try:
        done = subprocess.run(
            ["ip", *argv], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return []
    if done.returncode != 0:
        return []
    data = json.loads(done.stdout or "[]")
    return data if isinstance(data, list) else []


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []


def interface_addresses(netns: NetnsRef | None) -> list[Protected]:
    """Addresses of every interface and the default gateways."""
    result = []
    with entered_netns(netns):
        links = _ip_json(["-j", "address", "show"])
        routes = _ip_json(["-4", "-j", "route", "show", "default"])
        routes += _ip_json(["-6", "-j", "route", "show", "default"])
    for link in links:
        for info in link.get("addr_info", []) or []:  # type: ignore[attr-defined]
            address = info.get("local")
            if address:
                why = f"an address of {link.get('ifname', '?')}"
                result.append(Protected(ipaddress.ip_network(address), why))
    for route in routes:
        gateway = route.get("gateway")
        if isinstance(gateway, str) and gateway:
            result.append(Protected(ipaddress.ip_network(gateway), "the default gateway"))
    return result


def resolvers(path: Path = RESOLV_CONF) -> list[Protected]:
    return [
        Protected(ipaddress.ip_network(a), f"a DNS resolver of {path}")
        for a in parse_resolv_conf(_lines(path))
    ]


def ssh_peers(netns: NetnsRef | None, sshd_config: Path = SSHD_CONFIG) -> list[Protected]:
    """Peers of established TCP connections to the local sshd port(s), now."""
    ports = parse_sshd_ports(_lines(sshd_config))
    with entered_netns(netns):
        lines = _lines(Path("/proc/thread-self/net/tcp"))
        lines += _lines(Path("/proc/thread-self/net/tcp6"))
    return [
        Protected(ipaddress.ip_network(peer), f"an SSH peer (connected to port {ports[0]})")
        for peer in parse_ssh_peers(lines, ports)
    ]


def allowlist(environ: dict[str, str]) -> list[Protected]:
    path = Path(environ.get("CTGUARD_ALLOWLIST") or DEFAULT_ALLOWLIST)
    return parse_allowlist(_lines(path), str(path))


def read_protected(netns: NetnsRef | None, environ: dict[str, str]) -> list[Protected]:
    """Everything read from the system that a block must not cover (read at each decision)."""
    return [*interface_addresses(netns), *resolvers(), *ssh_peers(netns), *allowlist(environ)]
