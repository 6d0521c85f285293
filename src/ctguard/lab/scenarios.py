"""The five failures the lab reproduces, each with ctguard's own remedy.

Every scenario drives the gateway of a :mod:`ctguard.lab.topology`, measures
before and after the remedy (:meth:`Run.measure`) and states the behaviour it
expects from the kernel as :class:`Check` values; the run reports what was
measured, never what was expected.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ctguard.kernel.ctnetlink import Flow
from ctguard.lab.fill import fill_table
from ctguard.lab.measure import PROBE_PORT, entries_from, table_lines, timers_from
from ctguard.lab.scenario import Check, Extra, PhaseResult, Run, check
from ctguard.lab.traffic import TcpServer, open_until_refused, udp_flood, wait_until

FLOOD_PORTS = 64000
ORPHAN_TIMEOUT = 4  # the lab's shortened established timeout, in seconds
SERVICE_PORT = 443

Body = Callable[[Run], tuple[PhaseResult, PhaseResult, list[Check]]]


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    title: str
    summary: str
    remedies: tuple[str, ...]  # the first is the default
    fills_table: bool  # scale = table size (else: number of connections)
    default_scale: int | None  # None: the host's current nf_conntrack_max
    max_scale: int | None
    clients: tuple[str, ...]
    body: Body

    def to_dict(self) -> dict[str, object]:
        """What `ctguard lab list --json` prints for this scenario."""
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "remedies": list(self.remedies),
            "default_remedy": self.remedies[0],
            "scale_is": "table size" if self.fills_table else "connections",
            "default_scale": self.default_scale,
            "max_scale": self.max_scale,
            "clients": list(self.clients),
        }

    def needs_global(self, remedy: str) -> bool:
        """Whether the remedy itself changes a global value (nf_conntrack_max)."""
        return remedy in ("max", "sizing")


def flows_from(source: str, server: str, count: int, **kind: object) -> Iterator[Flow]:
    """``count`` distinct flows source -> server (ports 10000+ so probes never clash)."""
    for index in range(count):
        sport = 1024 + index % FLOOD_PORTS
        yield Flow(source, server, sport, 10000 + index // FLOOD_PORTS, **kind)  # type: ignore[arg-type]


def _attack_again(run: Run) -> Extra:
    """The attacker keeps trying: a few real connections to the server."""
    topology = run.topology
    sockets, _ = open_until_refused(
        topology.client("attacker").namespace, topology.server_address, PROBE_PORT, 5
    )
    for sock in sockets:
        sock.close()
    return {"attacker connections accepted": len(sockets)}


def _fill_from_attacker(run: Run, **kind: object) -> Callable[[], Extra]:
    def load() -> Extra:
        run.progress(f"filling the gateway's table with {run.table_max:,} entries (ctnetlink)")
        attacker = run.topology.client("attacker").address
        flows = flows_from(attacker, run.topology.server_address, run.table_max, **kind)
        created, failures = fill_table(run.gateway, flows)
        extra: Extra = {"entries created": created}
        if failures:
            extra["entries refused"] = sum(failures.values())
        return extra

    return load


def _attacker_entries(run: Run) -> Callable[[], Extra]:
    address = run.topology.client("attacker").address
    return lambda: {"attacker entries": entries_from(run.gateway, address)}


def _remedy_block_or_max(run: Run, reason: str) -> None:
    if run.remedy == "block":
        attacker = run.topology.client("attacker").address
        run.ctguard("block", attacker, "--netns", run.gateway.name, "--reason", reason, "--yes")
    else:
        run.ctguard("apply", "--max", str(2 * run.table_max), "--runtime-only", "--yes")


def _probes(name: str, phase: PhaseResult, *, succeed: bool) -> Check:
    passed = phase.probes_ok == phase.probes if succeed else phase.probes_ok < phase.probes
    return check(name, passed, f"{phase.probes_ok}/{phase.probes} probes connected")


def _counter(name: str, phase: PhaseResult, counter: str, *, climbs: bool) -> Check:
    value = int(getattr(phase, counter))
    return check(name, value > 0 if climbs else value == 0, f"{counter} +{value:,}")


def _log_check(phase: PhaseResult) -> list[Check]:
    if phase.log_lines is None:
        return []
    return [check("'table full' logged", phase.log_lines > 0, f"{phase.log_lines} line(s)")]


def assured_flood(run: Run) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    fill = _fill_from_attacker(run, assured=True, tcp_state="ESTABLISHED", timeout=3600)
    before = run.measure(fill, _attacker_entries(run))
    _remedy_block_or_max(run, "lab: assured connection flood")
    after = run.measure(lambda: _attack_again(run), _attacker_entries(run))
    checks = [
        _counter("full of ASSURED entries: new connections dropped", before, "drop", climbs=True),
        _probes("the innocent client could not connect", before, succeed=False),
        *_log_check(before),
        _counter("no drops after the remedy", after, "drop", climbs=False),
        _probes("the innocent client connects again", after, succeed=True),
    ]
    if run.remedy == "block":
        checks.append(
            check(
                "the attacker's entries are gone and it cannot connect",
                after.extra["attacker entries"] == 0
                and after.extra["attacker connections accepted"] == 0,
                f"{after.extra['attacker entries']} entries, "
                f"{after.extra['attacker connections accepted']} connections accepted",
            )
        )
    else:
        checks.append(
            check("the max was raised", after.max >= 2 * run.table_max, f"max {after.max:,}")
        )
    return before, after, checks


def syn_flood(run: Run) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    fill = _fill_from_attacker(run, assured=False, tcp_state="SYN_SENT", timeout=120)
    run.probe_attempts = 5
    before = run.measure(fill, _attacker_entries(run))
    _remedy_block_or_max(run, "lab: SYN flood")
    after = run.measure(lambda: _attack_again(run), _attacker_entries(run))
    checks = [
        _counter("at max, unassured entries are evicted", before, "early_drop", climbs=True),
        _counter("nothing dropped", before, "drop", climbs=False),
        _probes("the innocent client connects despite the full table", before, succeed=True),
        _counter("no evictions after the remedy", after, "early_drop", climbs=False),
        _probes("the innocent client still connects", after, succeed=True),
    ]
    return before, after, checks


def udp_flood_53(run: Run) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    topology, gateway = run.topology, run.gateway
    attacker = topology.client("attacker")
    datagrams = run.table_max + run.table_max // 4
    sources = [f"10.1.0.{2 + n}" for n in range(datagrams // FLOOD_PORTS + 1)]
    for address in sources[1:]:
        attacker.namespace.exec(["ip", "addr", "add", f"{address}/24", "dev", attacker.device])
    # The server counts what reaches it (and drops it: nobody answers, as in a flood).
    topology.server.nft(
        "table inet ctg_lab_dns {\n"
        "  chain in { type filter hook input priority 0; udp dport 53 counter drop; }\n"
        "}\n"
    )

    def flood() -> Extra:
        run.progress(f"sending {datagrams:,} UDP datagrams to port 53 through the gateway")
        already = _delivered_53(run)
        sent = udp_flood(attacker.namespace, sources, topology.server_address, 53, datagrams)
        wait_until(lambda: _delivered_53(run) - already >= sent * 0.9, timeout=3)
        return {"datagrams sent": sent, "delivered to the server": _delivered_53(run) - already}

    def extra() -> Extra:
        port53 = sum(1 for line in table_lines(gateway) if " dport=53 " in line)
        return {"udp/53 entries": port53}

    before = run.measure(flood, extra)
    if run.remedy == "block":
        reason = "lab: UDP flood"
        run.ctguard("block", *sources, "--netns", gateway.name, "--reason", reason, "--yes")
    else:
        run.ctguard("notrack", "--port", "53", "--proto", "udp", "--netns", gateway.name, "--yes")
        # NOTRACK spares new packets; the entries already made stay until
        # udp_timeout (30 s) unless deleted.
        gateway.exec(["conntrack", "-D", "-p", "udp", "--orig-port-dst", "53"], check=False)
        run.notes.append(
            "entries made before NOTRACK were deleted with "
            "`conntrack -D -p udp --orig-port-dst 53` (else they leave after udp_timeout)"
        )
    after = run.measure(flood, extra)
    delivered_after = int(after.extra["delivered to the server"])
    checks = [
        check(
            "the flood fills the table",
            before.count >= run.table_max * 9 // 10,
            f"{before.count:,} of {run.table_max:,}",
        ),
        _counter("unreplied UDP is evicted at max", before, "early_drop", climbs=True),
        check(
            "no udp/53 entries after the remedy",
            after.extra["udp/53 entries"] == 0,
            f"{after.extra['udp/53 entries']} entries",
        ),
        _counter("no evictions after the remedy", after, "early_drop", climbs=False),
        _probes("the innocent client connects", after, succeed=True),
    ]
    if run.remedy == "notrack":
        checks.append(
            check(
                "untracked datagrams still reach the server",
                delivered_after >= int(after.extra["datagrams sent"]) * 9 // 10,
                f"{delivered_after:,} delivered",
            )
        )
    return before, after, checks


def _delivered_53(run: Run) -> int:
    out = run.topology.server.exec(["nft", "list", "chain", "inet", "ctg_lab_dns", "in"])
    words = out.split()
    return int(words[words.index("packets") + 1]) if "packets" in words else 0


def orphans(run: Run) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    topology = run.topology
    server = TcpServer(topology.server, topology.server_address, SERVICE_PORT).start()
    try:
        return _orphans(run, server)
    finally:
        server.stop()


VANISHED = {"attacker": "connections orphaned first", "late": "connections orphaned later"}


def _vanish(run: Run, name: str, count: int) -> Extra:
    """``count`` connections from client ``name``, then the client vanishes."""
    client = run.topology.client(name)
    run.progress(f"{count:,} connections from {name}, then its link is cut")
    sockets, _ = open_until_refused(
        client.namespace, run.topology.server_address, SERVICE_PORT, count
    )
    wait_until(lambda: entries_from(run.gateway, client.address) >= len(sockets), timeout=5)
    run.topology.cut(name)  # no FIN, no RST will ever pass the gateway
    for sock in sockets:
        sock.close()
    return {VANISHED[name]: len(sockets)}


def _orphans(run: Run, server: TcpServer) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    gateway = run.gateway
    early, late = (run.topology.client(name).address for name in ("attacker", "late"))

    def timers() -> Extra:
        old = timers_from(gateway, early)
        new = timers_from(gateway, late)
        extra: Extra = {"orphans from before the change": len(old)}
        if old:
            extra["their shortest timer (s)"] = min(old)
        extra["orphans from after the change"] = len(new)
        return extra

    before = run.measure(lambda: _vanish(run, "attacker", run.scale), timers)
    run.ctguard(
        "apply",
        "--netns",
        gateway.name,
        "--timeout",
        f"tcp_timeout_established={ORPHAN_TIMEOUT}",
        "--yes",
    )

    def late_orphans() -> Extra:
        extra = _vanish(run, "late", run.scale)
        created = time.monotonic()
        gone = wait_until(
            lambda: entries_from(gateway, late) == 0, timeout=ORPHAN_TIMEOUT + 15, step=0.5
        )
        extra["later orphans gone after (s)"] = round(time.monotonic() - created) if gone else -1
        return extra

    after = run.measure(late_orphans, timers)
    run.notes.append(
        f"the lab shortens the established timeout to {ORPHAN_TIMEOUT} s to finish quickly; "
        "on a real host use `ctguard advise` (it keeps keepalive-driven flows alive)"
    )
    run.notes.append(
        "entries orphaned before the change keep the timer they had (a timeout applies "
        "at an entry's next packet, and orphans get none): they leave when that runs "
        "out or when deleted, e.g. `conntrack -D -s ADDRESS` for a vanished client"
    )
    connections = int(before.extra.get(VANISHED["attacker"], 0))
    checks = [
        check(
            "orphans stay with a 5-day timer",
            before.extra["orphans from before the change"] == connections > 0
            and int(before.extra.get("their shortest timer (s)", 0)) > 86400,
            f"{before.extra['orphans from before the change']} orphans, shortest timer "
            f"{before.extra.get('their shortest timer (s)', '-')} s",
        ),
        check(
            "orphans made after the change expire",
            after.extra["orphans from after the change"] == 0
            and int(after.extra[VANISHED["late"]]) > 0,
            f"{after.extra[VANISHED['late']]} orphaned, gone after "
            f"{after.extra['later orphans gone after (s)']} s",
        ),
        check(
            "older orphans keep their old timer (no packet re-times them)",
            after.extra["orphans from before the change"] == connections,
            f"{after.extra['orphans from before the change']} still there",
        ),
    ]
    return before, after, checks


def nat_gateway(run: Run) -> tuple[PhaseResult, PhaseResult, list[Check]]:
    topology = run.topology
    topology.masquerade_towards_server()
    server = TcpServer(topology.server, topology.server_address, SERVICE_PORT).start()
    held: list[socket.socket] = []
    try:

        def clients_connect(count: int) -> Callable[[], Extra]:
            def load() -> Extra:
                run.progress(f"clients open up to {count:,} connections through the NAT")
                sockets, failures = open_until_refused(
                    topology.client("late").namespace, topology.server_address, SERVICE_PORT, count
                )
                held.extend(sockets)
                return {"client connections opened": len(sockets), "failed": failures}

            return load

        before = run.measure(clients_connect(run.table_max + run.table_max // 8))
        advice = run.ctguard("advise", "--json", "--no-table")
        recommended = int(json.loads(advice.stdout)["sizing"]["recommended_max"])
        run.ctguard("apply", "--max", str(recommended), "--runtime-only", "--yes")
        after = run.measure(clients_connect(run.table_max // 4))
    finally:
        for sock in held:
            sock.close()
        server.stop()
    run.notes.append(f"`ctguard advise` recommended nf_conntrack_max = {recommended:,}")
    checks = [
        _counter("the NAT table fills without an attacker", before, "drop", climbs=True),
        _probes("the innocent client could not connect", before, succeed=False),
        *_log_check(before),
        check(
            "advise sized above the peak",
            recommended > before.count,
            f"recommended {recommended:,} for a peak of {before.count:,}",
        ),
        _counter("no drops after sizing", after, "drop", climbs=False),
        check(
            "every client connection succeeds",
            after.extra["failed"] == 0,
            f"{after.extra['client connections opened']} opened, {after.extra['failed']} failed",
        ),
        _probes("the innocent client connects", after, succeed=True),
    ]
    return before, after, checks


SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec(
            "assured-flood",
            "Connection flood with ASSURED entries",
            "a table full of established connections drops every new one; block the source",
            ("block", "max"),
            True,
            None,
            None,
            ("attacker", "innocent"),
            assured_flood,
        ),
        ScenarioSpec(
            "syn-flood",
            "SYN flood (unassured entries)",
            "a table full of half-open entries evicts them (early_drop) and loses nothing",
            ("block",),
            True,
            None,
            None,
            ("attacker", "innocent"),
            syn_flood,
        ),
        ScenarioSpec(
            "udp-flood",
            "UDP flood to port 53 through the gateway",
            "the DNS case: unreplied UDP fills the table; exempt port 53 from tracking",
            ("notrack", "block"),
            True,
            None,
            None,
            ("attacker", "innocent"),
            udp_flood_53,
        ),
        ScenarioSpec(
            "orphans",
            "Orphaned ESTABLISHED entries",
            "peers vanish without FIN/RST; entries stay 5 days; lower the established timeout",
            ("timeout",),
            False,
            500,
            8000,
            ("attacker", "innocent", "late"),
            orphans,
        ),
        ScenarioSpec(
            "nat-gateway",
            "NAT gateway under many clients",
            "masqueraded clients fill the table without any attacker; size it with advise",
            ("sizing",),
            True,
            2048,
            6000,
            ("late", "innocent"),
            nat_gateway,
        ),
    )
}
