"""``ctguard analyze``: what fills the table and whether that is an attack,
a leak, or just load, from one pass over the table.

One scan captures the columns below; several small tallies are counted from
the same rows; :func:`build_profile` decodes them into a
:class:`TableProfile`; :func:`check_table` turns the profile into findings
(CT5xx).  Thresholds are data (:class:`TableThresholds`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ctguard.analyze.table_keys import canonical_address, canonical_addresses, subnet_of
from ctguard.analyze.table_top import rank
from ctguard.model.command import ctguard_command as cmd
from ctguard.model.findings import Finding, Severity
from ctguard.model.kernel_defaults import TIMEOUT_DEFAULTS, humanize_seconds
from ctguard.parse.conntrack_table import COLUMNS as SCAN_COLUMNS
from ctguard.parse.table_scan import ScanResult, ScanSpec, add_counts

# every column but the high-cardinality ones (sport, the reply tuple) and
# those a table analysis does not use (mark, zone)
COLUMNS = tuple(
    c for c in SCAN_COLUMNS if c not in ("sport", "reply_src", "reply_dst", "mark", "zone")
)
T_DST = ("dst",)
T_SRC_CLASS = ("proto", "state", "src", "unreplied")
T_PORT_CLASS = ("proto", "state", "dport", "unreplied", "nat", "status")
T_TIMEOUT = ("proto", "timeout", "state", "status")
T_SRC_DPORT = ("src", "dport")


# The tallies share a key budget (memory stays bounded whatever the dump);
# past it the largest keeps its heaviest keys and the result says it is
# approximate.  The (src, dport) pairs are pruned by source: a source with
# dozens of ports keeps them, exactly, in a port bitmap (a scanner's count
# stays exact whatever it probes), the sources with the fewest are dropped.  What pruning drops
# from T_PORT_CLASS is still counted by class (without the port), so every
# total stays exact even when a flood to random ports fills the budget.
def port_class(key: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """A T_PORT_CLASS key without its port: (proto, state, unreplied, nat, status)."""
    proto, state, _dport, unreplied, nat, status = key
    return proto, state, unreplied, nat, status


def source_subnet(key: tuple[bytes, ...]) -> bytes | str:
    """The /24 (IPv4) or /64 (IPv6) of a T_SRC_CLASS key's source.

    Runs for every key a prune drops, so a dotted quad is cut as bytes
    (``b"10.0.0."``; see :func:`subnet_label`) instead of decoded.
    """
    return subnet_of_source(key[2])


def subnet_of_source(raw: bytes) -> bytes | str:
    """:func:`source_subnet` of a captured source address."""
    if raw.count(b".") == 3 and b":" not in raw:
        return raw[: raw.rindex(b".") + 1]
    if len(raw) == 39 and raw.count(b":") == 7:  # expanded IPv6 (procfs): 4 groups
        return raw[:20]
    return subnet_of(canonical_address(raw), 24, 64)


def subnet_label(coarse: bytes | str) -> str:
    """What :func:`source_subnet` gave, as people write a subnet."""
    if isinstance(coarse, bytes):
        # b"10.0.0." + b"0", or b"2001:0db8:0000:0001:" + b":"
        address = coarse + (b"0" if coarse.endswith(b".") else b":")
        return subnet_of(address.decode("ascii", "replace"), 24, 64)
    return coarse


ANALYZE_SPEC = ScanSpec(
    columns=COLUMNS,
    tallies=(T_DST, T_SRC_CLASS, T_PORT_CLASS, T_TIMEOUT, T_SRC_DPORT),
    distinct_tallies=(T_SRC_DPORT,),
    # many small sources of one network (a botnet, spoofed SYNs) are what
    # pruning drops first; their subnet totals survive it
    folds=((T_SRC_CLASS, source_subnet), (T_PORT_CLASS, port_class)),
)

SYN_STATES = frozenset({"SYN_SENT", "SYN_RECV", "SYN_SENT2"})
SYN_STATES_RAW = frozenset(state.encode() for state in SYN_STATES)
# A half-open handshake: SYN_SENT (or SYN_SENT2) with no reply yet, or SYN_RECV.
# An entry reaches SYN_RECV only once the SYN-ACK was seen, so SYN_RECV is never
# [UNREPLIED]: it is the handshake of a server that answers, waiting for the final
# ACK (a SYN flood against a listening port). ASSURED is set on the way to
# ESTABLISHED, so a SYN_RECV entry is not ASSURED.
SYN_SENT_RAW = frozenset({b"SYN_SENT", b"SYN_SENT2"})
SYN_RECV_RAW = b"SYN_RECV"


def half_open(proto: bytes, state: bytes, unreplied: bytes | bool, status: bytes = b"") -> bool:
    """Whether a TCP entry is a half-open handshake (see SYN_SENT_RAW / SYN_RECV_RAW)."""
    if proto != b"tcp" or status == b"ASSURED":
        return False
    return state == SYN_RECV_RAW or (bool(unreplied) and state in SYN_SENT_RAW)


# ASSURED entries the kernel may still evict: once a new flow has been
# dropped, the GC worker removes these (the protocols' can_early_drop) from
# a table over 95% full; early_drop on a new flow never takes an ASSURED one
# (FACTS.md section 4).
CLOSING_STATES_RAW: dict[bytes, frozenset[bytes]] = {
    b"tcp": frozenset({b"FIN_WAIT", b"LAST_ACK", b"TIME_WAIT", b"CLOSE", b"CLOSE_WAIT"}),
    b"sctp": frozenset({b"SHUTDOWN_SENT", b"SHUTDOWN_RECD", b"SHUTDOWN_ACK_SENT"}),
    b"dccp": frozenset({b"CLOSEREQ", b"CLOSING", b"TIMEWAIT"}),
}
ESTABLISHED_DEFAULT = TIMEOUT_DEFAULTS["tcp_timeout_established"].current
IDLE_BUCKETS = ((86400, "idle > 1 day"), (3600, "idle 1 h - 1 day"), (0, "idle < 1 h"))
TOP = 5


@dataclass(frozen=True)
class TableThresholds:
    """When a share of the table becomes a finding (shares are of all entries)."""

    min_entries: int = 1000  # below this, nothing is a flood
    dominant_share: float = 0.25
    dominant_crit_share: float = 0.5
    flood_share: float = 0.2
    scan_ports: int = 100
    orphan_share: float = 0.2
    orphan_idle_s: int = 3600
    pileup_share: float = 0.3
    nat_share: float = 0.5


@dataclass
class TableProfile:
    """Decoded aggregates of one table."""

    source: str
    entries: int
    scan: ScanResult
    by_src: list[tuple[str, int]] = field(default_factory=list)
    by_dst: list[tuple[str, int]] = field(default_factory=list)
    by_src24: list[tuple[str, int]] = field(default_factory=list)
    by_dport: list[tuple[tuple[str, int | None], int]] = field(default_factory=list)
    by_proto: Counter[str] = field(default_factory=Counter)
    by_state: Counter[str] = field(default_factory=Counter)
    by_flags: Counter[str] = field(default_factory=Counter)
    assured: int = 0
    assured_closing: int = 0  # of those, closing flows (see CLOSING_STATES_RAW)
    nat: int = 0
    syn_sent_unreplied: int = 0  # SYN_SENT/SYN_SENT2 [UNREPLIED]: nobody answered
    syn_recv: int = 0  # SYN_RECV, not ASSURED: answered, the final ACK never came
    syn_by_src: list[tuple[str, int]] = field(default_factory=list)
    syn_by_dport: list[tuple[int | None, int]] = field(default_factory=list)
    udp_unreplied: int = 0
    udp_unreplied_by_dport: list[tuple[int | None, int]] = field(default_factory=list)
    udp_unreplied_by_src: list[tuple[str, int]] = field(default_factory=list)
    ports_per_src: list[tuple[str, int]] = field(default_factory=list)
    established_assured: int = 0
    established_idle: dict[str, int] = field(default_factory=dict)
    established_timeout: int | None = None
    established_timeout_source: str = ""
    max_established_remaining: int | None = None
    approximate: bool = False

    @property
    def syn_half_open(self) -> int:
        """Half-open handshakes: unreplied SYN_SENT plus SYN_RECV."""
        return self.syn_sent_unreplied + self.syn_recv

    @property
    def evictable(self) -> int:
        """Entries early_drop may evict (not ASSURED, FACTS.md §4 and §9)."""
        return self.entries - self.assured


def _port(raw: bytes) -> int | None:
    return int(raw) if raw else None


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace") if raw else "-"


def _ranked_addresses(counts: dict[bytes, int]) -> list[tuple[str, int]]:
    merged: Counter[str] = Counter()
    add_counts(merged, zip(canonical_addresses(counts), counts.values(), strict=True))
    return rank(merged, TOP)


def build_profile(
    source: str, scan: ScanResult, established_timeout: int | None = None
) -> TableProfile:
    """Decode the tallies of an ``ANALYZE_SPEC`` scan."""
    t = {key: tally.counts for key, tally in scan.tallies.items()}
    profile = TableProfile(source=source, entries=scan.entries, scan=scan)
    profile.approximate = any(
        tally.max_error or tally.folded_max_error for tally in scan.tallies.values()
    )
    by_src = _profile_sources(profile, t[T_SRC_CLASS])
    profile.by_dst = _ranked_addresses(t[T_DST])
    # the kept keys folded (by source: the same as Tally.coarse_counts), and
    # what pruning folded
    coarse: Counter[bytes | str] = Counter(scan.tallies[T_SRC_CLASS].folded)
    add_counts(coarse, ((subnet_of_source(raw), count) for raw, count in by_src.items()))
    subnets: Counter[str] = Counter()
    add_counts(subnets, ((subnet_label(key), count) for key, count in coarse.items()))
    profile.by_src24 = rank(subnets, TOP)

    dports: Counter[tuple[str, int | None]] = Counter()
    syn_dport: Counter[int | None] = Counter()
    udp_dport: Counter[int | None] = Counter()
    # totals by class: the kept keys plus what pruning dropped, exact
    for (proto, state, unreplied, nat, status), count in (
        scan.tallies[T_PORT_CLASS].coarse_counts(port_class).items()
    ):
        name, state_name = _text(proto), _text(state)
        profile.by_proto[name] += count
        profile.by_state[state_name] += count
        flag = status.decode() if status else ("UNREPLIED" if unreplied else "none")
        profile.by_flags[flag] += count
        if status == b"ASSURED":
            profile.assured += count
            if state in CLOSING_STATES_RAW.get(proto, ()):
                profile.assured_closing += count
        if nat:
            profile.nat += count
        if half_open(proto, state, unreplied, status):
            if state == SYN_RECV_RAW:
                profile.syn_recv += count
            else:
                profile.syn_sent_unreplied += count
        if name == "udp" and unreplied:
            profile.udp_unreplied += count
    # by port: the kept keys (approximate once pruned)
    for (proto, state, dport, unreplied, _nat, status), count in t[T_PORT_CLASS].items():
        port = _port(dport)
        name = _text(proto)
        dports[(name, port)] += count
        if half_open(proto, state, unreplied, status):
            syn_dport[port] += count
        if name == "udp" and unreplied:
            udp_dport[port] += count
    profile.by_dport = rank(dports, TOP)
    profile.syn_by_dport = rank(syn_dport, 3)
    profile.udp_unreplied_by_dport = rank(udp_dport, 3)

    ports = scan.tallies[T_SRC_DPORT].distinct_by_first()
    distinct: Counter[str] = Counter()
    add_counts(distinct, zip(canonical_addresses(ports), ports.values(), strict=True))
    profile.ports_per_src = rank(distinct, TOP)

    remaining: Counter[int] = Counter()
    add_counts(
        remaining,
        (
            (int(timeout), count)
            for (proto, timeout, state, status), count in t[T_TIMEOUT].items()
            if proto == b"tcp" and state == b"ESTABLISHED" and status == b"ASSURED" and timeout
        ),
    )
    _profile_established(profile, remaining, established_timeout)
    return profile


def _profile_sources(
    profile: TableProfile, src_class: dict[tuple[bytes, ...], int]
) -> dict[bytes, int]:
    """By source: all entries (returned, as captured), half-open handshakes and
    unreplied UDP (one pass over what may be tens of thousands of keys).

    The per-source keys carry no ASSURED flag; a SYN_RECV entry is never ASSURED
    when the kernel made it (see SYN_SENT_RAW)."""
    by_src: dict[bytes, int] = {}
    syn_src: dict[bytes, int] = {}
    udp_src: dict[bytes, int] = {}
    get = by_src.get
    for (proto, state, src, unreplied), count in src_class.items():
        by_src[src] = get(src, 0) + count
        if half_open(proto, state, unreplied):
            syn_src[src] = syn_src.get(src, 0) + count
        elif unreplied and proto == b"udp":
            udp_src[src] = udp_src.get(src, 0) + count
    profile.by_src = _ranked_addresses(by_src)
    profile.syn_by_src = _ranked_addresses(syn_src)
    profile.udp_unreplied_by_src = _ranked_addresses(udp_src)
    return by_src


def _profile_established(
    profile: TableProfile, remaining: Counter[int], established_timeout: int | None
) -> None:
    profile.established_assured = sum(remaining.values())
    if not remaining:
        return
    profile.max_established_remaining = max(remaining)
    if established_timeout is not None:
        profile.established_timeout = established_timeout
        profile.established_timeout_source = "sysctl"
    elif profile.max_established_remaining > 86400:
        # Remaining timeouts above a day only exist with the 5-day default (or
        # something close to it); each packet resets an entry to the full value.
        profile.established_timeout = ESTABLISHED_DEFAULT
        profile.established_timeout_source = "inferred from remaining timeouts"
    if profile.established_timeout is None:
        return
    buckets = dict.fromkeys((label for _, label in IDLE_BUCKETS), 0)
    for left, count in remaining.items():
        idle = max(0, profile.established_timeout - left)
        for floor, label in IDLE_BUCKETS:
            if idle >= floor:
                buckets[label] += count
                break
    profile.established_idle = buckets


# --- findings ----------------------------------------------------------------


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def _top_text(items: list[tuple[Any, int]], whole: int, n: int = 3) -> str:
    return ", ".join(f"{key} {count:,} ({_pct(count, whole)})" for key, count in items[:n])


def check_table(
    profile: TableProfile,
    thresholds: TableThresholds = TableThresholds(),
    *,
    source_args: tuple[str, ...] = (),
) -> list[Finding]:
    """CT5xx findings about the table's content."""
    th = thresholds
    n = profile.entries
    findings: list[Finding] = []
    args = source_args
    if profile.scan.skipped.count:
        findings.append(
            Finding(
                "CT509",
                Severity.INFO,
                "some input lines are not conntrack entries",
                f"{profile.scan.skipped.count:,} line(s) skipped: "
                + ", ".join(f"{c:,} {r}" for r, c in profile.scan.skipped.reasons.most_common()),
                "skipped lines are counted, not guessed at; numbers below cover the entries read",
                cmd("top", *args, "--strict"),
            )
        )
    if n == 0:
        return findings
    big = n >= th.min_entries

    if profile.by_src and big:
        src, count = profile.by_src[0]
        share = count / n
        if share >= th.dominant_share:
            severity = Severity.CRIT if share >= th.dominant_crit_share else Severity.WARN
            findings.append(
                Finding(
                    "CT501",
                    severity,
                    f"one source holds {_pct(count, n)} of the table",
                    f"{src}: {count:,} of {n:,} entries; next: {_top_text(profile.by_src[1:], n)}",
                    "a single address filling the table is a flood, a misbehaving client or a "
                    "NAT'd crowd; raising nf_conntrack_max only postpones the overflow",
                    _act_or(
                        args,
                        ("block", src, "--ttl", "1h", "--reason", f"holds {_pct(count, n)}"),
                        cmd("top", *args, "--src", src, "--by", "dport,state"),
                    ),
                )
            )

    if big and profile.syn_half_open >= th.flood_share * n:
        findings.append(_syn_flood(profile, args))

    if big and profile.udp_unreplied >= th.flood_share * n:
        dport_text = _top_text(profile.udp_unreplied_by_dport, profile.udp_unreplied)
        port = profile.udp_unreplied_by_dport[0][0] if profile.udp_unreplied_by_dport else None
        findings.append(
            Finding(
                "CT503",
                Severity.WARN,
                "UDP flood signature: many unanswered UDP flows",
                f"{profile.udp_unreplied:,} unreplied UDP entries "
                f"({_pct(profile.udp_unreplied, n)}); to ports: {dport_text}; "
                f"sources: {_top_text(profile.udp_unreplied_by_src, n)}",
                "one-shot UDP (DNS, NTP) is never ASSURED and is evictable, but a flood of it "
                "still churns the table; a busy resolver or server port usually needs no "
                "tracking at all",
                _act_or(
                    args,
                    ("notrack", "--port", str(port), "--proto", "udp"),
                    cmd(
                        "top",
                        *args,
                        "--proto",
                        "udp",
                        "--unreplied",
                        "--dport",
                        str(port),
                        "--by",
                        "src",
                    ),
                )
                if port
                else cmd("top", *args, "--proto", "udp", "--unreplied", "--by", "src,dport"),
            )
        )

    if profile.ports_per_src:
        scanner, port_count = profile.ports_per_src[0]
        if port_count >= th.scan_ports:
            findings.append(
                Finding(
                    "CT504",
                    Severity.WARN,
                    "port scan signature: one source, many destination ports",
                    f"{scanner} reaches {port_count:,} distinct destination ports; next: "
                    + ", ".join(f"{s} {p:,} ports" for s, p in profile.ports_per_src[1:3]),
                    "a scanner creates an entry per probed port; block it before conntrack",
                    _act_or(
                        args,
                        ("block", scanner, "--ttl", "1h", "--reason", "port scan"),
                        cmd("top", *args, "--src", scanner, "--by", "dport", "-n", "20"),
                    ),
                )
            )

    findings += _check_established(profile, th, args)
    findings += _check_closing(profile, th, args)

    if big and profile.nat >= th.nat_share * n:
        findings.append(
            Finding(
                "CT507",
                Severity.INFO,
                "NAT gateway load: most entries are translated flows",
                f"{profile.nat:,} of {n:,} entries ({_pct(profile.nat, n)}) have a reply tuple "
                "that is not the mirror of the original (SNAT/masquerade or DNAT)",
                "each client flow through this host costs an entry here; size the table for "
                "clients x flows per client, not for this host's own services",
                _advise_or(
                    args, cmd("status", comment="max, memory per entry, default for this RAM")
                ),
            )
        )

    findings.append(_evictable_finding(profile, args))
    return findings


def _evictable_finding(profile: TableProfile, args: tuple[str, ...]) -> Finding:
    n, evictable, closing = profile.entries, profile.evictable, profile.assured_closing
    held = profile.assured - closing
    return Finding(
        "CT508",
        Severity.INFO,
        "how much of the table the kernel could evict when it is full",
        f"{evictable:,} of {n:,} entries ({_pct(evictable, n)}) are not ASSURED; of the "
        f"{profile.assured:,} ASSURED, {closing:,} are closing flows and {held:,} "
        f"({_pct(held, n)} of the table) can only time out",
        "on a full table a new flow looks at its own hash bucket and the next 7, and evicts "
        "the non-ASSURED entries of the first one that has any (early_drop); if those 8 "
        "buckets hold only ASSURED entries, the packet is dropped, so drops begin before the "
        "whole table is ASSURED. "
        "After a drop, the GC worker also evicts ASSURED closing flows (TCP TIME_WAIT, "
        "CLOSE_WAIT, FIN_WAIT, LAST_ACK, CLOSE; SCTP and DCCP shutdown states) while the "
        "table is over 95% full; the rest leave only when they time out or are deleted",
        cmd("top", *args, "--by", "flags,state"),
    )


def _live_target(args: tuple[str, ...]) -> tuple[str, ...] | None:
    """``("--netns", X)`` / ``()`` for a live table; None for a dump file or bundle."""
    if not args or (len(args) == 2 and args[0] == "--netns"):
        return args
    return None


SYNPROXY_DOC = "docs/findings.md, 'SYN floods: block or SYNPROXY'"


def _syn_flood(profile: TableProfile, args: tuple[str, ...]) -> Finding:
    """CT502: half-open handshakes, answered (SYN_RECV) or not (SYN_SENT)."""
    n, half = profile.entries, profile.syn_half_open
    seen = []
    if profile.syn_recv:
        seen.append(
            f"{profile.syn_recv:,} SYN_RECV (answered with a SYN-ACK, the final ACK never came)"
        )
    if profile.syn_sent_unreplied:
        seen.append(f"{profile.syn_sent_unreplied:,} unreplied SYN_SENT (no answer)")
    evidence = (
        f"{half:,} half-open entries ({_pct(half, n)}): {' and '.join(seen)}; "
        f"sources: {_top_text(profile.syn_by_src, half)}; "
        f"ports: {_top_text(profile.syn_by_dport, half)}"
    )
    why = (
        "half-open entries are not ASSURED, so a full table evicts them (early_drop) instead "
        "of dropping traffic, but they still cost memory and CPU and push out other young flows"
    )
    if profile.syn_recv:
        why += (
            "; SYN_RECV means the server answers every SYN (with SYN cookies once its backlog "
            "is full): the table fills, not the server"
        )
    look = cmd("top", *args, "--state", "SYN_SENT,SYN_RECV", "--by", "src/24,dport")
    top_src = profile.syn_by_src[0] if profile.syn_by_src else None
    if top_src is not None and top_src[1] * 2 >= half:
        src = top_src[0]
        why += f"; one source sends most of them: block {src}"
        return Finding(
            "CT502",
            Severity.WARN,
            "SYN flood signature: half-open handshakes fill the table",
            evidence,
            why,
            _act_or(args, ("block", src, "--ttl", "1h", "--reason", "SYN flood"), look),
        )
    port = profile.syn_by_dport[0][0] if profile.syn_by_dport else None
    target = f"port {port}" if port is not None else "the port"
    why += (
        f"; from many sources (spoofed, nothing to block): SYNPROXY on {target} answers SYNs "
        "with cookies before any entry is made (raw prerouting notrack of the SYNs, "
        "'ct state invalid,untracked synproxy', then 'ct state invalid drop'; sysctls "
        "net.netfilter.nf_conntrack_tcp_loose=0, net.ipv4.tcp_syncookies=1, "
        f"net.ipv4.tcp_timestamps=1; the exact lines: {SYNPROXY_DOC})"
    )
    return Finding(
        "CT502",
        Severity.WARN,
        "SYN flood signature: half-open handshakes fill the table",
        evidence,
        why,
        look,
    )


def _act_or(args: tuple[str, ...], action: tuple[str, ...], investigate: str) -> str:
    """The fixing command for a live table (after a look); only the look for a dump."""
    target = _live_target(args)
    if target is None:
        return investigate
    return cmd(*action, *target, comment=f"after a look: {investigate}")


def _advise_or(args: tuple[str, ...], investigate: str) -> str:
    """`ctguard advise` for a live table or a bundle (it reads those); the look otherwise."""
    if _live_target(args) is None and not (len(args) == 2 and args[0] == "--root"):
        return investigate
    return cmd("advise", *args, comment=f"timeouts and sizing for this table; or: {investigate}")


def _check_established(
    profile: TableProfile, th: TableThresholds, args: tuple[str, ...]
) -> list[Finding]:
    n = profile.entries
    if not profile.established_idle or n < th.min_entries:
        return []
    idle = sum(
        profile.established_idle.get(label, 0)
        for floor, label in IDLE_BUCKETS
        if floor >= th.orphan_idle_s
    )
    if idle < th.orphan_share * n:
        return []
    timeout = profile.established_timeout or ESTABLISHED_DEFAULT
    detail = ", ".join(f"{label}: {count:,}" for label, count in profile.established_idle.items())
    return [
        Finding(
            "CT505",
            Severity.WARN,
            "orphan suspicion: idle ESTABLISHED entries wait out a long timeout",
            f"{idle:,} ASSURED ESTABLISHED entries ({_pct(idle, n)}) idle for over "
            f"{humanize_seconds(th.orphan_idle_s)} ({detail}); established timeout "
            f"{humanize_seconds(timeout)} ({profile.established_timeout_source})",
            "peers that vanished without FIN/RST leave ESTABLISHED entries for the full "
            "timeout (5 days by default); they are ASSURED, so a full table drops packets "
            "instead of evicting them; a timeout above the applications' keepalive frees them",
            _advise_or(
                args, cmd("top", *args, "--state", "ESTABLISHED", "--assured", "--by", "dst,dport")
            ),
        )
    ]


def _check_closing(
    profile: TableProfile, th: TableThresholds, args: tuple[str, ...]
) -> list[Finding]:
    n = profile.entries
    findings: list[Finding] = []
    if n < th.min_entries:
        return findings
    for state, sysctl in (
        ("TIME_WAIT", "nf_conntrack_tcp_timeout_time_wait"),
        ("CLOSE_WAIT", "nf_conntrack_tcp_timeout_close_wait"),
    ):
        count = profile.by_state.get(state, 0)
        if count < th.pileup_share * n:
            continue
        findings.append(
            Finding(
                "CT506",
                Severity.WARN,
                f"{state} pile-up",
                f"{count:,} {state} entries ({_pct(count, n)} of the table)",
                "closing connections hold entries for net.netfilter."
                f"{sysctl} seconds; many short connections (or an application not closing "
                "its sockets, for CLOSE_WAIT) pile them up; a lower timeout frees them sooner",
                _advise_or(args, cmd("top", *args, "--state", state, "--by", "dst,dport")),
            )
        )
    return findings
