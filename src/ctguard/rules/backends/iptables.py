"""iptables/ip6tables + ipset: ctguard's state as chains of its own and address sets.

Per family (iptables for IPv4, ip6tables for IPv6):

- ``raw`` table: chains CTGUARD-PRE / CTGUARD-OUT, jumped to first from
  PREROUTING / OUTPUT; blocks (``-m set --match-set ctguard-block4 src -j
  DROP``) and ``-j CT --notrack`` pairs (to and from the ports) live there,
  before conntrack;
- ``mangle`` table: CTGUARD-TRACE, after conntrack, so ``--ctstate NEW``
  works; it expires through ``-m time --datestop`` (UTC);
- ipset ``ctguard-block4`` / ``ctguard-block6``: ``hash:net`` with
  per-element timeouts (0 = until removed), for blocks of every packet;
- a block qualified by a protocol (and ports) is a rule of its own in
  CTGUARD-PRE (``-s NET -p udp -m udp --sport 53 -j DROP``) that expires
  through ``-m time --datestop`` like the trace.

The renderers produce only ctguard's part; :func:`merge_save` puts it into a
table's `*-save` output in place of the previous ctguard part, so
`*-restore` replaces the table with everything else unchanged.
"""

from __future__ import annotations

import time

from ctguard.rules.model import (
    PROTOCOL_FAMILY,
    TRACE_PREFIX,
    Block,
    FirewallState,
    NotrackRule,
    Trace,
    match_label,
)

CHAINS = {"raw": ("CTGUARD-PRE", "CTGUARD-OUT"), "mangle": ("CTGUARD-TRACE",)}
JUMPS = {
    "raw": (("PREROUTING", "CTGUARD-PRE"), ("OUTPUT", "CTGUARD-OUT")),
    "mangle": (("PREROUTING", "CTGUARD-TRACE"),),
}
FAMILY = {4: ("iptables", "inet"), 6: ("ip6tables", "inet6")}


def set_name(version: int) -> str:
    return f"ctguard-block{version}"


def _comment(text: str) -> str:
    cleaned = "".join(ch for ch in text if ch.isprintable() and ch not in '"\\')[:200]
    return f'-m comment --comment "{cleaned}"'


def render_ipset(state: FirewallState, now: float, version: int) -> str:
    """`ipset restore -exist` input: the set, emptied, then every live block of this family."""
    name = set_name(version)
    lines = [
        f"create {name} hash:net family {FAMILY[version][1]} timeout 0 comment",
        f"flush {name}",
    ]
    for block in state.live(now).blocks:
        if block.version != version or block.qualified:
            continue
        left = block.seconds_left(now)
        timeout = 0 if left is None else max(1, left)
        lines.append(
            f"add {name} {block.network} timeout {timeout} {_ipset_comment(block)}".rstrip()
        )
    return "\n".join(lines) + "\n"


def _ipset_comment(block: Block) -> str:
    cleaned = "".join(ch for ch in block.reason if ch.isprintable() and ch not in '"\\')
    return f'comment "{cleaned[:200]}"' if cleaned else ""


def _notrack_lines(rule: NotrackRule, version: int) -> list[str]:
    if rule.family not in (None, version):
        return []
    lines = []
    for proto in rule.protocols:
        ports = ",".join(map(str, rule.ports))
        for chain, iface_opt, peer_opt in (
            ("CTGUARD-PRE", "-i", "-s"),
            ("CTGUARD-OUT", "-o", "-d"),
        ):
            head = f"-A {chain}"
            if rule.iface:
                head += f" {iface_opt} {rule.iface}"
            if rule.src:
                head += f" {peer_opt} {rule.src}"
            for direction in ("--dports", "--sports"):
                lines.append(
                    f"{head} -p {proto} -m multiport {direction} {ports} "
                    f"{_comment('ctguard notrack ' + rule.label())} -j CT --notrack"
                )
    return lines


def _datestop(expires: float) -> str:
    """`-m time --datestop` (UTC, the module's default): the rule stops matching then."""
    return " -m time --datestop " + time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires))


def _proto_match(proto: str, sport: int | None, dport: int | None) -> str:
    """` -p udp -m udp --sport 53`: the protocol, and the ports through its own match."""
    text = f" -p {proto}"
    if sport or dport:
        text += f" -m {proto}"
        text += f" --sport {sport}" if sport else ""
        text += f" --dport {dport}" if dport else ""
    return text


def _qualified_block_lines(blocks: tuple[Block, ...], version: int) -> list[str]:
    lines = []
    for block in blocks:
        if block.version != version or not block.qualified or block.proto is None:
            continue
        rule = f"-A CTGUARD-PRE -s {block.network}"
        rule += _proto_match(block.proto, block.sport, block.dport)
        if block.expires is not None:
            rule += _datestop(block.expires)
        lines.append(rule + f" {_comment('ctguard block ' + match_label(*block.match))} -j DROP")
    return lines


def _trace_lines(trace: Trace, version: int) -> list[str]:
    if version not in trace.versions:
        return []
    lines = []
    for proto in trace.protocols:
        if PROTOCOL_FAMILY.get(proto, version) != version:
            continue
        rule = "-A CTGUARD-TRACE -m conntrack --ctstate NEW"
        if trace.src:
            rule += f" -s {trace.src}"
        if trace.dst:
            rule += f" -d {trace.dst}"
        if proto != "any":
            rule += _proto_match(proto, trace.sport, trace.dport)
        rule += _datestop(trace.expires)
        rule += (
            f" -m limit --limit {trace.rate_per_second}/sec"
            f" --limit-burst {trace.rate_per_second * 2}"
            f' -j LOG --log-prefix "{TRACE_PREFIX}" --log-level 6'
        )
        lines.append(rule)
    return lines


def render_iptables_part(state: FirewallState, now: float, version: int, table: str) -> list[str]:
    """ctguard's lines of one table (chain declarations, jumps, rules); [] when unused."""
    state = state.live(now)
    rules: list[str] = []
    if table == "raw":
        if any(b.version == version and not b.qualified for b in state.blocks):
            rules.append(
                f"-A CTGUARD-PRE -m set --match-set {set_name(version)} src "
                f"{_comment('ctguard block')} -j DROP"
            )
        rules += _qualified_block_lines(state.blocks, version)
        for rule in state.notrack:
            rules += _notrack_lines(rule, version)
    elif table == "mangle" and state.trace is not None:
        rules += _trace_lines(state.trace, version)
    if not rules:
        return []
    declarations = [f":{chain} - [0:0]" for chain in CHAINS[table]]
    jumps = [f"-I {parent} 1 -j {chain}" for parent, chain in JUMPS[table]]
    return declarations + jumps + rules


def is_ctguard_line(line: str) -> bool:
    words = line.split()
    if not words:
        return False
    if words[0].startswith(":CTGUARD-"):
        return True
    if words[0] in ("-A", "-I") and len(words) > 1 and words[1].startswith("CTGUARD-"):
        return True
    return "-j" in words and words[-1].startswith("CTGUARD-") and words[-2] == "-j"


def merge_save(save_text: str, table: str, part: list[str]) -> str:
    """The table's `*-save` text with ctguard's old lines replaced by ``part``."""
    kept = [
        line
        for line in save_text.splitlines()
        if not is_ctguard_line(line) and not line.startswith("#")
    ]
    if not any(line == f"*{table}" for line in kept):
        kept = [f"*{table}", "COMMIT"]
    declarations = [line for line in part if line.startswith(":")]
    rules = [line for line in part if not line.startswith(":")]
    out: list[str] = []
    for line in kept:
        if line == "COMMIT":
            out += rules
        out.append(line)
        if line == f"*{table}":
            out += declarations
    return "\n".join(out) + "\n"


def ctguard_rule_count(save_text: str) -> int:
    return sum(1 for line in save_text.splitlines() if line.startswith("-A CTGUARD-"))
