"""`ctguard report`: the data it shows (golden), and one self-contained HTML file."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from benchmarks.dumpgen import flow_entry, generate_entries, render_entry

from ctguard.cli.env import ExitStatus
from ctguard.gather.report import gather_report
from ctguard.kernel.root import KernelRoot
from ctguard.render.report_html import render_report_html
from ctguard.render.report_json import report_json
from tests.conftest import run_cli
from tests.fixture_roots import root_near_full_with_drops, roots_write

GOLDEN = Path(__file__).parent.parent / "golden" / "report"
BOOT = 1_800_000_000.0
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
RULESET = """table inet filter {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\ttcp dport 443 accept
\t}
}
"""


def flood_lines(normal: int) -> str:
    entries = list(generate_entries(normal, seed=7)) + [
        flow_entry(
            "198.51.100.9",
            "192.0.2.80",
            "ipv4",
            proto="tcp",
            protonum=6,
            timeout=60,
            state="SYN_RECV",
            sport=1024 + i % 60000,
            dport=443,
            reply_sport=443,
            reply_dport=1024 + i % 60000,
            unreplied=True,
            status=None,
        )
        for i in range(normal)
    ]
    return "".join(render_entry(e, "procfs") + "\n" for e in entries)


def make_bundle(base: Path, entries: int = 3000) -> Path:
    root = root_near_full_with_drops(base)
    roots_write(root, "proc/net/nf_conntrack", flood_lines(entries // 2))
    roots_write(root, "proc/uptime", "7200.00 0.00\n")
    dmesg = "".join(
        f"[{t:.6f}] nf_conntrack: nf_conntrack: table full, dropping packet\n"
        for t in (3600, 3601, 3602, 3660, 5400)
    )
    roots_write(
        root, "cmd/dmesg.txt", dmesg + "[5401.000000] net_ratelimit: 40 callbacks suppressed\n"
    )
    roots_write(root, "cmd/nft_list_ruleset.txt", RULESET)
    manifest = {
        "format": 1,
        "captured_at": "2027-01-15T10:00:00+0000",
        "captured_at_epoch": BOOT + 7200,
        "hostname": "edge-gw-1",
        "kernel": "4.4.0-1052-aws",
        "files": ["proc/net/nf_conntrack", "cmd/dmesg.txt", "cmd/nft_list_ruleset.txt"],
        "missing": {"proc/slabinfo": "permission denied"},
    }
    roots_write(root, "manifest.json", json.dumps(manifest))
    return root


def data_of(root: Path, tmp_path: Path) -> dict:
    data = gather_report(
        KernelRoot.from_bundle(root), None, is_root=False, state_dir=tmp_path / "state", now=NOW
    )
    return report_json(data)


def test_report_data_of_a_bundle_is_pinned(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "bundle")
    payload = data_of(root, tmp_path)
    text = json.dumps(payload, indent=1, sort_keys=True).replace(str(root), "BUNDLE") + "\n"
    path = GOLDEN / "near-full-bundle.json"
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), "the report's data differs from its golden file"
    # what an operator must find in it, whatever the wording
    assert payload["host"] == "edge-gw-1" and payload["verdict"] == "crit"
    assert payload["doctor"]["table"]["top"]["src"][0]["key"] == "198.51.100.9"
    codes = {f["code"] for f in payload["doctor"]["findings"]}
    assert {"CT501", "CT502"} <= codes
    assert payload["doctor"]["kernel_log"]["table_full_lines"] == 5
    assert payload["bundle"]["missing"] == [{"file": "proc/slabinfo", "why": "permission denied"}]
    assert any(cmd.startswith("ctguard top") for cmd in payload["next_commands"])


def test_the_html_is_one_self_contained_file(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "bundle")
    html = render_report_html(data_of(root, tmp_path))
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # nothing to fetch: no script, stylesheet link, external image, frame or font
    assert not re.search(r"<script|<link|<iframe|<object|@import|url\((?!#)", html, re.I)
    # references inside the document only (the plots' own clip paths and markers)
    assert not re.search(r"""(?:src|href)\s*=\s*(?!["']?(?:data:|#))""", html, re.I)
    assert html.count("<svg") >= 5  # the timeline and the bar charts, inline
    for text in ("edge-gw-1", "198.51.100.9", "CT501", "CT502", "What to run next"):
        assert text in html


def test_a_larger_table_does_not_make_a_larger_report(tmp_path: Path) -> None:
    small = render_report_html(data_of(make_bundle(tmp_path / "s", 2_000), tmp_path))
    large = render_report_html(data_of(make_bundle(tmp_path / "l", 40_000), tmp_path))
    assert len(large) < len(small) * 1.25  # bounded: top lists and bins, not entries


def test_cli_writes_the_file_and_refuses_bad_outputs(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "bundle")
    env = {"CTGUARD_STATE_DIR": str(tmp_path / "state")}
    out = tmp_path / "pm.html"
    done = run_cli("report", "--root", str(root), "-o", str(out), environ=env)
    assert done.status == ExitStatus.OK, done.stderr
    assert f"report written: {out}" in done.stdout and out.read_text().startswith("<!DOCTYPE")
    wrong = run_cli("report", "--root", str(root), "-o", str(tmp_path / "pm.pdf"), environ=env)
    assert wrong.status == ExitStatus.USAGE and "FILE.html" in wrong.stderr
    nowhere = run_cli("report", "--root", str(root), "-o", str(tmp_path / "no/pm.html"))
    assert nowhere.status == ExitStatus.UNKNOWN and "does not exist" in nowhere.stderr
    backwards = run_cli("report", "--root", str(root), "--since", "1h", "--until", "2h")
    assert backwards.status == ExitStatus.USAGE
    data = run_cli("report", "--root", str(root), "--json", environ=env).json()
    assert data["host"] == "edge-gw-1"


@pytest.mark.parametrize("name", ["my report.html"])
def test_default_and_quoted_names(tmp_path: Path, name: str, monkeypatch) -> None:
    from ctguard.cli.report import default_name

    assert default_name("edge gw/1", NOW) == "ctguard-report-edge_gw_1-20270115T120000Z.html"
    monkeypatch.chdir(tmp_path)
    root = make_bundle(tmp_path / "bundle")
    assert run_cli("report", "--root", str(root), "-o", name).status == ExitStatus.OK
    assert (tmp_path / name).exists()


def test_the_html_shows_the_neighbour_tables_to_raise(tmp_path: Path) -> None:
    from tests.fixture_roots import write_neighbours

    root = make_bundle(tmp_path / "root")
    write_neighbours(root, "ipv4", 1000, table_fulls=37)
    html = render_report_html(data_of(root, tmp_path))
    assert "<h3>Neighbour tables</h3>" in html
    assert "<td>ipv4 (arp_cache)</td>" in html and "<td>512/2048/4096</td>" in html
    quiet = render_report_html(data_of(make_bundle(tmp_path / "quiet"), tmp_path))
    assert "Neighbour tables" not in quiet
