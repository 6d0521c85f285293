"""Which firewall rules make conntrack active (FACTS.md §8), from ruleset text.

Reads `nft list ruleset` and `iptables-save` output.  Pure: lines in,
:class:`TrackingRule` values out, each with what the rule is for and
whether the same job can be done without connection tracking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TrackingRule:
    backend: str  # "nftables" or "iptables"/"ip6tables"
    location: str  # "inet filter input" / "filter INPUT"
    rule: str
    feature: str
    purpose: str
    stateless: str  # "yes", "maybe", "no"
    alternative: str
    line: int


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    feature: str
    purpose: str
    stateless: str
    alternative: str


def _p(regex: str, feature: str, purpose: str, stateless: str, alternative: str) -> _Pattern:
    return _Pattern(re.compile(regex), feature, purpose, stateless, alternative)


NAT_NO = "NAT rewrites every packet of a flow from its conntrack entry: it needs tracking"
NFT_PATTERNS = (
    _p(
        r"\bct state\b[^;]*\binvalid\b",
        "ct state invalid",
        "drops packets conntrack cannot place",
        "yes",
        "without tracking there is no INVALID state; TCP itself rejects stray segments",
    ),
    _p(
        r"\bct state\b",
        "ct state",
        "stateful filtering: lets replies and related packets in",
        "maybe",
        "a server that only answers can accept its service ports and, for its own "
        "outbound traffic, replies by source port / `tcp flags & ack`",
    ),
    _p(
        r"\bct count\b",
        "ct count (connlimit)",
        "limits concurrent connections per source",
        "no",
        "a packet-rate limit (`limit rate` / meters) works without tracking",
    ),
    _p(
        r"\b(snat|masquerade)\b",
        "source NAT",
        "shares addresses (gateway, containers)",
        "no",
        NAT_NO,
    ),
    _p(r"\b(dnat|redirect)\b", "destination NAT", "port forwarding / service VIPs", "no", NAT_NO),
    _p(
        r"\bflow (add|offload)\b|\bflow add @",
        "flow offload",
        "fast path for established flows",
        "no",
        "offload is built on conntrack entries",
    ),
    _p(r"\bsynproxy\b", "synproxy", "SYN flood protection", "no", "it relies on tracking"),
    _p(
        r"\bct (mark|label|zone|helper|status|direction|expiration|original|reply|id)\b",
        "ct match/set",
        "connection marks, zones, helpers or status",
        "no",
        "connection-level data exists only with tracking",
    ),
)
IPT_PATTERNS = (
    _p(
        r"--(ct)?state\s+\S*INVALID",
        "state INVALID",
        "drops packets conntrack cannot place",
        "yes",
        "without tracking there is no INVALID state",
    ),
    _p(
        r"-m (state|conntrack)\b",
        "-m state/conntrack",
        "stateful filtering: lets replies and related packets in",
        "maybe",
        "a server that only answers can accept its "
        "service ports and replies by source port / ACK flag",
    ),
    _p(
        r"-m connlimit\b",
        "-m connlimit",
        "limits concurrent connections per source",
        "no",
        "-m hashlimit limits packet rates without tracking",
    ),
    _p(r"-j (SNAT|MASQUERADE|NETMAP)\b", "source NAT", "shares addresses", "no", NAT_NO),
    _p(r"-j (DNAT|REDIRECT)\b", "destination NAT", "port forwarding", "no", NAT_NO),
    _p(r"-j SYNPROXY\b", "SYNPROXY", "SYN flood protection", "no", "it relies on tracking"),
    _p(
        r"-m connmark\b|-j CONNMARK\b",
        "connmark",
        "connection marks (policy routing)",
        "no",
        "connection marks exist only with tracking",
    ),
    _p(
        r"-j CT\b(?!.*--notrack)",
        "CT target",
        "helpers, zones or timeouts per flow",
        "no",
        "per-flow settings exist only with tracking",
    ),
    _p(
        r"-m helper\b",
        "-m helper",
        "matches connection helpers",
        "no",
        "helpers are part of tracking",
    ),
)
NAT_CHAIN = _p(r"", "nat chain", "a chain of type nat registers tracking by itself", "no", NAT_NO)
NAT_TABLE_RULE = _p(r"", "nat table rule", "any rule in the nat table", "no", NAT_NO)
_IPTABLES_NFT_WARNING = re.compile(r"# Warning: table (\S+ \S+) is managed by iptables-nft")


def _found(backend: str, location: str, rule: str, pattern: _Pattern, line: int) -> TrackingRule:
    return TrackingRule(
        backend,
        location,
        rule,
        pattern.feature,
        pattern.purpose,
        pattern.stateless,
        pattern.alternative,
        line,
    )


def _match(patterns: tuple[_Pattern, ...], text: str) -> _Pattern | None:
    return next((p for p in patterns if p.regex.search(text)), None)


def iptables_nft_tables(save_text: str, family: str) -> set[str]:
    """nft tables that an iptables-nft `*-save` output already shows ("ip nat", ...)."""
    if "(nf_tables)" not in save_text:
        return set()  # iptables-legacy: its rules are not in the nft ruleset
    return {f"{family} {line[1:].strip()}" for line in save_text.splitlines() if line[:1] == "*"}


def audit_nft(text: str, skip: set[str] | None = None) -> list[TrackingRule]:
    """Rules of `nft list ruleset`; tables in ``skip`` (iptables-nft's) are left to *-save."""
    found = []
    table = chain = ""
    skip_tables = set(_IPTABLES_NFT_WARNING.findall(text)) | (skip or set())
    depth_table = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("table "):
            table = line[len("table ") :].rstrip(" {")
            depth_table = table
            continue
        if line.startswith("chain "):
            chain = line[len("chain ") :].rstrip(" {")
            continue
        if depth_table in skip_tables or table == "inet ctguard":
            continue
        if not line or line.startswith(("#", "}", "type ", "policy ", "set ", "elements")):
            if line.startswith("type ") and " hook " in line and line.split()[1] == "nat":
                found.append(_found("nftables", f"{table} {chain}", line, NAT_CHAIN, number))
            continue
        pattern = _match(NFT_PATTERNS, line)
        if pattern is not None:
            found.append(_found("nftables", f"{table} {chain}", line, pattern, number))
    return found


def audit_iptables(text: str, tool: str = "iptables") -> list[TrackingRule]:
    found = []
    table = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if not line.startswith("-A "):
            continue
        chain = line.split()[1]
        pattern: _Pattern | None
        if table == "nat":
            pattern = _match(IPT_PATTERNS, line) or NAT_TABLE_RULE
        else:
            pattern = _match(IPT_PATTERNS, line)
        if pattern is not None:
            found.append(_found(tool, f"{table} {chain}", line, pattern, number))
    return found


def unload_sequence(holders: Iterable[str], module: str = "nf_conntrack") -> list[str]:
    """The modprobe -r order for a host that needs no tracking (a plan, never run)."""
    users = sorted(set(holders))
    steps = [f"modprobe -r {name}" for name in users]
    steps.append(f"modprobe -r {module}")
    steps.append("modprobe -r nf_defrag_ipv4 nf_defrag_ipv6   # if nothing else uses them")
    return steps
