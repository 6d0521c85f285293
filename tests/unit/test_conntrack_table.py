"""The dump grammar: every sample, every format, garbage, summaries, chunking."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from benchmarks.dumpgen import FORMATS, generate_entries, render_entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctguard.analyze.table_query import TableFilter, parse_dimensions
from ctguard.analyze.table_top import build_top, top_scan_spec
from ctguard.kernel.table_chunks import iter_chunks, iter_chunks_ahead
from ctguard.kernel.table_source import TableSource, scan_table
from ctguard.parse.conntrack_table import (
    COLUMNS,
    ENTRY_RE,
    Entry,
    build_procfs_scan_pattern,
    build_scan_pattern,
    expected_shape,
    line_shape,
    parse_entry_line,
    rows_account_for_every_line,
)
from ctguard.parse.table_scan import ScanSpec, TableScanner, scan_chunks, split_summaries

SAMPLES = Path(__file__).parent.parent / "fixtures" / "samples"

# file -> (entries, skipped lines, conntrack's declared count)
SAMPLE_COUNTS = {
    "nf_conntrack_procfs_k6.18_acct_ts.txt": (13, 0, None),
    "nf_conntrack_procfs_moooofly_lls_k8s_node_timewait.txt": (13, 2, None),
    "nf_conntrack_procfs_turris_foris_acct_ipv6.txt": (8, 0, None),
    "ip_conntrack_compat_moooofly_lls_close_wait.txt": (18, 12, None),
    "ip_conntrack_compat_moooofly_lls_k8s_node_nat.txt": (12, 2, None),
    "ip_conntrack_legacy_2_4_rigacci_quoted_moooofly_lls.txt": (6, 0, None),
    "conntrack_L_extended_hotsos_fip_netns_empty.txt": (0, 0, 0),
    "conntrack_L_extended_hotsos_openstack_trimmed.txt": (265, 0, 1438),
    "conntrack_L_extended_hotsos_snat_netns.txt": (2, 0, 2),
    "conntrack_L_extended_k6.18.txt": (13, 0, 13),
    "conntrack_L_ipv6_k6.18.txt": (4, 0, 4),
    "conntrack_L_k6.18.txt": (13, 0, 13),
    "nf_conntrack_procfs_k6.18_gre_sctp.txt": (3, 0, None),
    "conntrack_L_k6.18_gre_sctp.txt": (3, 0, 3),
    "conntrack_E_timestamp_k6.18.txt": (4, 0, 4),
    "conntrack_E_extended_id_k6.18.txt": (4, 0, 4),
}

ALL_COLUMNS = tuple(c for c in COLUMNS if c not in ("timeout", "nat"))
TOP_COLUMNS = ("proto", "state", "src")
ANALYZE_COLUMNS = ("proto", "timeout", "state", "src", "dst", "dport", "unreplied", "nat", "status")


def scan_bytes(data: bytes, columns: tuple[str, ...] = ("src",), chunk: int = 1 << 20):
    spec = ScanSpec(columns=columns, tallies=(columns,))
    return scan_chunks(spec, iter_chunks(io.BytesIO(data), chunk))


@pytest.mark.parametrize("name", sorted(SAMPLE_COUNTS))
def test_every_sample_parses_with_the_right_counts(name: str) -> None:
    entries, skipped, declared = SAMPLE_COUNTS[name]
    data = (SAMPLES / name).read_bytes()
    for columns in (("src",), ("proto", "state", "dport", "unreplied", "status"), ALL_COLUMNS):
        result = scan_bytes(data, columns)
        assert (result.entries, result.skipped.count) == (entries, skipped)
        assert (sum(result.declared) if result.declared else None) == declared


def test_sample_fields_procfs_ipv6_acct() -> None:
    lines = (SAMPLES / "nf_conntrack_procfs_turris_foris_acct_ipv6.txt").read_text().splitlines()
    unknown = parse_entry_line(lines[1])
    assert unknown is not None
    assert (unknown.proto, unknown.protonum, unknown.timeout, unknown.sport) == (
        "unknown",
        2,
        491,
        None,
    )
    assert unknown.unreplied and unknown.packets == 509
    v6 = parse_entry_line(lines[-1])
    assert v6 is not None and v6.family == "ipv6" and v6.dport == 53 and v6.reply_bytes == 263
    natted = parse_entry_line(lines[0])
    assert natted is not None and natted.nat and natted.zone == 0 and natted.use == 2


def test_sample_fields_conntrack_tools_and_legacy() -> None:
    icmp = parse_entry_line((SAMPLES / "conntrack_L_k6.18.txt").read_text().splitlines()[6])
    assert icmp is not None and (icmp.proto, icmp.icmp_type, icmp.icmp_id) == ("icmp", 8, 4321)
    legacy = (SAMPLES / "ip_conntrack_legacy_2_4_rigacci_quoted_moooofly_lls.txt").read_text()
    first = parse_entry_line(legacy.splitlines()[0])
    assert first is not None and first.mark is None and first.unreplied and first.status is None
    assert parse_entry_line(legacy.splitlines()[-1]).status == "ASSURED"  # type: ignore[union-attr]


def test_ipv6_is_canonical_whatever_the_input_form() -> None:
    for name in ("nf_conntrack_procfs_k6.18_acct_ts.txt", "conntrack_L_k6.18.txt"):
        dims = parse_dimensions("src")
        spec = top_scan_spec(dims, TableFilter())
        data = (SAMPLES / name).read_bytes()
        scan = scan_chunks(spec, iter_chunks(io.BytesIO(data)))
        top = build_top(name, scan, dims, TableFilter(), 0)
        assert dict(top.groups)[("fd00:77::1",)] == 4


def test_timestamped_events_with_tab_or_expanded_spaces_and_kernel_timestamps() -> None:
    # conntrack -E -o timestamp,ktimestamp: "[sec.usec]<TAB>", right-aligned
    # event, and on DESTROY the kernel's start/stop times and delta-time
    event = (
        "[1763783171.123456]{gap}[DESTROY] tcp      6 src=10.0.0.1 dst=10.0.0.2 sport=40000 "
        "dport=80 packets=5 bytes=300 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 "
        "packets=4 bytes=250 [ASSURED] [start=Sat Nov 22 03:46:01 2025] "
        "[stop=Sat Nov 22 03:46:11 2025] delta-time=10"
    )
    lines = [event.format(gap=gap) for gap in ("\t", "        ", "\t  ")]
    for line in lines:
        entry = parse_entry_line(line)
        assert entry is not None, line
        assert (entry.event, entry.timeout, entry.status, entry.dport) == (
            "DESTROY",
            None,
            "ASSURED",
            80,
        )
    result = scan_bytes("\n".join(lines).encode(), ("proto", "src", "dport", "status"))
    assert (result.entries, result.skipped.count) == (3, 0)
    assert result.tallies[result.spec.tallies[0]].counts == {
        (b"tcp", b"10.0.0.1", b"80", b"ASSURED"): 3
    }
    # a time stamp alone is no entry
    assert parse_entry_line("[1763783171.123456]\t") is None


def test_skipped_lines_are_shown_without_their_control_characters() -> None:
    good = render_entry(next(generate_entries(1)), "procfs")
    data = f"{good}\nok \x1b]0;owned\x07 \x1b[2J\u009b1m\ttab\n{good}\n".encode()
    result = scan_bytes(data)
    assert (result.entries, result.skipped.count) == (2, 1)
    ((line, _, text),) = result.skipped.examples
    assert line == 2 and text == "ok \\x1b]0;owned\\x07 \\x1b[2J\\x9b1m\ttab"


def test_xml_output_is_skipped_with_a_reason_that_says_what_to_do() -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<conntrack>\n<flow><meta direction="original">'
        '<layer3 protonum="2" protoname="ipv4"><src>10.0.0.1</src><dst>10.0.0.2</dst></layer3>'
        "</meta></flow>\n</conntrack>\n"
    )
    result = scan_bytes(xml.encode())
    assert (result.entries, result.skipped.count) == (0, 4)
    assert set(result.skipped.reasons) == {
        "conntrack -o xml output (not read: save it with -o extended)"
    }


def test_summary_spliced_mid_line_joins_the_line_again() -> None:
    line = render_entry(next(generate_entries(1)), "extended")
    cut = len(line) // 2
    summary = "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
    data = f"{line}\n{line[:cut]}{summary}{line[cut:]}\n{line}\n".encode()
    result = scan_bytes(data)
    assert (result.entries, result.skipped.count, result.declared) == (3, 0, [3])
    first = f"{summary}{line}\n{line}\n".encode()
    assert scan_bytes(first).entries == 2 and scan_bytes(first).skipped.count == 0


@pytest.mark.parametrize("columns", [("src",), TOP_COLUMNS, ANALYZE_COLUMNS])
def test_summary_anywhere_in_any_chunk_is_cut_out(columns: tuple[str, ...]) -> None:
    """Wherever the summary lands in a line, and wherever a chunk ends around
    it (in particular just after it, with the rest of its line in the next
    chunk), the line joins up again and the declared count is kept."""
    lines = [render_entry(e, "extended") for e in generate_entries(3, 5)]
    clean = scan_bytes(("\n".join(lines) + "\n").encode(), columns)
    summary = "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
    middle = lines[1]
    for cut in range(len(middle) + 1):
        text = f"{lines[0]}\n{middle[:cut]}{summary}{middle[cut:]}\n{lines[2]}\n"
        summary_end = text.index(summary) + len(summary)
        for chunk in (*range(summary_end - 2, summary_end + 3), 97, 1 << 20):
            result = scan_bytes(text.encode(), columns, chunk)
            where = f"summary after {cut} bytes, chunks of {chunk}"
            assert (result.entries, result.skipped.count, result.declared) == (3, 0, [3]), where
            assert result.tallies[columns].counts == clean.tallies[columns].counts, where


@pytest.mark.parametrize("later", [f for f in FORMATS if f != "procfs"])
def test_a_dump_leaves_the_procfs_first_pass_when_its_lines_are_in_another_form(
    later: str,
) -> None:
    """Chunks of procfs lines (a prompt among them) keep the faster procfs
    pattern; the first chunk in a form without the family first hands over
    to the general one (``-o extended`` has the family: it stays), and every
    line counts as it would alone."""
    entries = list(generate_entries(120, 9, v6_share=0.3))
    procfs = [render_entry(e, "procfs") for e in entries[:60]]
    other = [render_entry(e, later) for e in entries[60:]]
    text = "\n".join([*procfs[:30], "root@gw:~# cat /proc/net/nf_conntrack", *procfs[30:]])
    spec = ScanSpec(columns=TOP_COLUMNS, tallies=(TOP_COLUMNS,))
    scanner = TableScanner(spec)
    for data, end, declared in iter_chunks(io.BytesIO(text.encode() + b"\n"), 4096):
        scanner.feed(data, end, declared)
    assert scanner._procfs_first
    assert (scanner.result.entries, scanner.result.skipped.count) == (60, 1)
    for data, end, declared in iter_chunks(io.BytesIO("\n".join(other).encode()), 4096):
        scanner.feed(data, end, declared)
    has_family = all(line.startswith("ipv") for line in other)
    assert scanner._procfs_first == has_family
    assert (scanner.result.entries, scanner.result.skipped.count) == (120, 1)
    alone: Counter[object] = Counter()
    for line in [*procfs, *other]:
        alone.update(scan_bytes(line.encode(), TOP_COLUMNS).tallies[TOP_COLUMNS].counts)
    assert scanner.result.tallies[TOP_COLUMNS].counts == alone


def test_truncated_and_garbage_lines_are_counted_with_line_numbers() -> None:
    good = render_entry(next(generate_entries(1)), "procfs")
    data = (
        f"{good}\n{good[:70]}\nhello world\n\n{good}\nroot@h:~# cat /proc/net/nf_conntrack\n{good}"
    )
    result = scan_bytes(data.encode())
    assert result.entries == 3
    assert result.skipped.count == 3
    assert [line for line, _, _ in result.skipped.examples] == [2, 3, 6]
    assert result.skipped.examples[0][1].startswith("truncated")


def test_a_line_cut_after_its_original_tuple_is_skipped_beside_other_garbage() -> None:
    good = render_entry(next(generate_entries(1)), "procfs")
    cut = good[: good.index(" sport=")]  # the original tuple whole, no reply tuple
    data = f"{good}\n\n{cut}\nroot@h:~# conntrack -L\n{good}\n\nhello\n{good}\n"
    for chunk in (64, 1 << 20):
        result = scan_bytes(data.encode(), TOP_COLUMNS, chunk)
        assert (result.entries, result.skipped.count, result.blank) == (3, 3, 2)
        assert [(line, reason[:9]) for line, reason, _ in result.skipped.examples] == [
            (3, "truncated"),
            (4, "shell pro"),
            (7, "not a con"),
        ]


def test_a_bad_line_with_both_dst_counts_nothing_in_any_tally() -> None:
    """A chunk whose " dst=" count balances but which holds a line that is not
    an entry is counted first and taken back: every tally ends as if the bad
    line had been seen alone."""
    good = [render_entry(e, "procfs") for e in generate_entries(6, 7)]
    bad = "garbage dst=1 dst=2"
    data = "\n".join([*good[:3], bad, *good[3:]]) + "\n"
    spec = top_scan_spec(parse_dimensions("src"), TableFilter())
    expected = TableScanner(spec).feed_all(
        iter_chunks(io.BytesIO(("\n".join(good) + "\n").encode()))
    )
    for chunk in (64, 1 << 20):
        result = TableScanner(spec).feed_all(iter_chunks(io.BytesIO(data.encode()), chunk))
        assert (result.entries, result.skipped.count) == (6, 1)
        assert result.skipped.examples[0][0] == 4
        for columns in spec.tallies:
            assert result.tallies[columns].counts == expected.tallies[columns].counts, columns


def _procfs_lines_of_samples() -> list[bytes]:
    lines: list[bytes] = []
    for name in SAMPLE_COUNTS:
        text, _ = split_summaries((SAMPLES / name).read_bytes())
        lines += [line for line in text.splitlines() if line.startswith(b"ipv")]
    return lines


def test_whole_procfs_lines_of_every_protocol_have_the_letters_of_their_shape() -> None:
    """The shape check's premise, on what kernels printed (samples: TCP, UDP,
    ICMP, GRE, SCTP, unknown protocols, acct, timestamps, IPv6) and on every
    protocol the generator renders in procfs's and ``-o extended``'s form."""
    lines = _procfs_lines_of_samples()
    generated = [
        render_entry(e, fmt)
        for e in generate_entries(400, 3, v6_share=0.4)
        for fmt in ("procfs", "extended")
    ]
    lines += [line.encode() for line in generated]
    assert len(lines) > 800
    for line in lines:
        entry = parse_entry_line(line.decode())
        assert entry is not None, line
        chunk = b"\n" + line
        assert line_shape(chunk, len(chunk)) == expected_shape({entry.proto.encode(): 1}), line


def test_a_procfs_dump_is_checked_by_its_shape_and_counted_as_by_dst() -> None:
    """Whole procfs lines pass the shape check chunk after chunk (it stays on)
    and count what the ``dst=`` check counts; lines whose letters do not add
    up although they are whole (SELinux labels) turn it off and count the same."""
    entries = list(generate_entries(300, 5, v6_share=0.3))
    procfs = "\n".join(render_entry(e, "procfs") for e in entries) + "\n"
    labelled = procfs.replace(" zone=", " secctx=system_u:object_r:unlabeled_t:s0 zone=")
    spec = top_scan_spec(parse_dimensions("src"), TableFilter())
    results = {}
    for name, text in (("procfs", procfs), ("labelled", labelled)):
        scanner = TableScanner(spec)
        scanner.feed_all(iter_chunks(io.BytesIO(text.encode()), 2048))
        results[name] = scanner.result
        assert scanner._shape_check == (name == "procfs")
    by_dst = TableScanner(spec)
    by_dst._shape_check = False
    by_dst.feed_all(iter_chunks(io.BytesIO(procfs.encode()), 2048))
    for result in (*results.values(), by_dst.result):
        assert (result.entries, result.skipped.count) == (300, 0)
        for columns in spec.tallies:
            assert result.tallies[columns].counts == results["procfs"].tallies[columns].counts


def test_a_line_passing_either_check_counts_whichever_check_its_chunk_passed() -> None:
    """One line whose letters do not add up (its ``use=`` damaged) but which
    holds both ``dst=``, one whose letters add up but which lost a ``dst=``:
    each counts as an entry alone, so each counts beside the other, in one
    chunk or apart, and after the first has turned the letters check off."""
    lines = [render_entry(e, "procfs") for e in generate_entries(8, 3)]
    lines[1] = lines[1].replace(" use=", " xse=")
    at = lines[5].rindex(" dst=")
    lines[5] = lines[5][:at] + " xst=" + lines[5][at + 5 :]
    spec = top_scan_spec(parse_dimensions("src"), TableFilter())
    alone = [scan_chunks(spec, iter_chunks(io.BytesIO(f"{line}\n".encode()))) for line in lines]
    assert [r.entries for r in alone] == [1] * 8
    for chunk in (64, 600, 1 << 20):
        text = ("\n".join(lines) + "\n").encode()
        whole = scan_chunks(spec, iter_chunks(io.BytesIO(text), chunk))
        assert (whole.entries, whole.skipped.count) == (8, 0), chunk


@pytest.mark.parametrize("cut_before", [" sport=", " src=", " [ASSURED]", " zone=", " use="])
def test_a_line_cut_short_and_run_into_the_next_is_one_bad_line(cut_before: str) -> None:
    """Cut anywhere (before the reply tuple, in it, or in the last fields) and
    joined to the next line by the lost newline: the query's columns of the
    first entry are all there, yet the line is one bad line and neither entry
    counts, whatever chunk holds it."""
    lines = [
        render_entry(e, "procfs")
        for e in generate_entries(40, 11)
        if e.proto == "tcp" and e.status == "ASSURED"
    ][:12]
    at = lines[5].index(cut_before, lines[5].index(" src=") + 1 if cut_before == " src=" else 0)
    joined = [*lines[:5], lines[5][:at] + lines[6], *lines[7:]]
    spec = top_scan_spec(parse_dimensions("src"), TableFilter())
    for chunk in (64, 4096, 1 << 20):
        scanner = TableScanner(spec)
        scanner.feed_all(iter_chunks(io.BytesIO(("\n".join(joined) + "\n").encode()), chunk))
        result = scanner.result
        assert (result.entries, result.skipped.count) == (10, 1), chunk
        assert result.skipped.examples[0][0] == 6


@pytest.mark.parametrize("chunk", [64, 1000, 4096])
def test_chunks_hold_every_line_once_read_in_place_or_ahead(chunk: int) -> None:
    """iter_chunks reads every chunk into the same buffer (taken as it comes,
    each is whole); the read-ahead thread queues copies, which stay whole
    after later reads (lines longer than a chunk carried over too)."""
    lines = [f"line {i} " + "x" * (i * 7 % 300) for i in range(3000)]
    text = ("\n".join(lines) + "\n").encode()
    in_place = [bytes(data[:end]) for data, end, _ in iter_chunks(io.BytesIO(text), chunk)]
    kept = list(iter_chunks_ahead(io.BytesIO(text), chunk))
    expected = [line.encode() for line in lines]
    for chunks in (in_place, [data[:end] for data, end, _ in kept]):
        assert [line for data in chunks for line in data.split(b"\n")[1:]] == expected


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 40),
    fmt=st.sampled_from(FORMATS),
    chunk=st.integers(64, 4096),
)
def test_round_trip_every_format(seed: int, count: int, fmt: str, chunk: int) -> None:
    entries = list(generate_entries(count, seed, v6_share=0.4))
    lines = [render_entry(e, fmt) for e in entries]
    for entry, line in zip(entries, lines, strict=True):
        parsed = parse_entry_line(line)
        assert parsed is not None, line
        for name in (
            "proto",
            "timeout",
            "state",
            "sport",
            "dport",
            "icmp_type",
            "unreplied",
            "status",
            "packets",
            "reply_bytes",
        ):
            assert getattr(parsed, name) == getattr(entry, name), (name, line)
    data = ("\n".join(lines) + "\n").encode()
    result = scan_bytes(data, ("proto", "state", "src", "dport", "unreplied", "status"), chunk)
    assert result.entries == count and result.skipped.count == 0
    counted = result.tallies[result.spec.tallies[0]].counts
    assert sum(counted.values()) == count


def strict_row(line: bytes, columns: tuple[str, ...]) -> tuple[bytes, ...]:
    """What the fast path must capture for ``columns``, by the strict grammar."""
    match = ENTRY_RE.fullmatch(line)
    assert match is not None, line
    groups = {k: v or b"" for k, v in match.groupdict().items()}
    mirrored = groups["reply_src"] == groups["dst"] and groups["reply_dst"] == groups["src"]
    groups["nat"] = b"" if mirrored else b"s"
    return tuple(groups[c] for c in columns)


# per entry: mark, zone, NATed reply source, status, timeout dropped (offloaded)
VARIATIONS = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(0, 65535),
    st.booleans(),
    st.sampled_from((None, "ASSURED", "OFFLOAD", "HW_OFFLOAD")),
    st.booleans(),
)


def varied(entry: Entry, variation: tuple[int, int, bool, str | None, bool]) -> Entry:
    mark, zone, nat, status, offloaded = variation
    reply_src = ("203.0.113.9" if entry.family == "ipv4" else "2001:db8::9") if nat else None
    return replace(
        entry,
        mark=mark,
        zone=zone,
        status=status,
        timeout=None if offloaded else entry.timeout,
        reply_src=reply_src or entry.reply_src,
    )


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(FORMATS),
    wanted=st.sets(st.sampled_from(COLUMNS), min_size=1),
    variations=st.lists(VARIATIONS, min_size=30, max_size=30),
)
def test_fast_path_captures_what_the_strict_grammar_reads(
    seed: int, fmt: str, wanted: set[str], variations: list[tuple[int, int, bool, str | None, bool]]
) -> None:
    if "nat" in wanted:  # compares the reply with src and dst (see build_scan_pattern)
        wanted = (wanted | {"src", "dst"}) - {"reply_src", "reply_dst"}
    columns = tuple(c for c in COLUMNS if c in wanted)
    entries = generate_entries(30, seed, v6_share=0.4)
    pairs = zip(entries, variations, strict=True)
    lines = [render_entry(varied(e, v), fmt).encode() for e, v in pairs]
    result = scan_bytes(b"\n".join(lines), columns, chunk=509)
    assert result.entries == len(lines) and result.skipped.count == 0
    captured = result.tallies[columns].counts
    expected = Counter(strict_row(line, columns) for line in lines)
    if len(columns) == 1:
        expected = Counter({row[0]: n for row, n in expected.items()})
    assert captured == expected


@settings(max_examples=80, deadline=None)
@given(
    noise=st.lists(st.binary(max_size=200), max_size=12),
    positions=st.lists(st.integers(0, 30), max_size=12),
    cut=st.integers(0, 400),
)
def test_fuzzed_garbage_is_only_ever_a_counted_skip(
    noise: list[bytes], positions: list[int], cut: int
) -> None:
    lines = [render_entry(e, "procfs").encode() for e in generate_entries(30, 7)]
    for blob, where in zip(noise, positions, strict=False):
        lines.insert(where, blob.replace(b"\n", b" "))
    lines.append(lines[0][:cut])  # a last line cut anywhere
    data = b"\n".join(lines)
    valid = sum(1 for line in lines if parse_entry_line(line) is not None)
    for columns in (("src",), ALL_COLUMNS):
        result = scan_bytes(data, columns, chunk=257)
        assert result.entries == valid
        non_blank = sum(1 for line in lines if line.strip())
        assert result.entries + result.skipped.count == non_blank


DAMAGE = st.tuples(
    st.integers(0, 29),  # which line
    st.floats(0, 1),  # where in it
    st.sampled_from((b"x", b" ", b"\x1b", b"=", b":", b"9", b"[", b"]", b"\t", b"\r", b"")),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(FORMATS),
    damage=st.lists(DAMAGE, min_size=1, max_size=6),
    chunk=st.integers(64, 4096),
)
def test_whether_a_line_counts_never_depends_on_its_neighbours(
    seed: int, fmt: str, damage: list[tuple[int, float, bytes]], chunk: int
) -> None:
    """Damaged lines (a byte replaced or cut anywhere) count or not by themselves:
    scanning the whole dump in chunks of any size gives what scanning each line
    alone gives, for top's columns and for analyze's, and with top's own
    tallies (its protocol totals turn the line-shape check on)."""
    lines = [render_entry(e, fmt).encode() for e in generate_entries(30, seed, v6_share=0.4)]
    for which, where, byte in damage:
        at = int(where * (len(lines[which]) - 1))
        lines[which] = lines[which][:at] + byte + lines[which][at + 1 :]
    # ("state", "dport") has no column every entry fills: lines counted apart
    specs = [
        ScanSpec(columns=columns, tallies=(columns,))
        for columns in (("src",), TOP_COLUMNS, ANALYZE_COLUMNS, ("state", "dport"))
    ]
    specs.append(top_scan_spec(parse_dimensions("src"), TableFilter()))
    for spec in specs:
        whole = scan_chunks(spec, iter_chunks(io.BytesIO(b"\n".join(lines) + b"\n"), chunk))
        alone = [scan_chunks(spec, iter_chunks(io.BytesIO(line + b"\n"))) for line in lines]
        assert whole.entries == sum(r.entries for r in alone)
        assert whole.skipped.count == sum(r.skipped.count for r in alone)
        for columns in spec.tallies:
            counted: Counter[object] = Counter()
            for result in alone:
                counted.update(result.tallies[columns].counts)
            assert whole.tallies[columns].counts == counted
            for key in counted:  # nothing captured holds a control character
                for value in key if isinstance(key, tuple) else (key,):
                    assert all(32 <= byte < 127 for byte in value), key


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(FORMATS),
    damage=st.lists(DAMAGE, max_size=4),
)
def test_the_procfs_pattern_captures_what_the_general_one_does(
    seed: int, fmt: str, damage: list[tuple[int, float, bytes]]
) -> None:
    lines = [render_entry(e, fmt).encode() for e in generate_entries(30, seed, v6_share=0.4)]
    for which, where, byte in damage:
        at = int(where * (len(lines[which]) - 1))
        lines[which] = lines[which][:at] + byte + lines[which][at + 1 :]
    for columns in (("src",), TOP_COLUMNS, ANALYZE_COLUMNS, ALL_COLUMNS):
        procfs, general = build_procfs_scan_pattern(columns), build_scan_pattern(columns)
        for index, line in enumerate(lines):
            fast = procfs.match(b"\n" + line)
            if fast is not None:
                slow = general.match(b"\n" + line)
                assert slow is not None and slow.groups() == fast.groups(), line
            elif fmt in ("procfs", "extended"):  # the forms with the family first
                assert index in {which for which, _, _ in damage}, line


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    fmt=st.sampled_from(FORMATS),
    damage=st.lists(DAMAGE, max_size=6),
    noise=st.lists(st.sampled_from((b"", b"root@gw:~# conntrack -L", b"  ", b"dst=1")), max_size=3),
)
def test_an_every_line_pass_gives_one_row_per_line_and_an_empty_one_for_each_bad_line(
    seed: int, fmt: str, damage: list[tuple[int, float, bytes]], noise: list[bytes]
) -> None:
    """Rows of an every-line pass line up with the lines: an entry's row is
    what the plain pattern captures from it, and an all-empty row is a line
    the plain pattern does not match (when the columns include one every
    entry fills).  The scanner counts and checks lines by these rows."""
    lines = [render_entry(e, fmt).encode() for e in generate_entries(30, seed, v6_share=0.4)]
    for which, where, byte in damage:
        at = int(where * (len(lines[which]) - 1))
        lines[which] = lines[which][:at] + byte + lines[which][at + 1 :]
    lines[seed % 30 : seed % 30] = noise
    text = b"\n" + b"\n".join(lines)
    for columns in (("src",), TOP_COLUMNS, ANALYZE_COLUMNS, ALL_COLUMNS, ("dport",)):
        empty: object = b"" if len(columns) == 1 else (b"",) * len(columns)
        for build in (build_scan_pattern, build_procfs_scan_pattern):
            plain, every = build(columns), build(columns, every_line=True)
            rows = every.findall(text)
            assert len(rows) == text.count(b"\n")
            for line, row in zip(lines, rows, strict=True):
                match = plain.match(b"\n" + line)
                if match is not None:
                    captured = match.groups(b"")
                    assert row == (captured[0] if len(columns) == 1 else captured)
                else:
                    assert row == empty, line
                if rows_account_for_every_line(columns):
                    assert (row == empty) == (match is None), line
    assert not rows_account_for_every_line(("timeout", "state", "dport", "unreplied", "status"))


def test_gzip_and_parallel_ranges_give_the_same_answer(tmp_path: Path) -> None:
    text = "".join(render_entry(e, "procfs") + "\n" for e in generate_entries(3000, 3))
    plain = tmp_path / "dump.txt"
    plain.write_text(text + "garbage line\n")
    packed = tmp_path / "dump.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    dims = parse_dimensions("src,dport")
    spec = top_scan_spec(dims, TableFilter())
    answers = []
    for path, workers in ((plain, 1), (plain, 3), (packed, 1)):
        scan = scan_table(TableSource(str(path), "file", path=path), spec, workers=workers)
        top = build_top("x", scan, dims, TableFilter(), 0)
        answers.append((scan.entries, scan.skipped.count, scan.skipped.examples[0][0], top.groups))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][:3] == (3000, 1, 3001)


@pytest.mark.parametrize(
    "line",
    [
        b"ipv4     2 tcp      6 118 SYN_SENT2 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=6000 "
        b"src=10.0.0.2 dst=10.0.0.1 sport=6000 dport=5000 mark=0 zone=0 use=2",
        b"tcp      6 118 SYN_SENT2 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=6000 "
        b"src=10.0.0.2 dst=10.0.0.1 sport=6000 dport=5000 mark=0 use=1",
    ],
)
def test_a_state_with_a_digit_is_an_entry(line: bytes) -> None:
    """TCP's simultaneous open prints SYN_SENT2: an entry, not a malformed line."""
    entry = parse_entry_line(line.decode())
    assert entry is not None and entry.state == "SYN_SENT2"
    spec = top_scan_spec(parse_dimensions("state"), TableFilter())
    scan = scan_chunks(spec, iter_chunks(io.BytesIO(line + b"\n")))
    assert (scan.entries, scan.skipped.count) == (1, 0)
    assert build_top("x", scan, parse_dimensions("state"), TableFilter(), 0).groups == [
        (("SYN_SENT2",), 1)
    ]


def test_procfs_gre_prints_its_timeouts_where_a_state_would_be() -> None:
    procfs, tool = (
        (SAMPLES / name).read_text().splitlines()
        for name in ("nf_conntrack_procfs_k6.18_gre_sctp.txt", "conntrack_L_k6.18_gre_sctp.txt")
    )
    gre = parse_entry_line(procfs[0])
    assert gre is not None
    assert (gre.proto, gre.timeout, gre.state, gre.src, gre.reply_src) == (
        "gre",
        29,
        None,
        "10.99.0.1",
        "10.99.0.2",
    )
    assert gre.unreplied and gre.mark == 0
    same = parse_entry_line(tool[1])  # conntrack -L leaves the GRE timeouts out
    assert same is not None and (same.proto, same.timeout, same.src) == ("gre", 29, "10.99.0.1")


def test_entry_nat_flag() -> None:
    entry = Entry(
        proto="tcp",
        protonum=6,
        src="10.0.0.2",
        dst="203.0.113.1",
        reply_src="203.0.113.1",
        reply_dst="198.51.100.7",
        family="ipv4",
    )
    assert entry.nat


def test_bounded_tallies_keep_heavy_hitters_and_say_approximate() -> None:
    from ctguard.parse.table_scan import Tally

    tally = Tally()
    tally.counts.update({f"k{i}": 1 for i in range(1000)})
    tally.counts["heavy"] = 500
    tally.prune(100)
    assert tally.counts["heavy"] == 500 and len(tally.counts) <= 100
    assert tally.max_error >= 1 and tally.pruned_entries >= 900

    pairs = Tally(by_first=True)
    pairs.counts.update({(f"10.0.0.{i}", p): 1 for i in range(200) for p in (80, 443)})
    pairs.counts.update({("198.51.100.9", p): 1 for p in range(300)})
    pairs.prune(200)
    assert len(pairs.counts) <= 200 and list(pairs.exact) == ["198.51.100.9"]
    assert pairs.distinct_by_first()["198.51.100.9"] == 300


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=60),
    keep=st.integers(0, 70),
)
def test_drop_rarest_keeps_the_most_frequent_and_the_earliest_among_equals(
    counts: list[int], keep: int
) -> None:
    from ctguard.parse.table_scan import drop_rarest

    tally: Counter[str] = Counter({f"k{i}": n for i, n in enumerate(counts)})
    ranked = tally.most_common()  # stable: equal counts stay in insertion order
    dropped, largest = drop_rarest(tally, keep)
    assert dict(tally) == dict(ranked[:keep])
    assert sorted(dropped) == sorted(ranked[keep:])
    assert largest == (ranked[keep][1] if len(ranked) > keep else 0)


def test_a_failing_conntrack_tool_is_an_error_not_an_empty_table() -> None:
    from ctguard.errors import AccessDenied

    failing = TableSource(
        "conntrack -L",
        "live-tool",
        argv=("sh", "-c", "echo 'Operation failed: you must be root' >&2; exit 1"),
    )
    with pytest.raises(AccessDenied, match="you must be root"):
        scan_table(failing, ScanSpec(("src",), (("src",),)))
