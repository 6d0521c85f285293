"""LOG lines of `ctguard trace`, ranked by `ctguard logs --trace`."""

from __future__ import annotations

from ctguard.parse.trace_log import parse_trace_line, summarize_trace
from tests.conftest import run_cli

DMESG = (
    "[ 812.120001] ctguard-trace: IN=eth0 OUT= MAC=02:00:00:00:00:01 SRC=203.0.113.7 "
    "DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40001 DPT=443 "
    "WINDOW=64240 RES=0x00 SYN URGP=0\n"
)
SYSLOG = (
    "Nov 22 10:00:01 gw kernel: [ 900.1] ctguard-trace: IN=eth0 OUT= SRC=2001:0db8:0000:0000:"
    "0000:0000:0000:0009 DST=2001:db8::1 LEN=80 PROTO=UDP SPT=5353 DPT=53 LEN=40\n"
)


def test_fields_and_canonical_ipv6() -> None:
    flow = parse_trace_line(DMESG)
    assert flow is not None and (flow.src, flow.proto, flow.dport) == ("203.0.113.7", "tcp", 443)
    six = parse_trace_line(SYSLOG)
    assert six is not None and six.src == "2001:db8::9" and six.dport == 53


def test_summary_ranks_sources_and_skips_noise() -> None:
    lines = [DMESG] * 3 + [SYSLOG, "random kernel line\n", "ctguard-trace: IN=eth0 garbage\n"]
    summary = summarize_trace(lines)
    assert summary.lines == 4 and summary.unparsed == 1
    assert summary.by_src.most_common(1) == [("203.0.113.7", 3)]
    assert summary.by_dport[("udp", 53)] == 1


def test_logs_trace_cli_from_stdin() -> None:
    result = run_cli("logs", "--trace", "-", "--json", stdin=DMESG * 2 + SYSLOG)
    data = result.json()
    assert data["lines"] == 3
    assert data["by_src"][0] == {"src": "203.0.113.7", "count": 2, "share": 0.666667}
    text = run_cli("logs", "--trace", "-", stdin=DMESG)
    assert "ctguard block 203.0.113.7" in text.stdout
