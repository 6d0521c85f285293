"""The topics of `ctguard explain`, as data.

Every statement here was checked against the kernel's sources
(nf_conntrack_core.c, nf_conntrack_proto_tcp.c, nf_conntrack_proto_udp.c,
across versions) and the kernel facts the rest of ctguard relies on.  The
host's value comes from a :class:`~ctguard.model.snapshot.Snapshot` read by
the usual kernel readers; this module only says where in the snapshot to
look (:func:`host_value`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ctguard.model.kernel_defaults import TIMEOUT_DEFAULTS, humanize_seconds
from ctguard.model.snapshot import Snapshot

CT_STATE = "conntrack state"
TCP_STATE = "TCP state"
FLAG = "entry flag"
SYSCTL = "sysctl"
TIMEOUT = "timeout"
COUNTER = "per-CPU counter"
KINDS = (CT_STATE, TCP_STATE, FLAG, SYSCTL, TIMEOUT, COUNTER)


@dataclass(frozen=True)
class Source:
    """Where a topic's value is in a snapshot: ``what`` is "count", "max",
    "buckets", "setting", "timeout" or "counter"; ``key`` names it."""

    what: str
    key: str = ""


@dataclass(frozen=True)
class Topic:
    name: str
    kind: str
    summary: str
    text: str
    sysctl: str | None = None  # dotted name, for sysctls and timeouts
    value: Source | None = None
    see_also: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    also_kind: str | None = None  # listed under this kind too


@dataclass(frozen=True)
class HostValue:
    """This host's value of a topic (what ``ctguard explain`` prints after the text)."""

    label: str
    value: int | str | None
    shown: str  # for people: "432000 s (5d)", "12,345", "not read"
    default: int | str | None = None


def _sysctl(name: str) -> str:
    return f"net.netfilter.nf_conntrack_{name}"


_STATES = [
    Topic(
        "NEW",
        CT_STATE,
        "a packet of a connection that has not yet seen a reply",
        "The packet starts a new connection, or belongs to one whose entry has seen "
        "packets in the original direction only (retransmitted SYNs, a UDP query "
        "still unanswered). Its entry shows [UNREPLIED] in the table. Matched by "
        "`ct state new` (nft) or `--ctstate NEW` (iptables). A NEW packet that "
        "needs an entry while the table is full is dropped before any rule sees "
        "it: that is 'table full, dropping packet'.",
        see_also=("UNREPLIED", "ESTABLISHED", "drop"),
    ),
    Topic(
        "ESTABLISHED",
        CT_STATE,
        "conntrack state: the entry has seen packets both ways; TCP state: handshake done",
        "Two meanings with one name. As a conntrack state (`ct state established`, "
        "`--ctstate ESTABLISHED`): the packet belongs to an entry that has seen "
        "traffic in both directions, for any protocol (a UDP query once answered "
        "is ESTABLISHED). As a TCP state (the word after the timeout in "
        "/proc/net/nf_conntrack): the final ACK of the handshake was seen. A TCP "
        "entry in ESTABLISHED lives for nf_conntrack_tcp_timeout_established "
        "seconds after its last packet (default 432000 = 5 days), so a peer that "
        "vanished without FIN or RST leaves it for days; ASSURED ESTABLISHED "
        "entries are never evicted when the table is full.",
        sysctl=_sysctl("tcp_timeout_established"),
        value=Source("timeout", "tcp_timeout_established"),
        see_also=("ASSURED", "nf_conntrack_tcp_timeout_established"),
        also_kind=TCP_STATE,
    ),
    Topic(
        "RELATED",
        CT_STATE,
        "a new connection expected by another one (helper expectations, ICMP errors)",
        "The packet starts a connection that an existing one announced: an "
        "expectation created by a helper (FTP data, SIP media, TFTP, ...), or an "
        "ICMP/ICMPv6 error about a tracked connection. Helpers are not attached "
        "by themselves on current kernels (automatic assignment, the "
        "nf_conntrack_helper sysctl, was off by default from 4.7 and removed in "
        "6.0): a `ct helper` rule or `-j CT --helper` assigns them. Expectations "
        "count against nf_conntrack_expect_max ('expectation table full').",
        value=Source("counter", "expect_new"),
        see_also=("nf_conntrack_expect_max", "expect_new", "nf_conntrack_helper"),
    ),
    Topic(
        "INVALID",
        CT_STATE,
        "a packet conntrack could not fit to any connection; also the counter of them",
        "The packet could not be tracked: its headers could not be parsed, it is "
        "not a valid part of any connection (a TCP segment out of window, an ACK "
        "for a handshake never seen with nf_conntrack_tcp_loose=0, bad flags), "
        "its checksum is wrong (with nf_conntrack_checksum=1), or the protocol "
        "tracker rejected it. It gets no entry and matches `ct state invalid` / "
        "`--ctstate INVALID`; a rule usually drops it. The per-CPU counter "
        "`invalid` counts these packets. nf_conntrack_log_invalid makes the "
        "kernel log why.",
        value=Source("counter", "invalid"),
        see_also=("nf_conntrack_log_invalid", "nf_conntrack_tcp_be_liberal"),
    ),
    Topic(
        "UNTRACKED",
        CT_STATE,
        "a packet exempted from tracking by a NOTRACK rule: it never takes an entry",
        "A rule in a chain that runs before conntrack (iptables `-t raw ... -j "
        "NOTRACK` or `-j CT --notrack`; nft `notrack` in a chain of priority "
        "raw, -300: elsewhere it silently does nothing) marks the packet "
        "untracked. It takes no entry, so it cannot fill the table, and matches "
        "`ct state untracked` / `--ctstate UNTRACKED`; it cannot be NATed. Exempt "
        "both directions of the traffic. `ctguard notrack` writes such rules.",
        see_also=("NEW",),
    ),
]


def _tcp(name: str, summary: str, text: str) -> Topic:
    key = f"tcp_timeout_{name.lower()}"
    return Topic(
        name,
        TCP_STATE,
        summary,
        text + f" An entry in {name} expires nf_conntrack_{key} seconds after its last packet "
        f"(default {TIMEOUT_DEFAULTS[key].current}).",
        sysctl=_sysctl(key),
        value=Source("timeout", key),
        see_also=(f"nf_conntrack_{key}",),
    )


_TCP_STATES = [
    _tcp(
        "SYN_SENT",
        "a SYN was seen, no SYN-ACK yet",
        "The client's SYN passed; the server has not answered. The entry shows "
        "[UNREPLIED]. Many from one source or towards one port, unanswered, is "
        "the signature of a SYN flood or scan against a closed port or a dead "
        "server (CT502).",
    ),
    _tcp(
        "SYN_RECV",
        "the server's SYN-ACK was seen, the client's final ACK not yet",
        "The server answered the SYN; the handshake waits for the client's ACK. "
        "Since the reply was seen, a SYN_RECV entry is never [UNREPLIED], and it "
        "is not ASSURED yet, so it can be evicted. Thousands of them from one "
        "source or towards one port are a SYN flood against a server that "
        "answers (spoofed sources never send the final ACK).",
    ),
    Topic(
        "SYN_SENT2",
        TCP_STATE,
        "both ends sent a SYN (simultaneous open)",
        "A SYN was seen from the reply direction too, as in a TCP simultaneous "
        "open; rare. It uses the SYN_SENT timeout.",
        sysctl=_sysctl("tcp_timeout_syn_sent"),
        value=Source("timeout", "tcp_timeout_syn_sent"),
    ),
    _tcp(
        "FIN_WAIT",
        "one side sent a FIN",
        "One end started closing (its FIN was seen). The GC worker may evict "
        "entries in this state from a namespace whose table is 95 % full.",
    ),
    _tcp(
        "CLOSE_WAIT",
        "a FIN was acknowledged; the other side has not closed yet",
        "The FIN was answered by an ACK, and the other end has not sent its own "
        "FIN. An application that never closes its sockets keeps its peers' "
        "entries here (CT506 when they are many).",
    ),
    _tcp(
        "LAST_ACK",
        "FINs were seen both ways; the last ACK is awaited",
        "Both ends sent a FIN; the ACK of the second one has not been seen.",
    ),
    _tcp(
        "TIME_WAIT",
        "the connection closed normally; the entry lingers",
        "The last ACK after both FINs was seen. The entry stays to absorb late "
        "segments. Many short connections (HTTP without keep-alive, health "
        "checks) fill the table with TIME_WAIT entries; they are evictable from "
        "a namespace that is 95 % full (CT506).",
    ),
    _tcp(
        "CLOSE",
        "the connection was reset (RST seen)",
        "A RST was seen; the entry is kept briefly so that the RST's "
        "retransmissions still match it.",
    ),
]

_FLAGS = [
    Topic(
        "ASSURED",
        FLAG,
        "the entry carried enough traffic both ways to be kept when the table is full",
        "Shown as [ASSURED] in the table. TCP: set on the final ACK of the "
        "handshake. UDP (6.x): only after a reply AND more traffic over 2 s after "
        "the first packet, so a one-shot DNS query is never ASSURED. ICMP: never. "
        "When the table is at max, a new flow evicts non-ASSURED entries "
        "(early_drop); ASSURED ESTABLISHED TCP entries are never evicted. So "
        "'table full, dropping packet' means the table is full of ASSURED "
        "entries.",
        see_also=("early_drop", "UNREPLIED"),
    ),
    Topic(
        "UNREPLIED",
        FLAG,
        "the entry has seen packets in the original direction only",
        "Shown as [UNREPLIED] in the table: no packet came back yet. A packet of "
        "such an entry is NEW. Unanswered UDP (floods, a dead resolver) and "
        "unanswered SYNs (SYN_SENT) show it; a SYN_RECV entry never does, since "
        "the SYN-ACK is the reply. Unreplied entries are not ASSURED and are the "
        "first to be evicted (early_drop).",
        see_also=("NEW", "SYN_SENT", "early_drop"),
    ),
]

_SYSCTLS = [
    Topic(
        "nf_conntrack_max",
        SYSCTL,
        "the most entries a network namespace's table may hold (one global value)",
        "Global: every network namespace is checked against it (a per-namespace "
        "max is not in 6.18), and it is read-only outside the initial namespace. "
        "Its default comes from RAM at module load: on 5.15+, max = buckets "
        "(262144 above 4 GiB on 64-bit); before, 4 x buckets. Raising it needs "
        "memory (about 384-512 bytes of unswappable kernel memory per entry), and "
        "the hash (nf_conntrack_buckets) should grow with it. Above it, a new "
        "flow first evicts unassured entries (early_drop), else it is dropped "
        "(drop) and 'table full' is logged.",
        sysctl=_sysctl("max"),
        value=Source("max"),
        see_also=("nf_conntrack_buckets", "nf_conntrack_count", "drop"),
    ),
    Topic(
        "nf_conntrack_count",
        SYSCTL,
        "how many entries this network namespace's table holds now",
        "Per network namespace: the host's count leaves out every container's "
        "entries (`ctguard status --all-netns` reads them all). Read-only.",
        sysctl=_sysctl("count"),
        value=Source("count"),
        see_also=("nf_conntrack_max",),
    ),
    Topic(
        "nf_conntrack_buckets",
        SYSCTL,
        "the size of the hash table the entries are chained in (global)",
        "Each entry is hashed twice (both directions), so the average chain is "
        "2 x count / buckets. Writable at runtime in the initial namespace only "
        "(or as the module's hashsize parameter); resizing the hash does NOT "
        "change nf_conntrack_max. 8 bytes per bucket.",
        sysctl=_sysctl("buckets"),
        value=Source("buckets"),
        see_also=("nf_conntrack_max", "chaintoolong"),
        aliases=("hashsize",),
    ),
    Topic(
        "nf_conntrack_expect_max",
        SYSCTL,
        "the most expectations (helpers' announced connections) at once",
        "Helpers (FTP, SIP, ...) announce the connections they expect; above "
        "this many the kernel logs 'nf_conntrack: expectation table full' and "
        "the related connection is not expected. Read-only outside the initial "
        "namespace.",
        sysctl=_sysctl("expect_max"),
        value=Source("setting", "expect_max"),
        see_also=("RELATED", "expect_create"),
    ),
    Topic(
        "nf_conntrack_acct",
        SYSCTL,
        "keep packet and byte counters on every entry",
        "With 1, entries carry packets= and bytes= per direction (a little more "
        "memory per entry). Per network namespace.",
        sysctl=_sysctl("acct"),
        value=Source("setting", "acct"),
    ),
    Topic(
        "nf_conntrack_timestamp",
        SYSCTL,
        "record when each entry was created",
        "With 1, entries carry their start time (delta-time= in the table). Per network namespace.",
        sysctl=_sysctl("timestamp"),
        value=Source("setting", "timestamp"),
    ),
    Topic(
        "nf_conntrack_events",
        SYSCTL,
        "send netlink events for entries (conntrack -E, conntrackd)",
        "0 off, 1 on; 2 (the default on recent kernels) sends them only for "
        "entries created after a listener subscribed. Overruns show as ENOBUFS "
        "to the listener.",
        sysctl=_sysctl("events"),
        value=Source("setting", "events"),
    ),
    Topic(
        "nf_conntrack_helper",
        SYSCTL,
        "automatic helper assignment by port (old kernels)",
        "With 1, helpers attached themselves to connections by well-known port. "
        "Off by default from 4.7, removed in 6.0: assign helpers with explicit "
        "rules instead.",
        sysctl=_sysctl("helper"),
        value=Source("setting", "helper"),
        see_also=("RELATED",),
    ),
    Topic(
        "nf_conntrack_checksum",
        SYSCTL,
        "verify the checksum of packets before tracking them",
        "With 1 (the default), a packet with a bad layer-4 checksum is INVALID.",
        sysctl=_sysctl("checksum"),
        value=Source("setting", "checksum"),
        see_also=("INVALID",),
    ),
    Topic(
        "nf_conntrack_log_invalid",
        SYSCTL,
        "log why packets of a protocol were INVALID",
        "0 logs nothing; a protocol number (6 TCP, 17 UDP, 1 ICMP, ...) logs that "
        "protocol's invalid packets; 255 logs all. The lines go through the "
        "kernel's log rate limit.",
        sysctl=_sysctl("log_invalid"),
        value=Source("setting", "log_invalid"),
        see_also=("INVALID",),
    ),
    Topic(
        "nf_conntrack_tcp_loose",
        SYSCTL,
        "pick up TCP connections already established (mid-stream)",
        "With 1 (the default), a TCP packet of a connection conntrack never saw "
        "open creates an entry (after a reboot or failover); with 0 such packets "
        "are INVALID.",
        sysctl=_sysctl("tcp_loose"),
        value=Source("setting", "tcp_loose"),
        see_also=("INVALID",),
    ),
    Topic(
        "nf_conntrack_tcp_be_liberal",
        SYSCTL,
        "mark only out-of-window RST segments INVALID",
        "With 1, TCP window tracking stops marking out-of-window segments "
        "INVALID (only RSTs still are); a workaround for middleboxes that "
        "mangle sequence numbers. Default 0.",
        sysctl=_sysctl("tcp_be_liberal"),
        value=Source("setting", "tcp_be_liberal"),
        see_also=("INVALID",),
    ),
    Topic(
        "nf_conntrack_tcp_max_retrans",
        SYSCTL,
        "retransmissions without an ACK before the shorter retrans timeout applies",
        "After this many retransmitted packets with no acceptable ACK from the "
        "other side (default 3), the entry's timeout drops to "
        "nf_conntrack_tcp_timeout_max_retrans.",
        sysctl=_sysctl("tcp_max_retrans"),
        value=Source("setting", "tcp_max_retrans"),
        see_also=("nf_conntrack_tcp_timeout_max_retrans",),
    ),
]

_NEIGH_SHARED = (
    " Set as net.ipv4.neigh.default.{key} (ARP) and net.ipv6.neigh.default.{key} (NDISC);"
    " the table and this threshold are the kernel's, shared by every network namespace, and"
    " can be set in the initial namespace only. A NAT gateway or router for many clients"
    " fills this table alongside conntrack's; `ctguard advise` sizes gc_thresh1/2/3 together"
    " from the entries the table holds (or held when it overflowed), and `ctguard apply` sets"
    " them, reversibly."
)


def _neigh(key: str, summary: str, text: str) -> Topic:
    return Topic(
        key,
        SYSCTL,
        summary,
        text + _NEIGH_SHARED.format(key=key),
        sysctl=f"net.ipv4.neigh.default.{key}",
        value=Source("neighbour", key),
        see_also=tuple(k for k in ("gc_thresh1", "gc_thresh2", "gc_thresh3") if k != key),
    )


_NEIGHBOUR = [
    _neigh(
        "gc_thresh1",
        "neighbour entries the garbage collector always leaves alone (default 128)",
        "Below this many entries in the neighbour table, the periodic garbage collector "
        "removes nothing.",
    ),
    _neigh(
        "gc_thresh2",
        "the neighbour table's soft limit (default 512)",
        "Above this many entries, adding one runs a forced garbage collection when the "
        "last one was more than 5 seconds ago.",
    ),
    _neigh(
        "gc_thresh3",
        "the neighbour table's hard limit (default 1024)",
        "At this many entries, adding one runs a forced garbage collection; when it frees "
        "nothing the new neighbour is refused, the kernel logs 'arp_cache: neighbor table "
        "overflow!' (older: 'Neighbour table overflow.'), the table_fulls counter of "
        "/proc/net/stat/arp_cache grows, and packets to that host are lost.",
    ),
]

_TIMEOUT_NOTES = {
    "tcp_timeout_established": "The famous 5 days: an ESTABLISHED entry whose peer vanished "
    "without FIN or RST stays that long (6.x shortens it to 300 s after out-of-window RST/FIN "
    "seen both ways). Lowering it to hours frees orphans; a long-lived idle connection "
    "(SSH, database pools) then loses its entry unless it sends keep-alives more often.",
    "tcp_timeout_max_retrans": "Applies once nf_conntrack_tcp_max_retrans retransmissions went "
    "unacknowledged.",
    "tcp_timeout_unacknowledged": "Applies while data sent is not acknowledged (a peer gone "
    "silent mid-transfer).",
    "udp_timeout": "It applies to UDP entries that are not (yet) a stream: unreplied ones, and "
    "replied ones in their first 2 s, such as one-shot DNS queries.",
    "udp_timeout_stream": "It applies to UDP entries that saw a reply and were still active "
    "2 s after their first packet (they become ASSURED).",
    "generic_timeout": "For protocols conntrack has no tracker for.",
}


_TIMEOUT_WHAT = {
    "tcp_timeout_max_retrans": "TCP entries whose packets were retransmitted too often",
    "tcp_timeout_unacknowledged": "TCP entries with data still unacknowledged",
    "udp_timeout_stream": "UDP streams",
    "gre_timeout_stream": "GRE streams (replied)",
    "gre_timeout": "unreplied GRE entries",
    "generic_timeout": "entries of protocols conntrack has no tracker for",
}


def _timeout_topic(key: str) -> Topic:
    default = TIMEOUT_DEFAULTS[key]
    proto, _, rest = key.partition("_timeout")
    state = rest.lstrip("_").upper() or None
    what = _TIMEOUT_WHAT.get(key) or (
        f"{proto.upper()} entries in state {state}" if state else f"{proto.upper()} entries"
    )
    older = f" (older kernels: {', '.join(str(v) for v in default.older)})" if default.older else ""
    note = _TIMEOUT_NOTES.get(key, "")
    return Topic(
        f"nf_conntrack_{key}",
        TIMEOUT,
        f"seconds {what} live after their last packet",
        f"How long, in SECONDS, {what} stay after their last packet; default "
        f"{default.current} ({humanize_seconds(default.current)}){older}. Per network "
        "namespace and writable in each. Shorter timeouts empty the table faster; too "
        "short ones remove the entries of quiet but live connections, whose next packet is "
        f"then NEW or INVALID. {note}".rstrip(),
        sysctl=_sysctl(key),
        value=Source("timeout", key),
        see_also=(state,) if state and state in _TCP_NAMES else _TIMEOUT_SEE.get(key, ()),
    )


_TCP_NAMES = {
    topic.name for topic in (*_STATES, *_TCP_STATES) if TCP_STATE in (topic.kind, topic.also_kind)
}
_TIMEOUT_SEE = {
    "udp_timeout": ("UNREPLIED",),
    "udp_timeout_stream": ("ASSURED",),
    "tcp_timeout_max_retrans": ("nf_conntrack_tcp_max_retrans",),
}
_TIMEOUTS = [_timeout_topic(key) for key in TIMEOUT_DEFAULTS]


def _counter(name: str, summary: str, text: str, *aliases: str, see: tuple[str, ...] = ()) -> Topic:
    return Topic(
        name,
        COUNTER,
        summary,
        text + " Summed over CPUs from /proc/net/stat/nf_conntrack (or ctnetlink); "
        "32-bit per CPU and per network namespace, since boot or since the namespace was made.",
        value=Source("counter", name),
        see_also=see,
        aliases=aliases,
    )


_COUNTERS = [
    _counter(
        "drop",
        "packets dropped because no entry could be made for them",
        "Counted when conntrack cannot create an entry for a new flow: the table "
        "is at nf_conntrack_max and nothing was evictable, or memory ran out "
        "('table full, dropping packet' is logged, rate-limited); also when a "
        "protocol tracker asks for the packet to be dropped. The packet is "
        "dropped before any filter rule sees it. This is the exact figure: the "
        "log undercounts (10 lines per 5 s).",
        see=("nf_conntrack_max", "early_drop"),
    ),
    _counter(
        "early_drop",
        "entries evicted to make room for a new flow when the table was full",
        "When a new flow finds the table at nf_conntrack_max, the kernel scans 8 "
        "buckets and deletes the non-ASSURED entries of the first bucket that has "
        "any; the new packet then passes. early_drop without drop: the table is "
        "at max but coping, thanks to unassured churn.",
        see=("ASSURED", "drop"),
    ),
    _counter(
        "insert_failed",
        "new entries that could not be inserted into the table",
        "At the end of a new flow's first packet the entry is inserted; this "
        "fails when another CPU inserted the same tuple meanwhile and the clash "
        "could not be resolved (the classic parallel DNS queries over UDP "
        "through DNAT), or when the hash chain is too long (chaintoolong). The "
        "packet is dropped. Without 'table full' lines this is not exhaustion.",
        see=("clash_resolve", "chaintoolong"),
    ),
    _counter(
        "clash_resolve",
        "insert clashes resolved without dropping (5.10+)",
        "Two packets of one new flow raced on two CPUs; the kernel let the "
        "second one use the first one's entry (UDP mostly) instead of dropping "
        "it. Named `clashres` in /proc/net/stat/nf_conntrack (5.10+), where the "
        "column `searched` used to be.",
        "clashres",
        see=("insert_failed",),
    ),
    _counter(
        "search_restart",
        "hash lookups restarted because an entry moved during the walk",
        "A lookup that ended on another chain's end marker (the entry it walked "
        "was moved or freed meanwhile, or the hash was resized) starts over. "
        "Harmless in small numbers; steady growth with a resize or heavy churn.",
    ),
    _counter(
        "chaintoolong",
        "entries refused because their hash chain was too long (5.15+)",
        "An insertion is refused when the entry's hash chain already holds "
        "more than a limit (between 50 and 80 entries on current kernels, chosen "
        "at random per boot; 8 to 32 in the first 5.15 version), and the packet "
        "is dropped: too few buckets for the count, or a hash-flooding attack. "
        "Named `chainlength` in /proc/net/stat/nf_conntrack, where "
        "`delete_list` used to be.",
        "chainlength",
        see=("nf_conntrack_buckets", "insert_failed"),
    ),
    _counter(
        "found",
        "lookups that found an existing entry",
        "A volume figure of successful hash lookups; never a problem by itself.",
    ),
    _counter(
        "searched",
        "entries walked past in hash lookups (before 5.10)",
        "Before 5.10, the number of entries compared on the way to a match: with "
        "found, it gave the average chain walked. Replaced by clash_resolve in "
        "5.10.",
    ),
    _counter(
        "insert",
        "entries inserted into the table",
        "A volume figure of new entries. Zero on kernels that no longer count it.",
    ),
    _counter(
        "icmp_error",
        "ICMP and ICMPv6 packets rejected by the ICMP tracker",
        "Malformed ICMP/ICMPv6 packets, bad checksums, or ICMP errors that refer "
        "to no tracked connection. `conntrack -S` shows it as `error`.",
        "error",
        see=("INVALID",),
    ),
    _counter(
        "expect_new",
        "new connections that matched an expectation (became RELATED)",
        "Connections announced by a helper's expectation that then arrived.",
        see=("RELATED",),
    ),
    _counter(
        "expect_create",
        "expectations created by helpers",
        "Each FTP data channel, SIP media stream, ... a helper announced.",
        see=("nf_conntrack_expect_max", "RELATED"),
    ),
    _counter(
        "expect_delete",
        "expectations deleted",
        "Expectations removed: fulfilled, timed out or flushed with their master.",
        see=("RELATED",),
    ),
]

TOPICS: tuple[Topic, ...] = (
    *_STATES,
    *_TCP_STATES,
    *_FLAGS,
    *_SYSCTLS,
    *_NEIGHBOUR,
    *_TIMEOUTS,
    *_COUNTERS,
)
_PREFIXES = (
    "net.netfilter.",
    "net.ipv4.netfilter.",
    "net.ipv4.neigh.default.",
    "net.ipv6.neigh.default.",
    "nf_conntrack_",
    "ip_conntrack_",
)


def normalize(name: str) -> str:
    """How a topic name is looked up: case-, bracket-, dash- and prefix-blind."""
    key = name.strip().strip("[]").lower().replace("-", "_")
    for prefix in _PREFIXES:
        key = key.removeprefix(prefix)
    return key


def _index() -> dict[str, Topic]:
    index: dict[str, Topic] = {}
    for topic in TOPICS:
        for key in (topic.name, *topic.aliases):
            index.setdefault(normalize(key), topic)
    return index


INDEX = _index()


def find_topic(name: str) -> Topic | None:
    return INDEX.get(normalize(name))


def near_matches(name: str, limit: int = 5) -> list[str]:
    """Topic names close to ``name`` (spelling, or containing it), best first."""
    key = normalize(name)
    close = difflib.get_close_matches(key, list(INDEX), n=limit, cutoff=0.6)
    containing = [k for k in INDEX if key and (key in k or k in key) and k not in close]
    names: list[str] = []
    for match in [*close, *sorted(containing, key=len)]:
        topic_name = INDEX[match].name
        if topic_name not in names:
            names.append(topic_name)
    return names[:limit]


def host_value(topic: Topic, snapshot: Snapshot) -> HostValue | None:
    """This host's value of ``topic`` in ``snapshot``; None when it has none."""
    source = topic.value
    if source is None:
        return None
    if source.what in ("count", "max", "buckets"):
        number = getattr(snapshot, source.what)
        return HostValue(source.what, number, f"{number:,}" if number is not None else "not read")
    if source.what == "setting":
        text = snapshot.settings.get(source.key)
        return HostValue(source.key, text, text if text is not None else "not present")
    if source.what == "timeout":
        setting = snapshot.timeout(source.key)
        if setting is None:
            return HostValue(source.key, None, "not present", TIMEOUT_DEFAULTS[source.key].current)
        shown = f"{setting.seconds} s ({humanize_seconds(setting.seconds)})"
        if setting.default is not None and setting.seconds != setting.default:
            shown += f", default {setting.default} s"
        return HostValue(source.key, setting.seconds, shown, setting.default)
    if source.what == "neighbour":
        values = {t.family: getattr(t, source.key) for t in snapshot.neighbours}
        if not values:
            return HostValue(source.key, None, "not visible here (initial namespace only)")
        shown = ", ".join(
            f"{family} {value:,}" if value is not None else f"{family} not read"
            for family, value in values.items()
        )
        return HostValue(source.key, values.get("ipv4"), shown)
    counters = snapshot.counters
    if counters is None:
        return HostValue(source.key, None, "counters not read")
    number = counters.get(source.key)
    return HostValue(
        source.key, number, f"{number:,}" if number is not None else "not counted by this kernel"
    )
