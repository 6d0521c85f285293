"""Conntrack table dumps: /proc/net/nf_conntrack, /proc/net/ip_conntrack,
``conntrack -L`` (plain, ``-o extended``, ``-o id``) and ``conntrack -E`` lines
(``-o timestamp`` too).

All of them share one field order (FACTS.md §5), so one grammar reads every
format; only optional parts differ:

    [[sec.usec]] [event] [l3name l3num] l4name l4num [timeout] [STATE]
    src= dst= [ports|icmp|gre keys] [zone-orig=] [packets= bytes=] [[UNREPLIED]]
    src= dst= [ports|icmp|gre keys] [zone-reply=] [packets= bytes=]
    [[ASSURED]|[OFFLOAD]|[HW_OFFLOAD]] [mark=] [secctx=|secmark=] [zone=]
    [delta-time=] [use=] [id=] ...

Two readers live here:

- ``parse_entry_line`` reads one line strictly into an :class:`Entry`
  (used for small inputs, for tests, and to classify lines the fast path
  rejected);
- ``build_scan_pattern`` compiles a pattern that captures only the columns a
  query needs, for ``findall`` over multi-megabyte chunks (the fast path:
  no Python object per entry beyond the captured bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The summary conntrack prints on stderr; pasted with 2>&1 it lands first,
# last, or spliced into the middle of a stdout line (stdout is flushed in
# 4 KiB blocks).  Its own newline is part of the match so a spliced line
# joins up again when it is removed.
SUMMARY_RE = re.compile(
    rb"conntrack v[0-9][0-9.]* \(conntrack-tools\): (\d+) flow (?:entries|events) "
    rb"ha(?:ve|s) been shown\.\n?"
)
SUMMARY_MARK = b"(conntrack-tools)"

_ADDR = rb"[0-9a-fA-F.:]+"
# a protocol state: upper case, digits after the first letter (TCP's
# simultaneous open is SYN_SENT2)
_STATE = rb"[A-Z][A-Z0-9_]*"
# where TCP, SCTP and DCCP print their state, procfs prints GRE's two
# timeouts (in seconds, with a comma; `conntrack -L` leaves them out)
_GRE_TIMEOUTS = rb"timeout=\d+, stream_timeout=\d+"
_TOKEN = rb"[^ \n]+"
_PORTS = rb"sport=(\d+) dport=(\d+)"

# ``conntrack -E -o timestamp`` starts each event with "[sec.usec]" and a tab
# (spaces once a terminal copy has expanded it).
_EVENT_TIME = rb"(?:\[\d+\.\d+\][ \t]+)?"

# One strict line (no leading newline).  Group names are Entry fields.
ENTRY_RE = re.compile(
    rb"[ \t]*" + _EVENT_TIME + rb"(?:\[(?P<event>NEW|UPDATE|DESTROY)\] +)?"
    rb"(?:(?P<l3>ipv4|ipv6) +(?:2|10) +)?"
    rb"(?P<proto>[a-z][a-z0-9-]*) +(?P<protonum>\d+) +"
    rb"(?:(?P<timeout>\d+) +)?(?:(?P<state>" + _STATE + rb") +|" + _GRE_TIMEOUTS + rb" +)?"
    rb"src=(?P<src>" + _ADDR + rb") dst=(?P<dst>" + _ADDR + rb") "
    rb"(?:sport=(?P<sport>\d+) dport=(?P<dport>\d+) "
    rb"|type=(?P<icmp_type>\d+) code=(?P<icmp_code>\d+) id=(?P<icmp_id>\d+) "
    rb"|srckey=(?P<srckey>0x[0-9a-f]+) dstkey=(?P<dstkey>0x[0-9a-f]+) )?"
    rb"(?:zone-orig=(?P<zone_orig>\d+) )?"
    rb"(?:packets=(?P<packets>\d+) bytes=(?P<bytes>\d+) )?"
    rb"(?P<unreplied>\[UNREPLIED\] )?"
    rb"src=(?P<reply_src>" + _ADDR + rb") dst=(?P<reply_dst>" + _ADDR + rb")"
    rb"(?: sport=(?P<reply_sport>\d+) dport=(?P<reply_dport>\d+)"
    rb"| type=\d+ code=\d+ id=\d+| srckey=0x[0-9a-f]+ dstkey=0x[0-9a-f]+)?"
    rb"(?: zone-reply=(?P<zone_reply>\d+))?"
    rb"(?: packets=(?P<reply_packets>\d+) bytes=(?P<reply_bytes>\d+))?"
    rb"(?: \[(?P<status>ASSURED|OFFLOAD|HW_OFFLOAD)\])?"
    rb"(?: mark=(?P<mark>\d+))?"
    rb"(?: secctx=(?P<secctx>" + _TOKEN + rb")| secmark=(?P<secmark>\d+))?"
    rb"(?: zone=(?P<zone>\d+))?"
    rb"(?: delta-time=(?P<delta_time>\d+))?"
    rb"(?: use=(?P<use>\d+))?"
    rb"(?: id=(?P<id>\d+))?"
    # anything newer kernels or tools append: key=value or [WORD] tokens
    rb"(?: [a-z][a-z_-]*=[^ \n]+| \[[A-Za-z_=:0-9 ]+\])*"
    rb" *\r?"
)

PROMPT_RE = re.compile(rb"^\S*[@:]\S*[#$%>](?: |$)|^[#$] |^\(?[A-Za-z0-9_-]+\)? ?[#$] ")


@dataclass(frozen=True, slots=True)
class Entry:
    """One conntrack entry (or one event line) as printed."""

    proto: str
    protonum: int
    src: str
    dst: str
    reply_src: str
    reply_dst: str
    family: str  # "ipv4" | "ipv6"
    timeout: int | None = None  # None: offloaded entries and DESTROY events
    state: str | None = None
    sport: int | None = None
    dport: int | None = None
    reply_sport: int | None = None
    reply_dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    unreplied: bool = False
    status: str | None = None  # ASSURED | OFFLOAD | HW_OFFLOAD
    packets: int | None = None
    bytes: int | None = None
    reply_packets: int | None = None
    reply_bytes: int | None = None
    mark: int | None = None
    zone: int | None = None
    zone_orig: int | None = None
    zone_reply: int | None = None
    secctx: str | None = None
    delta_time: int | None = None
    use: int | None = None
    id: int | None = None
    event: str | None = None

    @property
    def assured(self) -> bool:
        return self.status == "ASSURED"

    @property
    def nat(self) -> bool:
        """The reply is not the mirror of the original: NAT rewrote an address."""
        return self.reply_src != self.dst or self.reply_dst != self.src


_INT_FIELDS = [
    *("timeout", "sport", "dport", "reply_sport", "reply_dport"),
    *("icmp_type", "icmp_code", "icmp_id", "packets", "bytes", "reply_packets", "reply_bytes"),
    *("mark", "zone", "zone_orig", "zone_reply", "delta_time", "use", "id"),
]
_STR_FIELDS = ["state", "status", "secctx", "event"]


def parse_entry_line(line: bytes | str) -> Entry | None:
    """The entry on ``line``, or None when the line is not a complete entry."""
    raw = line.encode() if isinstance(line, str) else line
    match = ENTRY_RE.fullmatch(raw.rstrip(b"\n"))
    if match is None:
        return None
    groups = match.groupdict()
    fields: dict[str, object] = {}
    for name in _INT_FIELDS:
        value = groups[name]
        if value is not None:
            fields[name] = int(value)
    for name in _STR_FIELDS:
        value = groups[name]
        if value is not None:
            fields[name] = value.decode()
    if groups["secmark"] is not None:
        fields["secctx"] = groups["secmark"].decode()
    src = groups["src"].decode()
    return Entry(
        proto=groups["proto"].decode(),
        protonum=int(groups["protonum"]),
        src=src,
        dst=groups["dst"].decode(),
        reply_src=groups["reply_src"].decode(),
        reply_dst=groups["reply_dst"].decode(),
        family="ipv6" if ":" in src else "ipv4",
        unreplied=groups["unreplied"] is not None,
        **fields,  # type: ignore[arg-type]
    )


def classify_rejected_line(line: bytes) -> str:
    """Why a non-blank line is not an entry: for the skip report."""
    if SUMMARY_MARK in line:
        return "conntrack summary"
    if line.lstrip().startswith((b"<?xml", b"<conntrack", b"<flow", b"</conntrack")):
        return "conntrack -o xml output (not read: save it with -o extended)"
    if PROMPT_RE.match(line):
        return "shell prompt or command"
    if b"src=" not in line:
        return "not a conntrack entry"
    if line.count(b"src=") < 2 or line.count(b"dst=") < 2:
        return "truncated entry (no reply tuple)"
    return "malformed entry"


# --- the fast path ---------------------------------------------------------

# Columns a scan can capture, in line order.  "nat" is a flag: b"s" when the
# reply tuple is not the mirror of the original one (NAT), else b"".
COLUMNS = (
    "proto",
    "timeout",
    "state",
    "src",
    "dst",
    "sport",
    "dport",
    "unreplied",
    "reply_src",
    "reply_dst",
    "nat",
    "status",
    "mark",
    "zone",
)


# Addresses in the fast path: the strict grammar's characters, so a captured
# value is always one the strict grammar accepts (never a control character
# that would reach a terminal); after the reply's destination, where the
# pattern may stop, the address must end there.
_FAST_ADDR = rb"[0-9a-fA-F.:]++"
_ADDR_END = rb"(?![^ \r\n])"
# what may come before the protocol: indentation, an event's time and type,
# the family (always there in /proc/net/nf_conntrack, which has nothing else)
_LINE_START = rb"[ \t]*+(?:\[\d++\.\d++\][ \t]++)?(?:\[[A-Z]++\] ++)?(?:ipv[46] ++\d++ ++)?"
_PROCFS_START = rb"ipv[46] ++\d++ ++"


def _cap(name: str, fragment: bytes, wanted: set[str]) -> bytes:
    if name in wanted:
        return b"(" + fragment + b")"
    return b"(?:" + fragment + b")"


def build_scan_pattern(columns: Sequence[str], *, every_line: bool = False) -> re.Pattern[bytes]:
    """A pattern matching ``\\n`` + one entry, capturing ``columns`` in order.

    The pattern stops after the last field it needs, so cheap queries do not
    pay for the rest of the line; :func:`line_shape` (each line whole, from
    its family to its ``use=``) or :func:`tuple_marks` (both tuples present)
    checks the rest for the whole chunk at once.  Repeats are
    possessive (``\\d++``): no field can give characters back to the next, so
    keeping the engine from saving backtrack points changes no match and
    saves ~10% of a scan.

    With ``every_line``, every ``\\n`` matches: a line that is not an entry
    gives a row of empty captures (see :func:`rows_account_for_every_line`).
    """
    return _compile_scan(columns, _LINE_START, every_line)


def build_procfs_scan_pattern(
    columns: Sequence[str], *, every_line: bool = False
) -> re.Pattern[bytes]:
    """:func:`build_scan_pattern` for lines in /proc/net/nf_conntrack's form
    only (the family first), ~8% faster: none of the other forms' optional
    starts to try on each line.  A line it matches, the general pattern
    matches with the same captures (the general one tries the family first
    too), so it stands in for that one while the lines have this form."""
    return _compile_scan(columns, _PROCFS_START, every_line)


def rows_account_for_every_line(columns: Sequence[str]) -> bool:
    """Whether an ``every_line`` scan of ``columns`` tells its bad lines by
    their rows: an entry always captures something in one of them (a
    protocol, an address), so an all-empty row is a line that is not one.

    Then ``findall`` gives one row per ``\\n`` (no field of the pattern
    matches a newline), which counts the lines and finds the bad ones in the
    same pass; counting the newlines again cost ~10% of a ``top`` scan.
    """
    return bool(_NEVER_EMPTY.intersection(columns))


# captured from every entry, never empty
_NEVER_EMPTY = frozenset({"proto", "src", "dst", "reply_src", "reply_dst"})


def _compile_scan(columns: Sequence[str], line_start: bytes, every_line: bool) -> re.Pattern[bytes]:
    body = _scan_body(columns, line_start)
    pattern = re.compile(rb"\n(?:" + body + rb"|)" if every_line else rb"\n" + body)
    _check_groups(pattern, columns)
    return pattern


def _check_groups(pattern: re.Pattern[bytes], columns: Sequence[str]) -> None:
    if pattern.groups != len(columns):  # pragma: no cover - a fragment of _scan_body is wrong
        raise AssertionError(f"scan pattern has {pattern.groups} groups for {len(columns)} columns")


def build_reject_pattern(columns: Sequence[str]) -> re.Pattern[bytes]:
    """A pattern matching ``\\n`` + a whole line where the scan pattern of
    ``columns`` does not match (blank lines too): one more pass over a chunk
    finds its few bad lines, and the scan's own rows stand for the rest."""
    return re.compile(rb"\n(?!" + _scan_body(columns) + rb")[^\n]*+")


def _scan_body(columns: Sequence[str], line_start: bytes = _LINE_START) -> bytes:
    """The scan pattern after its leading newline (see build_scan_pattern)."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown scan columns: {sorted(unknown)}")
    if list(columns) != [c for c in COLUMNS if c in columns]:
        raise ValueError("scan columns must be given in line order")
    if "nat" in columns and ("reply_src" in columns or "reply_dst" in columns):
        raise ValueError("nat and reply_src/reply_dst cannot be captured together")
    if "nat" in columns and not {"src", "dst"} <= set(columns):
        raise ValueError("nat compares the reply tuple with src and dst: capture them too")
    wanted = set(columns)
    last = COLUMNS.index(columns[-1]) if columns else 0
    named = "nat" in wanted  # the reply check refers back to src and dst
    src_frag = rb"(?P<s>" + _FAST_ADDR + rb")" if named else _cap("src", _FAST_ADDR, wanted)
    dst_frag = rb"(?P<d>" + _FAST_ADDR + rb")" if named else _cap("dst", _FAST_ADDR, wanted)
    parts = [line_start]
    parts += [
        _cap("proto", rb"[a-z][a-z0-9-]*+", wanted),
        rb" ++\d++ ++(?:",
        _cap("timeout", rb"\d++", wanted),
        rb" ++)?(?:",
        _cap("state", _STATE + b"+", wanted),
        rb" ++|timeout=\d++, stream_timeout=\d++ ++)?src=",  # see _GRE_TIMEOUTS
        src_frag,
        rb" dst=",
        dst_frag,
    ]
    if last > COLUMNS.index("dst"):
        parts += [
            rb" (?:sport=",
            _cap("sport", rb"\d++", wanted),
            rb" dport=",
            _cap("dport", rb"\d++", wanted),
            rb" |type=\d++ code=\d++ id=\d++ |srckey=0x[0-9a-f]++ dstkey=0x[0-9a-f]++ )?",
            rb"(?:zone-orig=\d++ )?(?:packets=\d++ bytes=\d++ )?",
        ]
    if last > COLUMNS.index("dport"):
        parts.append(_cap("unreplied", rb"\[UNREPLIED\] ", wanted) + b"?")
        if "nat" not in wanted:
            parts.append(rb"src=")
    if last > COLUMNS.index("unreplied"):
        if named:
            # NAT: the "s" of a reply "src=" that is not the mirror of the original
            parts.append(
                rb"(?:src=(?P=d) dst=(?P=s)|(s)rc="
                + _FAST_ADDR
                + rb" dst="
                + _FAST_ADDR
                + rb")"
                + _ADDR_END
            )
        else:
            parts += [
                _cap("reply_src", _FAST_ADDR, wanted),
                rb" dst=",
                _cap("reply_dst", _FAST_ADDR, wanted) + _ADDR_END,
            ]
    if last >= COLUMNS.index("status"):
        parts += [
            rb"(?: sport=\d++ dport=\d++| type=\d++ code=\d++ id=\d++"
            rb"| srckey=0x[0-9a-f]++ dstkey=0x[0-9a-f]++)?"
            rb"(?: zone-reply=\d++)?(?: packets=\d++ bytes=\d++)?(?: \[",
            _cap("status", rb"ASSURED|OFFLOAD|HW_OFFLOAD", wanted),
            rb"\])?",
        ]
    if last >= COLUMNS.index("mark"):
        parts += [rb"(?: mark=", _cap("mark", rb"\d++", wanted), rb")?"]
    if last >= COLUMNS.index("zone"):
        parts += [rb"(?: secctx=[^ \n]++| secmark=\d++)?(?: zone=", _cap("zone", rb"\d++", wanted)]
        parts.append(rb")?")
    return b"".join(parts)


# The line-shape check of a chunk in /proc/net/nf_conntrack's form (see
# line_shape): a line starts with its family, "ipv4" or "ipv6" (one "v"), and
# ends with "use=N" (one "u").  No other field holds either letter (states
# and flags are upper case, addresses hex digits), but these protocols'
# names and GRE's "timeout=.., stream_timeout=..": (extra "u", extra "v").
SHAPE_EXTRA: dict[bytes, tuple[int, int]] = {
    b"udp": (1, 0),
    b"udplite": (1, 0),
    b"unknown": (1, 0),
    b"gre": (2, 0),
    b"icmpv6": (0, 1),
}
_NOT_SHAPE_LETTER = bytes(c for c in range(256) if c not in b"uv")


def line_shape(data: bytes | bytearray, end: int) -> tuple[int, int]:
    """The ``u`` and ``v`` in ``data[:end]``, for :func:`expected_shape`.

    One C pass that keeps only those letters (~40 ms per 110 MB, copy
    included) costs half of counting ``dst=`` (:func:`tuple_marks`).
    """
    chunk = data if end == len(data) and isinstance(data, bytes) else bytes(memoryview(data)[:end])
    letters = chunk.translate(None, _NOT_SHAPE_LETTER)
    return letters.count(b"u"), letters.count(b"v")


def expected_shape(protocols: Mapping[bytes, int]) -> tuple[int, int]:
    """:func:`line_shape` of whole procfs lines, from how many there are of
    each protocol: a line cut short lacks its ``use=``, two lines run
    together (with or without the first cut short) hold two families."""
    u = v = sum(protocols.values())
    for name, count in protocols.items():
        extra = SHAPE_EXTRA.get(name)
        if extra is not None:
            u += count * extra[0]
            v += count * extra[1]
    return u, v


def tuple_marks(data: bytes | bytearray, start: int = 0, end: int | None = None) -> int:
    """The ``dst=`` in ``data[start:end]``: an entry has two, one per tuple.

    Two per line of a chunk is, with every line matched by the scan pattern
    (a valid start through the original tuple), the whole-chunk check that
    each line is an entry with both tuples (a line cut short has one).  A
    C-speed pass instead of a look at each line.

    A sum can balance: a line cut after its original tuple (one ``dst=``)
    and a line with three (two run together) pass together where each alone
    fails.  A pattern that runs through the reply tuple (analyze's) matches
    no line with fewer than two, so only patterns that stop at the original
    tuple are exposed; reading each line's reply tuple there would cost ~25%
    of such a scan (see docs/performance.md).
    """
    return data.count(b" dst=", start, len(data) if end is None else end)


def line_is_entry(
    pattern: re.Pattern[bytes], line: bytes, protocol_group: int | None = None
) -> bool:
    """What the whole-chunk checks check, for one line (without its ``\\n``):
    the scan pattern matches it, and it holds two :func:`tuple_marks`, or,
    where the scan also checks letters (``protocol_group``: the group that
    captures the protocol), the :func:`line_shape` of a whole line of its
    protocol.

    Chunks that fail the whole-chunk checks are read line by line with this
    same rule, so whether a line counts never depends on the lines around it
    (a line damaged past the fields a query reads counts for that query, with
    or without garbage in its chunk, and whichever check its chunk passed).
    """
    match = pattern.match(b"\n" + line)
    if match is None:
        return False
    if tuple_marks(line) == 2:
        return True
    if protocol_group is None:
        return False
    return line_shape(line, len(line)) == expected_shape({match.group(protocol_group): 1})
