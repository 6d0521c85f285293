"""Which timeouts to change, tied to what the table holds (FACTS.md §7, §9).

Pure.  A timeout decides how long an entry outlives its last packet, so
the entries it would remove are the ones idle longer than the new value:
at steady state an entry class shrinks in proportion to its timeout
(Little's law), and ESTABLISHED entries idle past the new value go at once.
Every recommendation names its saving and its cost; without evidence the
advice is "keep".
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.analyze.table_analysis import TableProfile
from ctguard.model.kernel_defaults import humanize_seconds
from ctguard.model.snapshot import Snapshot, TimeoutSetting

DAY = 86400
HOUR = 3600
# A state "piles up" above this share of a table of at least MIN_ENTRIES.
PILE_UP_SHARE = 0.10
MIN_ENTRIES = 1000
UDP_FLOOD_SHARE = 0.25
# Values the kernel accepts for every jiffies-based timeout sysctl (INT_MAX / HZ at HZ=1000).
MAX_TIMEOUT_SECONDS = 2_147_483
NO_TABLE = "table content not read: no evidence for a change"

# key -> (table state, reduced value under a pile-up)
CLOSING_STATES = {
    "tcp_timeout_time_wait": ("TIME_WAIT", 30),
    "tcp_timeout_close_wait": ("CLOSE_WAIT", 30),
    "tcp_timeout_fin_wait": ("FIN_WAIT", 30),
}
MODERN_DEFAULTS = {
    "tcp_timeout_time_wait": 120,
    "tcp_timeout_close_wait": 60,
    "tcp_timeout_fin_wait": 120,
    "udp_timeout_stream": 120,
}


@dataclass(frozen=True)
class KeepaliveFloor:
    """The longest a healthy keepalive connection stays silent (net.ipv4.tcp_keepalive_*)."""

    seconds: int
    basis: str


@dataclass(frozen=True)
class TimeoutAdvice:
    key: str
    sysctl: str
    current: int
    default: int | None
    recommended: int | None  # None: keep the current value
    reason: str
    effect: str = ""

    @property
    def change(self) -> bool:
        return self.recommended is not None and self.recommended != self.current

    @classmethod
    def of(
        cls, setting: TimeoutSetting, recommended: int | None, reason: str, effect: str = ""
    ) -> TimeoutAdvice:
        return cls(
            setting.key,
            setting.sysctl,
            setting.seconds,
            setting.default,
            recommended,
            reason,
            effect,
        )


def keepalive_floor(time_s: int | None, probes: int | None, interval: int | None) -> KeepaliveFloor:
    t, p, i = time_s or 7200, probes or 9, interval or 75
    measured = time_s is not None
    return KeepaliveFloor(
        t + p * i,
        f"tcp_keepalive_time {t} + {p} probes x {i} s"
        + ("" if measured else " (kernel defaults; host values not read)"),
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def advise_established(
    snapshot: Snapshot, profile: TableProfile | None, pressure: bool, floor: KeepaliveFloor
) -> TimeoutAdvice | None:
    setting = snapshot.timeout("tcp_timeout_established")
    if setting is None:
        return None
    current = setting.seconds

    def advice(recommended: int | None, reason: str, effect: str = "") -> TimeoutAdvice:
        return TimeoutAdvice.of(setting, recommended, reason, effect)

    if current < floor.seconds:
        safe = -(-floor.seconds // HOUR) * HOUR
        return advice(
            safe,
            f"{current} s is {humanize_seconds(current)} (seconds, not hours): shorter than a "
            f"keepalive connection may stay silent ({floor.seconds} s: {floor.basis})",
            f"costs: more entries live longer; saves: idle SSH/database sessions through NAT or "
            f"a stateful firewall stop breaking after {humanize_seconds(current)}",
        )
    cost = (
        "costs: a connection idle longer than 1 day with no keepalive loses its entry (through "
        "NAT it breaks; without NAT, nf_conntrack_tcp_loose=1 picks it up again)"
    )
    if current <= DAY:
        return advice(None, f"{humanize_seconds(current)} already bounds idle entries")
    if profile is not None:
        idle_day = profile.established_idle.get("idle > 1 day", 0)
        established = profile.by_state.get("ESTABLISHED", 0)
        if idle_day and (pressure or idle_day >= PILE_UP_SHARE * max(profile.entries, 1)):
            return advice(
                DAY,
                f"{idle_day:,} ESTABLISHED entries ({_share(idle_day, profile.entries)} of the "
                f"table) have been idle for over a day: most are orphans whose peers vanished",
                "saves: from now on orphans leave after 1 day instead of 5 (the kernel sets an "
                "entry's timer from the sysctl at each packet, so the orphans already here keep "
                f"their old timer); {cost}",
            )
        return advice(
            None,
            f"the table holds {established:,} ESTABLISHED entries, {idle_day:,} of them idle "
            "for over a day: lowering the timeout would save little",
        )
    if pressure:
        return advice(
            DAY,
            "the table is under pressure and the 5-day timeout keeps every orphaned "
            "connection for 5 days (table content not read: run `sudo ctguard analyze` to "
            "see how many)",
            cost,
        )
    return advice(None, "no pressure and no table evidence: keep")


def advise_closing(snapshot: Snapshot, profile: TableProfile | None) -> list[TimeoutAdvice]:
    result = []
    for key, (state, reduced) in CLOSING_STATES.items():
        setting = snapshot.timeout(key)
        if setting is None:
            continue
        current = setting.seconds
        held = profile.by_state.get(state, 0) if profile else 0
        entries = profile.entries if profile else 0
        recommended: int | None = None
        effect = ""
        modern = MODERN_DEFAULTS[key]
        if held >= MIN_ENTRIES and held >= PILE_UP_SHARE * entries and current > reduced:
            recommended = reduced
            reason = (
                f"{held:,} {state} entries ({_share(held, entries)} of the table) pile up "
                f"for {humanize_seconds(current)} each"
            )
            saved = int(held * (1 - reduced / current))
            effect = f"saves: about {saved:,} entries at the same connection rate"
            if state == "CLOSE_WAIT":
                effect += (
                    "; CLOSE_WAIT piling up usually means an application does not close its "
                    "sockets: the timeout only hides that"
                )
        elif current > modern:
            recommended = modern
            reason = f"longer than the kernel's own default ({modern} s) with no reason seen"
            effect = "saves: closing connections leave the table sooner"
        elif profile is None:
            reason = NO_TABLE
        else:
            reason = f"{held:,} {state} entries: no pile-up"
        result.append(TimeoutAdvice.of(setting, recommended, reason, effect))
    return result


def advise_udp(snapshot: Snapshot, profile: TableProfile | None) -> list[TimeoutAdvice]:
    result = []
    udp = snapshot.timeout("udp_timeout")
    if udp is not None:
        unreplied = profile.udp_unreplied if profile else 0
        entries = profile.entries if profile else 0
        if unreplied >= MIN_ENTRIES and unreplied >= UDP_FLOOD_SHARE * entries and udp.seconds > 10:
            saved = int(unreplied * (1 - 10 / udp.seconds))
            result.append(
                TimeoutAdvice.of(
                    udp,
                    10,
                    f"{unreplied:,} unreplied UDP entries ({_share(unreplied, entries)} of the "
                    "table): one-shot datagrams (DNS-style) wait out the full timeout",
                    f"saves: about {saved:,} entries; costs: a reply slower than 10 s is not "
                    "matched to its request. If one port dominates, NOTRACK for it is the "
                    "better fix",
                )
            )
        else:
            reason = "no flood of unreplied UDP seen" if profile else NO_TABLE
            result.append(TimeoutAdvice.of(udp, None, reason))
    stream = snapshot.timeout("udp_timeout_stream")
    if stream is not None:
        modern = MODERN_DEFAULTS["udp_timeout_stream"]
        if stream.seconds > modern:
            result.append(
                TimeoutAdvice.of(
                    stream,
                    modern,
                    f"{stream.seconds} s is the pre-5.x default; current kernels use {modern} s",
                    "saves: replied UDP flows (VPN, QUIC, games) leave sooner after they stop",
                )
            )
        else:
            result.append(TimeoutAdvice.of(stream, None, "the current kernel default"))
    return result


def advise_timeouts(
    snapshot: Snapshot, profile: TableProfile | None, pressure: bool, floor: KeepaliveFloor
) -> list[TimeoutAdvice]:
    result = []
    established = advise_established(snapshot, profile, pressure, floor)
    if established is not None:
        result.append(established)
    result.extend(advise_closing(snapshot, profile))
    result.extend(advise_udp(snapshot, profile))
    return result
