"""SYN floods against a server that answers: the entries are SYN_RECV, never [UNREPLIED]."""

from __future__ import annotations

import re
from pathlib import Path

from ctguard.lab.traffic import TcpServer, syn_flood, wait_until
from tests.conftest import run_cli

FINDINGS_DOC = Path(__file__).parent.parent.parent / "docs" / "findings.md"
# the client's kernel knows none of the raw SYNs: it would answer each SYN-ACK with
# a RST (entry gone); dropped, the server's entries stay SYN_RECV
NO_RST = (
    "table inet ctg_no_rst {\n"
    "  chain out { type filter hook output priority 0; policy accept;\n"
    "    tcp flags & rst == rst drop; }\n"
    "}\n"
)


def states(listing: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in listing.splitlines():
        match = re.match(r"tcp\s+6\s+\d+\s+(\S+)", line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def test_a_real_half_open_flood_against_a_listening_server_is_named(lab):
    server = lab.add_namespace("srv")
    client = lab.add_namespace("cli")
    client_addr, server_addr = lab.link(client, server)
    server.enable_conntrack()
    client.nft(NO_RST)
    with TcpServer(server, server_addr, 8443):
        assert syn_flood(client, client_addr, server_addr, 8443, 1500) == 1500
        assert wait_until(
            lambda: states(server.exec(["conntrack", "-L"])).get("SYN_RECV", 0) >= 1500,
            timeout=10,
        )
        listing = server.exec(["conntrack", "-L"])
        assert "SYN_RECV" in listing and "UNREPLIED" not in listing  # the server answered

        data = run_cli("analyze", "--netns", server.name, "--json").json()
    assert data["syn_recv"] >= 1500 and data["syn_sent_unreplied"] == 0
    (finding,) = [f for f in data["findings"] if f["code"] == "CT502"]
    assert re.search(r"[\d,]+ SYN_RECV \(answered", finding["evidence"])
    assert "unreplied SYN_SENT" not in finding["evidence"]
    assert "8443" in finding["evidence"]
    assert f"sources: {client_addr} " in finding["evidence"]
    assert finding["next_command"].startswith(
        f"ctguard block {client_addr} --ttl 1h --reason 'SYN flood' --netns {server.name}"
    )


def test_syn_recv_entries_made_through_ctnetlink_from_spoofed_sources(lab):
    """`conntrack -I` makes SYN_RECV entries with SEEN_REPLY (what the kernel's are)."""
    ns = lab.add_namespace("spoofed")
    commands = "".join(
        f"-I -p tcp -s 198.51.{i // 250}.{i % 250 + 1} -d 10.0.0.1 --sport {30000 + i} "
        f"--dport 443 --state SYN_RECV -t 120 -u SEEN_REPLY\n"
        for i in range(1200)
    )
    ns.exec(["conntrack", "-R", "/dev/stdin"], input_text=commands)
    listing = ns.exec(["conntrack", "-L"])
    assert states(listing) == {"SYN_RECV": 1200} and "UNREPLIED" not in listing

    data = run_cli("analyze", "--netns", ns.name, "--json").json()
    assert (data["syn_recv"], data["syn_half_open"]) == (1200, 1200)
    (finding,) = [f for f in data["findings"] if f["code"] == "CT502"]
    assert "1,200 half-open entries (100.0%): 1,200 SYN_RECV" in finding["evidence"]
    assert "SYNPROXY on port 443" in finding["why"]  # many sources: nothing to block


def test_the_documented_synproxy_ruleset_passes_nft_check(lab):
    """docs/findings.md's SYNPROXY lines, for a server (input) and a gateway (forward)."""
    text = FINDINGS_DOC.read_text()
    section = text.split("## SYN floods: block or SYNPROXY", 1)[1]
    script = section.split("```nft\n", 1)[1].split("```", 1)[0]
    assert "synproxy mss" in script and "notrack" in script
    ns = lab.add_namespace("synproxy")
    for variant in (script, script.replace("hook input", "hook forward")):
        ns.exec(["nft", "--check", "-f", "-"], input_text=variant)  # raises if refused
    assert "syn_guard" not in ns.exec(["nft", "list", "ruleset"])  # checked, not loaded
