"""Firewall actions on the real kernel, inside lab namespaces only.

A server namespace is linked to two client namespaces; ctguard acts in the
server's namespace through the CLI (journal and state in a temp dir) and the
kernel's own table (`conntrack -L`) says what happened.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ctguard.cli.env import ExitStatus
from ctguard.lab.traffic import TcpServer, open_tcp_connections, wait_until
from tests.conftest import run_cli

GOLDEN = Path(__file__).parent.parent / "golden" / "firewall"


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        "CTGUARD_STATE_DIR": str(tmp_path / "state"),
        "CTGUARD_ETC_DIR": str(tmp_path / "etc"),
        "CTGUARD_ALLOWLIST": str(tmp_path / "allowlist"),
    }


def entries(ns, *args: str) -> list[str]:
    out = ns.exec(["conntrack", "-L", *args], check=False)
    return [line for line in out.splitlines() if "src=" in line]


@pytest.fixture
def topology(lab):
    """server <-> client_a (10.81.0.0/24), server <-> client_b (10.82.0.0/24)."""
    server = lab.add_namespace("srv")
    client_a = lab.add_namespace("ca")
    client_b = lab.add_namespace("cb")
    a_addr, server_a = lab.link(client_a, server, subnet=81)
    b_addr, server_b = lab.link(client_b, server, subnet=82)
    server.enable_conntrack()
    return server, (client_a, a_addr, server_a), (client_b, b_addr, server_b)


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.iptables")))
def test_golden_iptables_plans_pass_restore_test(lab, name: str) -> None:
    ns = lab.add_namespace("ipt")
    text = (GOLDEN / f"{name}.iptables").read_text()
    for part in text.split("### ")[1:]:
        header, body = part.split("\n", 1)
        if header.startswith("ipset"):
            ns.exec(["ipset", "restore", "-exist"], input_text=body)
        else:
            ns.exec([header.split()[0], "--test"], input_text=body)
    ns.exec(["ipset", "destroy"], check=False)


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.nft")))
def test_golden_scripts_pass_nft_check(lab, name: str) -> None:
    ns = lab.add_namespace("chk")
    script = (GOLDEN / f"{name}.nft").read_text()
    # --check runs the whole transaction against the kernel without committing it.
    ns.exec(["nft", "--check", "-f", "-"], input_text=script)
    assert "ctguard" not in ns.exec(["nft", "list", "ruleset"])  # nothing was committed


def others_rules(ns, backend: str) -> str:
    """The namespace's rules that are not ctguard's (what must survive untouched)."""
    if backend == "nft":
        return ns.exec(["nft", "-s", "list", "ruleset"])
    kept = []
    for tool in ("iptables-save", "ip6tables-save"):
        kept += [line for line in ns.exec([tool]).splitlines() if line.startswith("-A ")]
    return "\n".join(kept)


def no_ctguard_left(ns) -> bool:
    text = ns.exec(["nft", "list", "ruleset"]) + ns.exec(["iptables-save"])
    text += ns.exec(["ip6tables-save"]) + ns.exec(["ipset", "list", "-n"])
    return "ctguard" not in text.lower()


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_notrack_port_creates_no_entries_while_others_do(
    topology, tmp_path: Path, backend: str
) -> None:
    server, (client, _, server_addr), _ = topology
    env = env_for(tmp_path)
    result = run_cli(
        "notrack",
        "--backend",
        backend,
        "--port",
        "8080",
        "--proto",
        "tcp",
        "--netns",
        server.name,
        "--yes",
        environ=env,
    )
    assert result.status == ExitStatus.OK, result.stderr
    with TcpServer(server, server_addr, 8080), TcpServer(server, server_addr, 8081):
        exempt = open_tcp_connections(client, server_addr, 8080, 3)
        tracked = open_tcp_connections(client, server_addr, 8081, 3)
        try:
            assert len(exempt) == 3 and len(tracked) == 3  # both ports still work
            assert wait_until(lambda: len(entries(server, "-p", "tcp", "--dport", "8081")) == 3)
            assert entries(server, "-p", "tcp", "--dport", "8080") == []
        finally:
            for sock in exempt + tracked:
                sock.close()
    listed = run_cli("notrack", "--list", "--netns", server.name, "--json", environ=env)
    assert listed.json()["notrack"] == [
        {"proto": "tcp", "ports": [8080], "iface": None, "src": None}
    ]
    removed = run_cli(
        "notrack",
        "--port",
        "8080",
        "--proto",
        "tcp",
        "--remove",
        "--netns",
        server.name,
        "--yes",
        environ=env,
    )
    assert removed.status == ExitStatus.OK, removed.stderr
    assert "ctguard" not in server.exec(["nft", "-s", "list", "ruleset"])


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_block_drops_before_conntrack_deletes_entries_and_expires(
    topology, tmp_path: Path, backend: str
) -> None:
    server, (client_a, a_addr, server_a), (client_b, _, server_b) = topology
    env = env_for(tmp_path)
    ruleset_before = others_rules(server, backend)
    with TcpServer(server, "0.0.0.0", 8090):
        held = open_tcp_connections(client_a, server_a, 8090, 5)
        assert len(held) == 5
        assert wait_until(lambda: len(entries(server, "-s", a_addr)) == 5)
        result = run_cli(
            "block",
            a_addr,
            "--backend",
            backend,
            "--ttl",
            "4s",
            "--reason",
            "lab flood",
            "--netns",
            server.name,
            "--yes",
            environ=env,
        )
        assert result.status == ExitStatus.OK, result.stderr
        assert entries(server, "-s", a_addr) == []  # old entries deleted
        blocked = run_cli("blocked", "--netns", server.name, "--json", environ=env).json()
        assert blocked["loaded"] is True
        assert [(b["network"], b["reason"]) for b in blocked["blocks"]] == [
            (f"{a_addr}/32", "lab flood")
        ]
        for sock in held:
            sock.close()
        assert open_tcp_connections(client_a, server_a, 8090, 1, deadline=2) == []
        assert entries(server, "-s", a_addr) == []  # dropped at raw: no entry allocated
        other = open_tcp_connections(client_b, server_b, 8090, 2)
        assert len(other) == 2  # an innocent source still connects
        for sock in other:
            sock.close()
        time.sleep(4.5)  # the set element expires by itself
        again = open_tcp_connections(client_a, server_a, 8090, 1)
        assert len(again) == 1
        again[0].close()
    removed = run_cli("unblock", "--all", "--netns", server.name, "--yes", environ=env)
    assert removed.status == ExitStatus.OK, removed.stderr
    assert others_rules(server, backend) == ruleset_before  # byte for byte
    assert no_ctguard_left(server)


def test_rollback_restores_the_previous_table_and_removes_it_at_the_end(
    topology, tmp_path: Path
) -> None:
    server, (_, a_addr, _), (_, b_addr, _) = topology
    env = env_for(tmp_path)
    ruleset_before = server.exec(["nft", "-s", "list", "ruleset"])
    for target in (a_addr, b_addr):
        done = run_cli("block", target, "--netns", server.name, "--yes", environ=env)
        assert done.status == ExitStatus.OK, done.stderr
    assert run_cli("rollback", "--yes", environ=env).status == ExitStatus.OK
    listing = server.exec(["nft", "list", "table", "inet", "ctguard"])
    assert a_addr in listing and b_addr not in listing
    assert run_cli("rollback", "--yes", environ=env).status == ExitStatus.OK
    assert server.exec(["nft", "-s", "list", "ruleset"]) == ruleset_before


def test_block_refuses_the_namespace_own_address(topology, tmp_path: Path) -> None:
    server, (_, _, server_a), _ = topology
    result = run_cli("block", server_a, "--netns", server.name, environ=env_for(tmp_path))
    assert result.status == ExitStatus.USAGE and "an address of" in result.stderr
    (tmp_path / "allowlist").write_text("10.82.0.0/24  # partners\n")
    allowed = run_cli("block", "10.82.0.1", "--netns", server.name, environ=env_for(tmp_path))
    assert allowed.status == ExitStatus.USAGE and "allowlist" in allowed.stderr


def test_notrack_says_when_a_stateful_policy_would_drop_untracked(topology, tmp_path) -> None:
    server, _, _ = topology
    server.nft(
        "table inet hostfw {\n"
        "  chain input { type filter hook input priority 0; policy drop;\n"
        "    ct state established,related accept\n  }\n}\n"
    )
    result = run_cli("notrack", "--port", "53", "--netns", server.name, environ=env_for(tmp_path))
    assert result.status == ExitStatus.OK, result.stderr
    assert "nft insert rule inet hostfw input ct state untracked accept" in result.stdout


def trace_matches(ns) -> int:
    listing = ns.exec(["nft", "list", "chain", "inet", "ctguard", "trace"])
    return int(listing.split("counter packets ")[1].split()[0])


def test_trace_matches_new_connections_until_it_expires(topology, tmp_path: Path) -> None:
    server, (client, _, server_addr), _ = topology
    env = env_for(tmp_path)
    result = run_cli(
        "trace",
        "--dport",
        "8090",
        "--proto",
        "tcp",
        "--ttl",
        "3s",
        "--netns",
        server.name,
        "--yes",
        environ=env,
    )
    assert result.status == ExitStatus.OK, result.stderr
    with TcpServer(server, server_addr, 8090):
        first = open_tcp_connections(client, server_addr, 8090, 3)
        assert len(first) == 3
        assert trace_matches(server) == 3  # one match per new connection, not per packet
        for sock in first:
            sock.send(b"more packets of the same connections")
        time.sleep(3.5)
        later = open_tcp_connections(client, server_addr, 8090, 2)
        assert len(later) == 2
        assert trace_matches(server) == 3  # expired by itself: no more matches
        for sock in first + later:
            sock.close()
    stopped = run_cli("trace", "--remove", "--netns", server.name, "--yes", environ=env)
    assert stopped.status == ExitStatus.OK, stopped.stderr
    assert "ctguard" not in server.exec(["nft", "list", "ruleset"])


def test_audit_lists_the_rules_that_track_in_a_namespace(lab) -> None:
    ns = lab.add_namespace("audit")
    ns.enable_conntrack()
    ns.exec(
        ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/24", "-j", "MASQUERADE"]
    )
    data = run_cli("audit", "--netns", ns.name, "--json").json()
    found = {(r["backend"], r["feature"]) for r in data["rules"]}
    assert ("nftables", "ct state") in found
    assert ("iptables", "source NAT") in found
    assert not any(
        r["location"].startswith("ip nat") for r in data["rules"] if r["backend"] == "nftables"
    )  # iptables-nft's own table: counted once
    assert data["tracking_needed"] is True


def test_a_ruleset_the_kernel_refuses_fails_before_anything_is_written(lab, tmp_path) -> None:
    from ctguard.effects.executor import apply_plan
    from ctguard.effects.journal import Journal
    from ctguard.effects.slots import System
    from ctguard.errors import CtguardError
    from ctguard.plan.actions import LoadNftables, Plan, WriteFile

    ns = lab.add_namespace("bad")
    state_file = tmp_path / "state.json"
    bad = "table inet ctguard {\n\tchain c {\n\t\tthis is not nft\n\t}\n}\n"
    plan = Plan(
        "bad",
        (WriteFile(str(state_file), "{}\n"), LoadNftables("inet ctguard", bad, ns.ref)),
    )
    journal = Journal(tmp_path / "journal")
    with pytest.raises(CtguardError, match="nft --check"):
        apply_plan(plan, journal, System())
    assert not state_file.exists() and journal.all() == []
    assert "ctguard" not in ns.exec(["nft", "list", "ruleset"])


def udp_arrives(server, server_addr: str, client, client_addr: str, sport: int) -> bool:
    """Whether one datagram from ``client_addr:sport`` reaches a socket on ``server_addr``."""
    import socket

    with server.entered():
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with client.entered():
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind((server_addr, 5353))
        receiver.settimeout(1.0)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sender.bind((client_addr, sport))
        sender.sendto(b"reply", (server_addr, 5353))
        try:
            return receiver.recv(64) == b"reply"
        except TimeoutError:
            return False


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_qualified_block_drops_only_the_named_protocol_and_port(
    topology, tmp_path: Path, backend: str
) -> None:
    server, (client_a, a_addr, server_a), (_, b_addr, _) = topology
    env = env_for(tmp_path)
    ruleset_before = others_rules(server, backend)
    assert udp_arrives(server, server_a, client_a, a_addr, 53)  # before: it passes
    result = run_cli(
        "block",
        a_addr,
        "--proto",
        "udp",
        "--sport",
        "53",
        "--backend",
        backend,
        "--netns",
        server.name,
        "--yes",
        environ=env,
    )
    assert result.status == ExitStatus.OK, result.stderr
    also = run_cli("block", b_addr, "--netns", server.name, "--yes", environ=env)
    assert also.status == ExitStatus.OK, also.stderr
    with TcpServer(server, server_a, 8090):
        assert not udp_arrives(server, server_a, client_a, a_addr, 53)  # the named traffic
        assert entries(server, "-p", "udp", "-s", a_addr, "--sport", "53") == []  # at raw
        assert udp_arrives(server, server_a, client_a, a_addr, 5300)  # another port passes
        tcp = open_tcp_connections(client_a, server_a, 8090, 2)
        assert len(tcp) == 2  # TCP from the same source passes
        for sock in tcp:
            sock.close()
    listed = run_cli("blocked", "--netns", server.name, "--json", environ=env).json()
    assert listed["loaded"] is True
    assert [(b["network"], b["proto"], b["sport"], b["dport"]) for b in listed["blocks"]] == [
        (f"{a_addr}/32", "udp", 53, None),
        (f"{b_addr}/32", None, None, None),
    ]
    plain = run_cli("unblock", a_addr, "--netns", server.name, "--yes", environ=env)
    assert plain.status == ExitStatus.USAGE  # only the qualified block exists: named exactly
    assert f"{a_addr}/32 udp sport 53" in plain.stderr
    exact = ["unblock", a_addr, "--proto", "udp", "--sport", "53", "--netns", server.name]
    done = run_cli(*exact, "--yes", environ=env)
    assert done.status == ExitStatus.OK, done.stderr
    assert udp_arrives(server, server_a, client_a, a_addr, 53)
    listed = run_cli("blocked", "--netns", server.name, "--json", environ=env).json()
    assert [b["network"] for b in listed["blocks"]] == [f"{b_addr}/32"]
    assert run_cli("unblock", "--all", "--netns", server.name, "--yes", environ=env).status == 0
    assert others_rules(server, backend) == ruleset_before
    assert no_ctguard_left(server)


def iptables_trace_matches(ns) -> int:
    saved = ns.exec(["iptables-save", "-c", "-t", "mangle"])
    rules = [line for line in saved.splitlines() if "-A CTGUARD-TRACE" in line]
    return sum(int(line.split(":")[0].lstrip("[")) for line in rules)


@pytest.mark.parametrize("backend", ["nft", "iptables"])
def test_qualified_trace_matches_only_the_named_traffic(
    topology, tmp_path: Path, backend: str
) -> None:
    from ctguard.lab.traffic import send_udp

    server, (client, client_addr, server_addr), (other, _, other_server) = topology
    env = env_for(tmp_path)
    result = run_cli(
        "trace",
        "--src",
        client_addr,
        "--dst",
        server_addr,
        "--proto",
        "udp",
        "--dport",
        "5353",
        "--backend",
        backend,
        "--ttl",
        "1m",
        "--netns",
        server.name,
        "--yes",
        environ=env,
    )
    assert result.status == ExitStatus.OK, result.stderr
    matches = trace_matches if backend == "nft" else iptables_trace_matches
    # Each UDP packet of an unanswered flow is "new": send one to the traced port.
    assert send_udp(client, server_addr, [5353, 5354, 5355]) == 3
    assert send_udp(other, other_server, [5353]) == 1  # another source
    with TcpServer(server, server_addr, 5353):
        tcp = open_tcp_connections(client, server_addr, 5353, 2)  # TCP to the same port
        assert len(tcp) == 2
        for sock in tcp:
            sock.close()
    assert wait_until(lambda: len(entries(server, "-p", "udp")) == 4)
    assert matches(server) == 1  # the UDP datagram to 5353 from that source, nothing else
    stopped = run_cli("trace", "--remove", "--netns", server.name, "--yes", environ=env)
    assert stopped.status == ExitStatus.OK, stopped.stderr
    assert no_ctguard_left(server)
