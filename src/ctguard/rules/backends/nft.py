"""nftables: ctguard's state as one script replacing table ``inet ctguard``.

The script first creates then deletes the table (so it works whether or not
it exists), then defines it whole: ``nft -f`` runs it as one transaction, so
the host sees either the old table or the new one.  Nothing outside the
table is touched.

- blocks: sets with per-element timeouts, matched in a ``priority raw``
  (-300) prerouting chain, i.e. before conntrack (-200) allocates anything;
  blocks of every packet share ``block4``/``block6``; blocks qualified by a
  protocol (and ports) get one set per family and qualification (e.g.
  ``block4_udp_s53``), matched by a rule that adds the protocol and ports;
- NOTRACK: ``notrack`` only works at a priority below -200 (FACTS.md §8),
  so it sits in the same raw chains, both directions, both hooks;
- trace: ``ct state new`` needs conntrack to have run, so its chain uses
  ``priority mangle`` (-150); it expires by itself because it only matches
  while the element of ``trace_window`` (with a timeout) exists.
"""

from __future__ import annotations

import ipaddress

from ctguard.rules.model import (
    TRACE_PREFIX,
    Block,
    FirewallState,
    NotrackRule,
    Trace,
    match_label,
)

TABLE = "inet ctguard"


def quote(text: str) -> str:
    """An nft string literal (no quotes or backslashes inside, at most 120 bytes)."""
    cleaned = "".join(ch for ch in text if ch.isprintable() and ch not in '"\\')
    return '"' + cleaned.encode()[:120].decode(errors="ignore") + '"'


def _element(block: Block, now: float) -> str:
    text = block.network
    network = ipaddress.ip_network(block.network)
    if network.num_addresses == 1:
        text = str(network.network_address)
    left = block.seconds_left(now)
    if left is not None:
        text += f" timeout {max(left, 1)}s"
    if block.reason:
        text += f" comment {quote(block.reason)}"
    return text


def _block_set(name: str, addr_type: str, blocks: list[Block], now: float) -> list[str]:
    lines = [f"\tset {name} {{", f"\t\ttype {addr_type}", "\t\tflags interval, timeout"]
    if blocks:
        elements = ",\n\t\t\t".join(_element(b, now) for b in blocks)
        lines.append(f"\t\telements = {{ {elements} }}")
    lines.append("\t}")
    return lines


Match = tuple[str | None, int | None, int | None]
ADDR = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}


def qualified_set_name(version: int, match: Match) -> str:
    """block4_udp_s53, block6_tcp_d443, block4_icmp: stable, one per qualification."""
    proto, sport, dport = match
    name = f"block{version}_{proto}"
    name += f"_s{sport}" if sport else ""
    return name + (f"_d{dport}" if dport else "")


def match_expression(match: Match) -> str:
    """`meta l4proto udp th sport 53`: the protocol and ports of a qualified block."""
    proto, sport, dport = match
    parts = [f"meta l4proto {proto}"]
    parts += [f"th {name} {port}" for name, port in (("sport", sport), ("dport", dport)) if port]
    return " ".join(parts)


def _qualified_blocks(blocks: tuple[Block, ...], now: float) -> tuple[list[str], list[str]]:
    """The sets and the rules of the qualified blocks, in a stable order."""
    groups: dict[tuple[int, Match], list[Block]] = {}
    for block in blocks:
        if block.qualified:
            groups.setdefault((block.version, block.match), []).append(block)
    sets: list[str] = []
    rules: list[str] = []
    for (version, match), members in sorted(groups.items(), key=lambda item: str(item[0])):
        name = qualified_set_name(version, match)
        sets += _block_set(name, ADDR[version][1], members, now)
        comment = quote(f"ctguard block {match_label(*match)}")
        rules.append(
            f"\t\t{ADDR[version][0]} saddr @{name} {match_expression(match)} "
            f"counter drop comment {comment}"
        )
    return sets, rules


def _ports(ports: tuple[int, ...]) -> str:
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def _protocols(rule: NotrackRule) -> str:
    protos = rule.protocols
    return protos[0] if len(protos) == 1 else "{ " + ", ".join(protos) + " }"


def notrack_rules(rule: NotrackRule, hook: str) -> list[str]:
    """Both directions: to the ports (requests) and from them (replies)."""
    iface = ""
    if rule.iface:
        iface = f"{'iifname' if hook == 'prerouting' else 'oifname'} {quote(rule.iface)} "
    peer = ""
    if rule.src:
        family = "ip" if rule.family == 4 else "ip6"
        direction = "saddr" if hook == "prerouting" else "daddr"
        peer = f"{family} {direction} {rule.src} "
    comment = quote(f"ctguard notrack {rule.label()}")
    return [
        f"\t\t{iface}{peer}meta l4proto {_protocols(rule)} th {port} {_ports(rule.ports)} "
        f"notrack comment {comment}"
        for port in ("dport", "sport")
    ]


def trace_rule(trace: Trace) -> str:
    parts = ["meta nfproto @trace_window", "ct state new"]
    for address, direction in ((trace.src, "saddr"), (trace.dst, "daddr")):
        if address:
            family = "ip" if ipaddress.ip_network(address).version == 4 else "ip6"
            parts.append(f"{family} {direction} {address}")
    protocols = trace.protocols
    if protocols != ("any",):
        joined = protocols[0] if len(protocols) == 1 else "{ " + ", ".join(protocols) + " }"
        parts.append(f"meta l4proto {joined}")
    for name, port in (("sport", trace.sport), ("dport", trace.dport)):
        if port is not None:
            parts.append(f"th {name} {port}")
    burst = trace.rate_per_second * 2
    parts.append(f"limit rate {trace.rate_per_second}/second burst {burst} packets")
    parts.append(f"counter log prefix {quote(TRACE_PREFIX)} level info")
    return "\t\t" + " ".join(parts)


def render_nft(state: FirewallState, now: float) -> str:
    """The script that makes table inet ctguard exactly ``state`` (deleted when empty)."""
    state = state.live(now)
    lines = [f"table {TABLE}", f"delete table {TABLE}"]
    if state.empty:
        return "\n".join(lines) + "\n"
    lines.append(f"table {TABLE} {{")
    v4 = [b for b in state.blocks if b.version == 4 and not b.qualified]
    v6 = [b for b in state.blocks if b.version == 6 and not b.qualified]
    lines += _block_set("block4", "ipv4_addr", v4, now)
    lines += _block_set("block6", "ipv6_addr", v6, now)
    qualified_sets, qualified_rules = _qualified_blocks(state.blocks, now)
    lines += qualified_sets
    if state.trace is not None:
        left = max(1, int(state.trace.expires - now))
        lines += [
            "\tset trace_window {",
            "\t\ttype nf_proto",
            "\t\tflags timeout",
            f"\t\telements = {{ ipv4 timeout {left}s, ipv6 timeout {left}s }}",
            "\t}",
        ]
    lines += [
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority raw; policy accept;",
        '\t\tip saddr @block4 counter drop comment "ctguard block"',
        '\t\tip6 saddr @block6 counter drop comment "ctguard block"',
        *qualified_rules,
    ]
    for rule in state.notrack:
        lines += notrack_rules(rule, "prerouting")
    lines.append("\t}")
    lines += [
        "\tchain output {",
        "\t\ttype filter hook output priority raw; policy accept;",
    ]
    for rule in state.notrack:
        lines += notrack_rules(rule, "output")
    lines.append("\t}")
    if state.trace is not None:
        lines += [
            "\tchain trace {",
            "\t\ttype filter hook prerouting priority mangle; policy accept;",
            trace_rule(state.trace),
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"
