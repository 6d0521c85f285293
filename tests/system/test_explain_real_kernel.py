"""`ctguard explain --netns` reads a namespace's own values on the real kernel."""

import socket
from pathlib import Path

from ctguard.cli.env import ExitStatus
from tests.conftest import run_cli

UDP_TIMEOUT = "net.netfilter.nf_conntrack_udp_timeout"


def test_a_namespaces_own_timeout_and_counter(lab):
    ns = lab.add_namespace("explain")
    ns.enable_conntrack()
    host_value = int(Path("/proc/sys/" + UDP_TIMEOUT.replace(".", "/")).read_text())
    own = 47 if host_value != 47 else 48
    ns.write_sysctl(UDP_TIMEOUT, str(own))
    result = run_cli("explain", "udp_timeout", "--netns", ns.name, "--json")
    payload = result.json()
    assert result.status == ExitStatus.OK
    assert payload["host"]["value"] == own and payload["host"]["where"] == ns.name
    assert run_cli("explain", "udp_timeout", "--json").json()["host"]["value"] == host_value

    # the namespace's own count: one UDP flow on its loopback makes one entry
    with ns.entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.sendto(b"x", ("127.0.0.1", 9))
        finally:
            sock.close()
    count = run_cli("explain", "nf_conntrack_count", "--netns", ns.name, "--json").json()
    assert count["host"]["value"] == int(ns.exec(["conntrack", "-C"])) >= 1
