"""Kernel-log parsing and episodes: every sample, every format, the traps."""

import gzip
from datetime import UTC, datetime, timedelta

import pytest

from ctguard.analyze.log_episodes import binned_timeline, build_log_report, sparkline
from ctguard.kernel.kernlog_sources import read_log_file, rotated_files
from ctguard.model.kernlog import LogKind
from ctguard.parse.kernlog import parse_line, parse_log
from tests.fixture_roots import sample

REFERENCE = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def report_of(text: str, **kwargs):
    return build_log_report(parse_log(text.splitlines(), REFERENCE), **kwargs)


@pytest.mark.parametrize(
    ("name", "lines", "episodes", "suppressed", "unattributed"),
    [
        ("kernlog_dmesg_k6.18_netns.txt", 59, [40, 15, 4], 0, 0),
        ("kernlog_hotsos_scenario_kernlog.txt", 1, [1], 0, 0),
        ("kernlog_moooofly_marksomethingdown_dmesg.txt", 5, [1, 4], 0, 0),
        (
            "kernlog_moooofly_100w_net_ratelimit_orphaned_distractor.txt",
            4,
            [4],
            0,
            981 + 51638 + 44560,
        ),
        ("kernlog_hotsos_journal_no_conntrack_distractor.txt", 0, [], 0, 0),
    ],
)
def test_samples_exact_counts(name, lines, episodes, suppressed, unattributed):
    report = report_of(sample(name))
    assert report.table_full_lines == lines
    assert [e.lines for e in report.episodes] == episodes
    assert report.suppressed == suppressed
    assert report.suppressed_unattributed == unattributed


def test_k618_sample_namespaces_and_durations():
    report = report_of(sample("kernlog_dmesg_k6.18_netns.txt"))
    assert [e.netns for e in report.episodes] == [4026532246, 4026532317, 4026532386]
    first = report.episodes[0]
    assert first.start == pytest.approx(177.956886) and first.end == pytest.approx(197.487464)
    assert report.axis.basis == "relative"


def test_kauditd_suppressed_is_never_counted():
    report = report_of(sample("kernlog_hotsos_journal_no_conntrack_distractor.txt"))
    assert report.suppressed == 0 and report.suppressed_unattributed == 0


def test_hotsos_line_keeps_wall_and_kernel_time():
    record = parse_log(sample("kernlog_hotsos_scenario_kernlog.txt").splitlines(), REFERENCE)[0]
    assert record.kind is LogKind.TABLE_FULL
    assert record.wall == datetime(2026, 6, 8, 10, 48, 13) and record.mono == 1694413.621694
    assert record.host == "compute4"


def test_syslog_year_walks_back_over_new_year():
    records = parse_log(
        ["Dec 31 23:59:00 gw kernel: nf_conntrack: table full, dropping packet"],
        datetime(2027, 1, 1, 0, 5, tzinfo=UTC),
    )
    assert records[0].wall.year == 2026


MESSAGE_VARIANTS = [
    ("nf_conntrack: table full, dropping packet.", None, None),
    ("nf_conntrack: table full, dropping packet", None, None),
    ("nf_conntrack: nf_conntrack: table full, dropping packet", None, None),
    (
        "nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet",
        4026532246,
        None,
    ),
    ("ip_conntrack: table full, dropping packet.", None, None),
    ("ip_conntrack: VPS 101: table full, dropping packet.", None, "101"),
    ("ip_conntrack: VPS 101 table full, dropping packet.", None, "101"),
]


@pytest.mark.parametrize(("message", "netns", "vps"), MESSAGE_VARIANTS)
def test_table_full_variants(message, netns, vps):
    record = parse_line(f"[  12.5] {message}", 1, year=2026)
    assert (record.kind, record.netns, record.vps) == (LogKind.TABLE_FULL, netns, vps)


@pytest.mark.parametrize(
    ("message", "kind", "count", "limiter"),
    [
        ("net_ratelimit: 44 callbacks suppressed", LogKind.RATELIMIT, 44, "net_ratelimit"),
        ("__ratelimit: 12 callbacks suppressed", LogKind.RATELIMIT, 12, "__ratelimit"),
        ("printk: 7 messages suppressed.", LogKind.RATELIMIT, 7, "printk"),
        ("NET: 3 messages suppressed.", LogKind.RATELIMIT, 3, "NET"),
        ("NET: 3 messages suppressed", LogKind.RATELIMIT, 3, "NET"),
        (
            "kauditd_printk_skb: 19 callbacks suppressed",
            LogKind.RATELIMIT,
            19,
            "kauditd_printk_skb",
        ),
        ("TCP: too many orphaned sockets", LogKind.OTHER, 0, "net_ratelimit"),
        ("nf_conntrack: table full, dropping packet", LogKind.TABLE_FULL, 0, "net_ratelimit"),
        ("nf_conntrack: expectation table full", LogKind.EXPECT_FULL, 0, "net_ratelimit"),
        ("nf_conntrack: falling back to vmalloc.", LogKind.VMALLOC, 0, None),
        ("nf_conntrack version 0.5.0 (65536 buckets, 262144 max)", LogKind.OTHER, 0, None),
        ("my app said: 3 callbacks suppressed", LogKind.OTHER, 0, None),
    ],
)
def test_other_messages(message, kind, count, limiter):
    record = parse_line(f"[ 1.0] {message}", 1, year=2026)
    assert (record.kind, record.count, record.limiter) == (kind, count, limiter)


def test_other_programs_saying_table_full_do_not_count():
    line = "Nov 22 10:00:00 gw myapp[12]: grep 'nf_conntrack: table full' found nothing"
    assert parse_line(line, 1, year=2026).kind is LogKind.OTHER


# One episode rendered in every format: 3 logged lines, then a suppression
# line followed by 2 more, then a suppression printed by TCP's next message,
# all within 10 s.
EPISODE = [
    (0.0, "nf_conntrack: nf_conntrack: table full, dropping packet"),
    (0.4, "nf_conntrack: nf_conntrack: table full, dropping packet"),
    (0.9, "nf_conntrack: nf_conntrack: table full, dropping packet"),
    (5.1, "net_ratelimit: 321 callbacks suppressed"),
    (5.1, "nf_conntrack: nf_conntrack: table full, dropping packet"),
    (5.6, "nf_conntrack: nf_conntrack: table full, dropping packet"),
    (9.0, "net_ratelimit: 5 callbacks suppressed"),
    (9.0, "TCP: too many orphaned sockets"),
]
BASE = datetime(2026, 11, 20, 10, 15, 30)
BOOT_OFFSET = 3600.0


def render(fmt: str, offset: float, message: str) -> str:
    when = BASE + timedelta(seconds=offset)
    mono = BOOT_OFFSET + offset
    clock = when.strftime("%H:%M:%S")
    syslog_day = f"{when:%b} {when.day:2d}"
    return {
        "dmesg": f"[{mono:12.6f}] {message}",
        "dmesg-T": f"[{when:%a %b} {when.day:2d} {clock} {when.year}] {message}",
        "plain": message,
        "syslog": f"{syslog_day} {clock} gw kernel: [{mono:.6f}] {message}",
        "syslog-nohost": f"{syslog_day} {clock} kernel: {message}",
        "rfc3339": f"{when.isoformat(timespec='microseconds')}+00:00 gw kernel: {message}",
        "journal-short": f"{when:%b %d} {clock} gw kernel: {message}",
        "journal-short-iso": f"{when:%Y-%m-%dT%H:%M:%S}+0000 gw kernel: {message}",
        "journal-short-precise": f"{when:%b %d} {clock}.{when.microsecond:06d} gw kernel: "
        + message,
        "logread": f"{when:%a %b} {when.day:2d} {clock} {when.year} kern.warn kernel: "
        f"[{mono:.6f}] {message}",
        "kmsg": f"4,{int(offset * 10)},{int(mono * 1e6)},-;{message}",
        "trailing-spaces": f"[{mono:12.6f}] {message}   ",
    }[fmt]


FORMATS = [
    "dmesg",
    "dmesg-T",
    "plain",
    "syslog",
    "syslog-nohost",
    "rfc3339",
    "journal-short",
    "journal-short-iso",
    "journal-short-precise",
    "logread",
    "kmsg",
    "trailing-spaces",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_synthetic_episode_in_every_format(fmt):
    noise = ["Nov 20 10:15:00 gw systemd[1]: Started Session 4.", "random pasted noise"]
    lines = [noise[0], *(render(fmt, offset, message) for offset, message in EPISODE), noise[1]]
    report = report_of("\n".join(lines))
    assert report.table_full_lines == 5
    assert len(report.episodes) == 1
    # the 5 came 3.4 s after the episode's last line: the calls it counts were
    # made around that line (the summary is printed by the next call, here TCP's)
    assert report.suppressed == 321 + 5
    assert report.suppressed_unattributed == 0
    if fmt not in ("plain",):
        assert report.episodes[0].duration == pytest.approx(5.6, abs=1.0)


def test_hard_wrapped_and_cut_lines():
    text = "\n".join(
        [
            "[  100.000001] nf_conntrack: nf_conntrack: table",
            "full, dropping packet",
            "[  100.500000] nf_conntrack: table full, dropping pa",  # cut by the pasting tool
            "ble full, dropping packet",  # the head of an excerpt cut mid-line
        ]
    )
    report = report_of(text)
    assert report.table_full_lines == 2


def test_last_message_repeated_counts_lines():
    text = "\n".join(
        [
            "Nov 20 10:00:00 gw kernel: nf_conntrack: table full, dropping packet",
            "Nov 20 10:00:30 gw kernel: last message repeated 7 times",
        ]
    )
    assert report_of(text).table_full_lines == 8


def test_gap_splits_episodes_and_namespaces_are_separate():
    text = "\n".join(
        [
            "[10.0] nf_conntrack: nf_conntrack: table full in netns 1, dropping packet",
            "[11.0] nf_conntrack: nf_conntrack: table full in netns 2, dropping packet",
            "[50.0] nf_conntrack: nf_conntrack: table full in netns 1, dropping packet",
            "[200.0] nf_conntrack: nf_conntrack: table full in netns 1, dropping packet",
        ]
    )
    report = report_of(text)
    assert [(e.netns, e.lines) for e in report.episodes] == [(1, 2), (2, 1), (1, 1)]
    assert [e.lines for e in report_of(text, gap=10).episodes] == [1, 1, 1, 1]


def test_since_until_filter_wall_times():
    text = "\n".join(render("rfc3339", o, m) for o, m in EPISODE)
    since = BASE.replace(tzinfo=UTC) + timedelta(seconds=5)
    report = report_of(text, since=since)
    assert report.table_full_lines == 2
    relative = report_of("[1.0] nf_conntrack: table full, dropping packet", since=since)
    assert relative.table_full_lines == 1
    assert any("--since/--until ignored" in note for note in relative.notes)


def test_boot_time_converts_dmesg_seconds():
    boot = datetime(2026, 11, 20, 9, 15, 30, tzinfo=UTC)
    report = report_of("[3600.5] nf_conntrack: table full, dropping packet", boot_time=boot)
    assert report.axis.show(report.episodes[0].start) == "2026-11-20T10:15:30+00:00"


def test_rotated_and_gz_files(tmp_path):
    (tmp_path / "kern.log").write_text("[3.0] nf_conntrack: table full, dropping packet\n")
    (tmp_path / "kern.log.1").write_text("[2.0] nf_conntrack: table full, dropping packet\n")
    with gzip.open(tmp_path / "kern.log.2.gz", "wt") as handle:
        handle.write("[1.0] nf_conntrack: table full, dropping packet\n")
    files = rotated_files(tmp_path / "kern.log")
    assert [f.name for f in files] == ["kern.log.2.gz", "kern.log.1", "kern.log"]
    lines = [line for path in files for line in read_log_file(path)]
    assert [line[:5] for line in lines] == ["[1.0]", "[2.0]", "[3.0]"]


def test_sparkline():
    assert sparkline([0, 1, 8]) == " ▁█"
    assert sparkline([]) == ""


def _minutes_log(minutes: list[int]) -> str:
    """One table-full line at the start of each of ``minutes`` (since boot)."""
    return "".join(
        f"[{60.0 * m + 1:.6f}] nf_conntrack: table full, dropping packet\n" for m in minutes
    )


def test_binned_timeline_covers_the_whole_span_in_the_width():
    report = report_of(_minutes_log([0, 1, 2, 150, 299]))
    bins = binned_timeline(report.episodes, 100)
    assert bins is not None
    # 300 minutes in at most 100 bins: 3 minutes each, every line kept
    assert bins.minutes_per_bin == 3
    assert len(bins.counts) == 100
    assert sum(bins.counts) == 5
    assert bins.counts[0] == 3 and bins.counts[50] == 1 and bins.counts[99] == 1
    assert bins.end_minute - bins.first_minute == 300


def test_binned_timeline_per_minute_when_it_fits():
    bins = binned_timeline(report_of(_minutes_log([5, 7])).episodes, 100)
    assert bins is not None
    assert (bins.first_minute, bins.minutes_per_bin, bins.counts) == (5, 1, [1, 0, 1])
    assert binned_timeline([], 100) is None


def test_rendered_timeline_fits_the_console():
    from io import StringIO

    from rich.console import Console

    from ctguard.render.logs_text import render_logs

    report = report_of(_minutes_log(list(range(0, 600, 7))))
    out = StringIO()
    render_logs(Console(file=out, width=60, no_color=True), report, "test", {})
    text = out.getvalue()
    assert "lines per 11 minutes, boot+0.000s .. boot+36300.000s (peak 2):" in " ".join(
        text.split()
    )
    (spark,) = [line for line in text.splitlines() if set(line) <= set(" ▁▂▃▄▅▆▇█")]
    # 600 minutes in 55 bins of 11 minutes, one line every 7 minutes
    assert len(spark) == 55 and spark.count("█") + spark.count("▄") == 55


@pytest.mark.parametrize(
    "line",
    [
        "14,1321,26391628927,-;ctguard-lab: run=ab12cd netns=4026532177 added",
        "[26391.628927] ctguard-lab: run=ab12cd netns=4026532177 added",
        "Nov 22 07:42:26 gw1 ctguard-lab: run=ab12cd netns=4026532177 added",
        "2026-11-22T07:42:26+0000 gw1 ctguard-lab: run=ab12cd netns=4026532177 added",
    ],
)
def test_lab_markers_in_every_log_form(line):
    record = parse_line(line, 1, year=2026)
    assert (record.kind, record.netns) == (LogKind.LAB_NETNS, 4026532177)
    closed = parse_line(line.replace("netns=4026532177 added", "closed"), 2, year=2026)
    assert (closed.kind, closed.netns) == (LogKind.LAB_CLOSED, None)


def test_lab_markers_are_exact():
    for message in (
        "ctguard-lab: run=ab12cd netns=4026532177 added, or so",
        "ctguard-lab: run=xyz closed",
        "ctguard-lab run=ab12cd closed",
    ):
        assert parse_line(f"[1.0] {message}", 1, year=2026).kind is LogKind.OTHER


FULL = "nf_conntrack: nf_conntrack: table full in netns {}, dropping packet"


def test_table_full_lines_of_lab_namespaces_are_not_the_hosts():
    lines = [
        "[10.0] ctguard-lab: run=aa netns=5 added",
        "[10.1] ctguard-lab: run=aa netns=6 added",
        f"[11.0] {FULL.format(5)}",
        "[11.5] net_ratelimit: 40 callbacks suppressed",
        f"[11.6] {FULL.format(5)}",
        f"[12.0] {FULL.format(7)}",  # another namespace during the run: the host's
        f"[12.5] {FULL.format(6)}",
        "[13.0] ctguard-lab: run=bb netns=9 added",
        "[14.0] ctguard-lab: run=aa closed",
        f"[15.0] {FULL.format(5)}",  # inode 5 reused once the run is over
        f"[15.1] {FULL.format(9)}",  # run bb is still open
    ]
    report = report_of("\n".join(lines))
    assert report.lab_lines == 4
    assert report.table_full_lines == 2
    assert [(e.netns, e.lines, e.suppressed) for e in report.episodes] == [(7, 1, 0), (5, 1, 0)]


def test_lab_marks_hold_from_before_since():
    lines = [
        "2026-11-22T10:00:00+0000 gw1 ctguard-lab: run=aa netns=5 added",
        f"2026-11-22T10:30:00+0000 gw1 kernel: {FULL.format(5)}",
        f"2026-11-22T11:30:00+0000 gw1 kernel: {FULL.format(5)}",
        f"2026-11-22T11:31:00+0000 gw1 kernel: {FULL.format(6)}",
    ]
    since = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
    report = report_of("\n".join(lines), since=since)
    assert (report.lab_lines, report.table_full_lines) == (1, 1)


def test_lab_lines_are_said_and_left_out_of_json():
    from io import StringIO

    from rich.console import Console

    from ctguard.render.logs_json import logs_json
    from ctguard.render.logs_text import render_logs

    report = report_of(
        "[1.0] ctguard-lab: run=aa netns=5 added\n" + f"[2.0] {FULL.format(5)}\n" * 3
    )
    assert report.episodes == [] and report.lab_lines == 3
    data = logs_json(report, "test", {})
    assert (data["table_full_lines"], data["lab_table_full_lines"]) == (0, 3)
    out = StringIO()
    render_logs(Console(file=out, width=200, no_color=True), report, "test", {})
    text = out.getvalue()
    assert "no 'table full, dropping packet' lines" in text
    assert "3 'table full' lines of namespaces that `ctguard lab` made" in text


def test_the_labs_marks_read_back():
    from ctguard.lab.namespaces import lab_marker_text

    made = parse_line("[1.0] " + lab_marker_text("ab12cd", 77), 1, year=2026)
    closed = parse_line("[2.0] " + lab_marker_text("ab12cd"), 2, year=2026)
    assert (made.kind, made.netns, closed.kind) == (LogKind.LAB_NETNS, 77, LogKind.LAB_CLOSED)


def test_syslog_repeats_of_a_lab_line_are_the_labs():
    lines = [
        "Nov 22 10:00:00 gw1 ctguard-lab: run=aa netns=5 added",
        f"Nov 22 10:00:01 gw1 kernel: {FULL.format(5)}",
        "Nov 22 10:00:02 gw1 kernel: last message repeated 4 times",
        f"Nov 22 10:00:03 gw1 kernel: {FULL.format(6)}",
        "Nov 22 10:00:04 gw1 kernel: last message repeated 2 times",
    ]
    report = report_of("\n".join(lines))
    assert (report.lab_lines, report.table_full_lines) == (5, 3)


# Rate-limit summaries of every era (lib/ratelimit.c, net/core/utils.c,
# kernel/printk.c): the rule of ctguard.analyze.log_episodes.
SUMMARY_FORMS = [
    "net_ratelimit: 7 callbacks suppressed",  # 2.6.35+
    "__ratelimit: 7 callbacks suppressed",  # 2.6.26 .. 2.6.34
    "printk: 7 messages suppressed.",  # 2.6 __printk_ratelimit()
    "NET: 7 messages suppressed.",  # 2.4 / early 2.6 net_ratelimit()
    "NET: 7 messages suppressed",
]
TABLE_FULL = "nf_conntrack: table full, dropping packet"
TCP_ORPHANS = "TCP: too many orphaned sockets"  # another net_ratelimit() user


def summary_report(fmt: str, timeline: list[tuple[float, str]]):
    return report_of("\n".join(render(fmt, offset, message) for offset, message in timeline))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("summary", SUMMARY_FORMS)
def test_summary_between_two_table_full_lines_counts(fmt, summary):
    # not printed by the table-full call itself (another CPU's, 2 s before it)
    report = summary_report(fmt, [(0.0, TABLE_FULL), (4.0, summary), (6.0, TABLE_FULL)])
    assert (report.suppressed, report.suppressed_unattributed) == (7, 0)
    assert report.episodes[0].suppressed == 7


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("summary", SUMMARY_FORMS)
def test_summary_seconds_after_the_last_table_full_line_counts(fmt, summary):
    # the drops stopped; TCP's next warning, 4 s later, printed the summary
    timeline = [(0.0, TABLE_FULL), (0.5, TABLE_FULL), (4.0, summary), (4.0, TCP_ORPHANS)]
    report = summary_report(fmt, timeline)
    assert (report.suppressed, report.suppressed_unattributed) == (7, 0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("summary", SUMMARY_FORMS)
def test_summary_among_another_users_lines_is_not_conntracks(fmt, summary):
    timeline = [(0.0, TABLE_FULL), (2.0, TCP_ORPHANS), (3.0, summary), (3.0, TCP_ORPHANS)]
    report = summary_report(fmt, timeline)
    assert (report.suppressed, report.suppressed_unattributed) == (0, 7)


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "plain"])
def test_summary_beyond_the_window_is_not_conntracks(fmt):
    timeline = [(0.0, TABLE_FULL), (30.0, SUMMARY_FORMS[0]), (45.0, TABLE_FULL)]
    report = summary_report(fmt, timeline)
    assert (report.suppressed, report.suppressed_unattributed) == (0, 7)


def test_summary_before_a_new_episode_goes_to_it():
    timeline = [(0.0, TABLE_FULL), (100.0, SUMMARY_FORMS[0]), (100.0, TABLE_FULL)]
    report = summary_report("dmesg", timeline)
    assert [e.suppressed for e in report.episodes] == [0, 7]


def test_summaries_of_other_limiters_are_never_conntracks():
    timeline = [(0.0, TABLE_FULL), (5.0, "tcp_v4_rcv: 7 callbacks suppressed"), (5.0, TABLE_FULL)]
    report = summary_report("dmesg", timeline)
    assert (report.suppressed, report.suppressed_unattributed) == (0, 0)
    assert report.suppressed_other_limiters == 7


def test_printk_summaries_beside_net_summaries_are_printk_ratelimits():
    # before net_ratelimit() went through __printk_ratelimit(), "printk:" was another limiter
    timeline = [
        (0.0, TABLE_FULL),
        (5.0, "printk: 7 messages suppressed."),
        (5.0, TABLE_FULL),
        (10.0, "NET: 3 messages suppressed."),
        (10.0, TABLE_FULL),
    ]
    report = summary_report("syslog", timeline)
    assert (report.suppressed, report.suppressed_other_limiters) == (3, 7)


def test_summary_beside_a_rehearsal_is_left_out_with_it():
    lines = [
        "[10.0] ctguard-lab: run=aa netns=5 added",
        f"[11.0] {FULL.format(5)}",
        "[13.0] net_ratelimit: 40 callbacks suppressed",
        f"[13.0] {FULL.format(5)}",
        f"[14.0] {FULL.format(8)}",
    ]
    report = report_of("\n".join(lines))
    assert (report.suppressed, report.suppressed_unattributed, report.lab_lines) == (0, 0, 2)


@pytest.mark.parametrize(
    ("message", "table"),
    [
        ("arp_cache: neighbor table overflow!", "arp_cache"),  # net/core/neighbour.c
        ("ndisc_cache: neighbor table overflow!", "ndisc_cache"),
        ("Neighbour table overflow.", None),  # 2.6: no table named
        ("neighbour: arp_cache: neighbor table overflow!", "arp_cache"),
    ],
)
def test_neighbour_overflow_lines_are_their_own_kind(message, table):
    record = parse_line(f"Nov 20 10:00:00 gw kernel: [5.0] {message}", 1, year=2026)
    assert record.kind is LogKind.NEIGH_OVERFLOW and record.limiter == "net_ratelimit"
    assert record.table == table


def test_neighbour_overflow_episodes_per_table_and_their_summaries():
    timeline = [
        (0.0, "arp_cache: neighbor table overflow!"),
        (4.0, "net_ratelimit: 30 callbacks suppressed"),
        (5.0, "arp_cache: neighbor table overflow!"),
        (6.0, "ndisc_cache: neighbor table overflow!"),
        (6.5, TABLE_FULL),
        (200.0, "arp_cache: neighbor table overflow!"),
    ]
    report = summary_report("dmesg", timeline)
    assert [(e.table, e.lines, e.suppressed) for e in report.neighbour_episodes] == [
        ("arp_cache", 2, 30),
        ("ndisc_cache", 1, 0),
        ("arp_cache", 1, 0),
    ]
    # the summary sat between two overflow lines: not conntrack's
    assert (report.table_full_lines, report.suppressed, report.suppressed_unattributed) == (
        1,
        0,
        0,
    )
