"""`ctguard top` and `ctguard analyze` end to end, in-process."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from benchmarks.dumpgen import flow_entry, generate_entries, render_entry

from ctguard.cli.env import ExitStatus
from ctguard.parse.conntrack_table import Entry
from tests.conftest import CliResult

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"
Cli = Callable[..., CliResult]


def tcp(
    src: str,
    sport: int,
    dport: int,
    state: str = "ESTABLISHED",
    timeout: int = 431000,
    dst: str = "192.0.2.80",
    unreplied: bool = False,
    status: str | None = "ASSURED",
    proto: str = "tcp",
) -> Entry:
    return flow_entry(
        src,
        dst,
        "ipv4",
        proto=proto,
        protonum=6 if proto == "tcp" else 17,
        timeout=timeout,
        state=state if proto == "tcp" else None,
        sport=sport,
        dport=dport,
        reply_sport=dport,
        reply_dport=sport,
        unreplied=unreplied,
        status=status,
    )


def write(tmp_path: Path, entries: list[Entry], fmt: str = "procfs") -> str:
    path = tmp_path / "dump.txt"
    path.write_text("".join(render_entry(e, fmt) + "\n" for e in entries))
    return str(path)


def test_top_json_shape_and_counts(cli: Cli) -> None:
    result = cli("top", str(SAMPLES / "conntrack_L_k6.18.txt"), "--by", "src,dport", "--json")
    assert result.status == ExitStatus.OK
    data = result.json()
    assert data["entries"] == 13 and data["skipped"] == 0 and data["declared_entries"] == 13
    first = data["groups"][0]
    assert first == {
        "key": "10.77.0.1,8090",
        "values": {"src": "10.77.0.1", "dport": 8090},
        "count": 5,
        "share": round(5 / 13, 6),
    }
    assert {t["key"] for t in data["totals"]["proto"]} == {"tcp", "udp", "icmp"}


def test_top_subnets_filters_and_csv(cli: Cli, tmp_path: Path) -> None:
    entries = [tcp(f"10.1.{i % 3}.{i}", 40000 + i, 443) for i in range(30)]
    entries += [
        tcp("10.9.9.9", 50000 + i, 22, "SYN_SENT", 100, unreplied=True, status=None)
        for i in range(7)
    ]
    dump = write(tmp_path, entries)
    data = cli("top", dump, "--by", "src/24", "--json", "-n", "0").json()
    assert {g["key"]: g["count"] for g in data["groups"]} == {
        "10.1.0.0/24": 10,
        "10.1.1.0/24": 10,
        "10.1.2.0/24": 10,
        "10.9.9.0/24": 7,
    }
    filtered = cli("top", dump, "--dport", "22", "--unreplied", "--state", "syn_sent", "--json")
    assert filtered.json()["matched"] == 7
    assert filtered.json()["groups"] == [
        {"key": "10.9.9.9", "values": {"src": "10.9.9.9"}, "count": 7, "share": round(7 / 37, 6)}
    ]
    none = cli("top", dump, "--src", "10.1.0.0/16", "--assured", "--by", "dport", "--csv")
    assert none.stdout.splitlines() == ["dport,count,share", f"443,30,{round(30 / 37, 6)}"]


def test_top_reads_stdin_and_gzip(cli: Cli, tmp_path: Path) -> None:
    text = (SAMPLES / "nf_conntrack_procfs_k6.18_acct_ts.txt").read_text()
    assert cli("top", "-", "--json", stdin=text).json()["entries"] == 13
    packed = tmp_path / "table.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    assert cli("top", str(packed), "--json").json()["entries"] == 13


def test_skipped_lines_are_reported_and_strict_fails(cli: Cli) -> None:
    sample = str(SAMPLES / "ip_conntrack_compat_moooofly_lls_k8s_node_nat.txt")
    text = cli("top", sample)
    assert text.status == ExitStatus.OK
    assert "skipped 2 line(s)" in text.stdout and "line 1: shell prompt" in text.stdout
    strict = cli("top", sample, "--strict")
    assert strict.status == ExitStatus.UNKNOWN
    assert "line 1" in strict.stderr and "--strict" in strict.stderr


def test_bad_usage_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    assert cli("top", "--by", "colour", str(SAMPLES / "conntrack_L_k6.18.txt")).status == 64
    assert cli("top", "--src", "10.0.0.300", str(SAMPLES / "conntrack_L_k6.18.txt")).status == 64
    missing = cli("top", str(tmp_path / "nope.txt"))
    assert missing.status == ExitStatus.UNKNOWN and "no such dump file" in missing.stderr


def test_analyze_clean_table_is_ok(cli: Cli, tmp_path: Path) -> None:
    dump = tmp_path / "mixed.txt"
    dump.write_text("".join(render_entry(e, "procfs") + "\n" for e in generate_entries(5000, 5)))
    result = cli("analyze", str(dump), "--json")
    data = result.json()
    assert result.status == ExitStatus.OK, data["findings"]
    assert [f["code"] for f in data["findings"]] == ["CT508"]
    assert data["assured"] + data["evictable"] == 5000


def codes(result: CliResult) -> dict[str, str]:
    return {f["code"]: f["next_command"] for f in result.json()["findings"]}


def test_analyze_finds_a_dominant_syn_flooding_scanner(cli: Cli, tmp_path: Path) -> None:
    normal = [tcp(f"10.0.{i // 250}.{i % 250}", 30000 + i, 443) for i in range(1000)]
    flood = [
        tcp("198.51.100.9", 1024 + i, 1 + i % 400, "SYN_RECV", 60, unreplied=True, status=None)
        for i in range(2000)
    ]
    result = cli("analyze", write(tmp_path, normal + flood), "--json")
    found = codes(result)
    assert result.status == ExitStatus.CRIT
    assert {"CT501", "CT502", "CT504", "CT508"} <= set(found)
    assert "--src 198.51.100.9" in found["CT501"]
    assert "--src 198.51.100.9" in found["CT504"]
    assert result.json()["top"]["distinct_dports_per_src"][0] == {
        "key": "198.51.100.9",
        "count": 400,
    }


def test_analyze_finds_a_udp_53_flood(cli: Cli, tmp_path: Path) -> None:
    entries = [
        tcp(
            f"10.2.{i // 200}.{i % 200}",
            20000 + i,
            53,
            proto="udp",
            timeout=30,
            unreplied=True,
            status=None,
        )
        for i in range(3000)
    ]
    entries += [tcp(f"10.3.0.{i % 200}", 30000 + i, 443) for i in range(1000)]
    found = codes(cli("analyze", write(tmp_path, entries, "conntrack"), "--json"))
    assert found["CT503"].endswith("--proto udp --unreplied --dport 53 --by src")


def test_analyze_finds_orphans_and_time_wait(cli: Cli, tmp_path: Path) -> None:
    idle = [
        tcp(f"10.4.{i // 200}.{i % 200}", 10000 + i, 5432, timeout=432000 - 90000)
        for i in range(1500)
    ]
    fresh = [tcp(f"10.5.0.{i % 200}", 20000 + i, 443, timeout=431990) for i in range(300)]
    waits = [tcp(f"10.6.0.{i % 200}", 30000 + i, 80, "TIME_WAIT", 100) for i in range(2000)]
    data = cli("analyze", write(tmp_path, idle + fresh + waits), "--json").json()
    found = {f["code"]: f for f in data["findings"]}
    assert "CT505" in found and "1,500" in found["CT505"]["evidence"]
    assert data["established"]["idle"] == {
        "idle > 1 day": 1500,
        "idle 1 h - 1 day": 0,
        "idle < 1 h": 300,
    }
    assert "TIME_WAIT" in found["CT506"]["title"]


def test_analyze_nat_gateway(cli: Cli) -> None:
    data = cli(
        "analyze", str(SAMPLES / "nf_conntrack_procfs_moooofly_lls_k8s_node_timewait.txt"), "--json"
    ).json()
    assert data["nat"] == 12 and data["entries"] == 13


def golden_text(name: str, text: str) -> None:
    import os

    path = Path(__file__).parent.parent / "golden" / "analyze" / name
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


def flood_table() -> list[Entry]:
    normal = [tcp(f"10.0.{i // 250}.{i % 250}", 30000 + i, 443) for i in range(1000)]
    flood = [
        tcp("198.51.100.9", 1024 + i, 1 + i % 400, "SYN_RECV", 60, unreplied=True, status=None)
        for i in range(2000)
    ]
    return normal + flood


def test_analyze_text_output_is_pinned(cli: Cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = "".join(render_entry(e, "procfs") + "\n" for e in flood_table())
    Path("flood dump.txt").write_text(lines + "not an entry\n")
    result = cli("analyze", "flood dump.txt")
    assert result.status == ExitStatus.CRIT, result.stderr
    golden_text("flood.txt", result.stdout)
    monkeypatch.chdir(SAMPLES)
    nat = cli("analyze", "nf_conntrack_procfs_moooofly_lls_k8s_node_timewait.txt")
    golden_text("k8s-node-timewait.txt", nat.stdout)


def test_suggested_commands_are_quoted_for_the_shell(cli: Cli, tmp_path: Path) -> None:
    import shlex

    for name in ("my dump.txt", "x$(touch pwned);y.txt", "it's.txt"):
        path = tmp_path / name
        path.write_text("".join(render_entry(e, "procfs") + "\n" for e in flood_table()) + "?\n")
        found = codes(cli("analyze", str(path), "--json"))
        # each word comes back as it was meant: no word split, nothing run
        assert shlex.split(found["CT509"]) == ["ctguard", "top", str(path), "--strict"]
        words = shlex.split(found["CT501"], comments=True)
        assert words[:3] == ["ctguard", "top", str(path)]
    assert not (tmp_path / "pwned").exists()


def test_analyze_unpacks_a_packed_bundle_once(cli: Cli, tmp_path: Path, monkeypatch) -> None:
    import tarfile

    from tests.fixture_roots import root_idle_6x, roots_write

    bundle = root_idle_6x(tmp_path / "host")
    roots_write(
        bundle,
        "proc/net/nf_conntrack",
        "".join(render_entry(e, "procfs") + "\n" for e in flood_table()),
    )
    packed = tmp_path / "host.tar.gz"
    with tarfile.open(packed, "w:gz") as archive:
        archive.add(bundle, arcname="host")
    opened: list[str] = []
    real_open = tarfile.open

    def counting_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(args[0]))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(tarfile, "open", counting_open)
    result = cli("analyze", "--root", str(packed), "--json")
    assert result.status == ExitStatus.CRIT, result.stderr
    assert opened == [str(packed)]
    assert shlex_words(codes(result)["CT501"])[:4] == ["ctguard", "top", "--root", str(packed)]


def shlex_words(command: str) -> list[str]:
    import shlex

    return shlex.split(command, comments=True)
