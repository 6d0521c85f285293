from datetime import UTC, datetime, timedelta

from ctguard.analyze.log_checks import check_log
from ctguard.analyze.log_episodes import build_log_report
from ctguard.parse.kernlog import parse_log

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BOOT = NOW - timedelta(seconds=1000)


def report(lines):
    return build_log_report(parse_log(lines, NOW), boot_time=BOOT)


def codes(findings):
    return {(f.code, f.severity.label) for f in findings}


LINE = "[{t:.1f}] nf_conntrack: nf_conntrack: table full in netns 77, dropping packet"


def test_recent_episode_of_a_living_namespace_is_crit():
    findings = check_log(report([LINE.format(t=990.0)]), 5, {77: "web"}, NOW)
    assert codes(findings) == {("CT403", "crit")}
    assert "netns 77 (web): 1" in findings[0].evidence


def test_old_or_gone_namespace_is_warn():
    assert codes(check_log(report([LINE.format(t=10.0)]), 1, {77: "web"}, NOW)) == {
        ("CT403", "warn")
    }
    gone = check_log(report([LINE.format(t=990.0)]), 1, {}, NOW)
    assert codes(gone) == {("CT403", "warn")} and "(gone)" in gone[0].evidence


def test_counters_and_log_disagree():
    assert codes(check_log(report(["[1.0] unrelated"]), 12, {}, NOW)) == {("CT401", "info")}
    lines = [LINE.format(t=t) for t in (1.0, 2.0, 3.0)]
    assert ("CT402", "info") in codes(check_log(report(lines), 0, {77: "x"}, NOW))
    assert check_log(report(["[1.0] unrelated"]), None, {}, NOW) == []


def test_evidence_names_living_namespaces_first_and_sums_up_the_rest():
    # 8 gone namespaces with 1..8 lines each, then one living one with a single line
    lines = [
        f"[{10.0 + 10 * ns + i:.1f}] nf_conntrack: table full in netns {ns}, dropping packet"
        for ns in range(1, 9)
        for i in range(ns)
    ]
    lines.append("[990.0] nf_conntrack: table full in netns 77, dropping packet")
    (finding,) = check_log(report(lines), 37, {77: "web"}, NOW)
    where = finding.evidence.split("; ", 1)[1]
    assert where == (
        "netns 77 (web): 1, netns 8 (gone): 8, netns 7 (gone): 7, netns 6 (gone): 6, "
        "netns 5 (gone): 5, and 4 more namespace(s) (gone): 10 lines"
    )


def test_lines_from_before_ctguard_raised_max_are_history():
    from ctguard.analyze.log_checks import MaxRaise

    lines = [LINE.format(t=t) for t in (100.0, 990.0)]  # the last one 10 s ago
    before_last = MaxRaise(NOW - timedelta(seconds=50), 65536, 262144)
    assert codes(check_log(report(lines), 2, {77: "web"}, NOW, before_last)) == {("CT403", "crit")}
    after_last = MaxRaise(NOW - timedelta(seconds=5), 65536, 262144)
    (finding,) = check_log(report(lines), 2, {77: "web"}, NOW, after_last)
    assert (finding.code, finding.severity.label) == ("CT403", "info")
    assert "all before ctguard raised nf_conntrack_max from 65,536 to 262,144" in finding.title


def test_ct403_evidence_counts_the_suppressed_calls_of_its_episodes():
    lines = [LINE.format(t=990.0), "[994.0] __ratelimit: 480 callbacks suppressed"]
    findings = check_log(report(lines), 481, {77: "web"}, NOW)
    assert "1 lines (+ up to 480 suppressed by rate limiting) in 1 episode(s)" in (
        findings[0].evidence
    )
