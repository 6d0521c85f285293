"""The guard end to end on the real kernel: the highest new-flow rate it keeps up with,
its CPU at idle and under that rate, and its RSS after a million distinct sources.

    sudo flock /tmp/ctguard-kernel.lock python -m benchmarks.bench_guard_live

Two network namespaces of its own (an attacker and a server that tracks,
joined by a veth pair); the guard runs as systemd runs it (a separate
process, ``--netns`` the server; for the rates also ``--listen`` on
127.0.0.1 for its metrics). Nothing leaves those namespaces; every flood is bounded in
packets and in seconds; the namespaces, the guard and its state go away on
every exit path.

- Idle: the guard's CPU (utime + stime of /proc/PID/stat, with the tools
  it ran) over a quiet stretch, and its RSS; without and with ``--listen``.
- Rates: for each rate, a fresh source floods the server with that many new
  UDP flows per second (each datagram its own flow, paced in 10 ms slots)
  until the source is in ctguard's set in the kernel or ``--seconds`` pass.
  Per rate: the rate the sender reached; from the flood's first packet to
  the decision in the guard's log, to the source in the kernel's set
  (``nft list set``, polled every 50 ms once decided) and to
  ``event=blocked`` (logged once the source's entries are deleted);
  the rate the guard saw (its decision's ``seen``), ENOBUFS on its event
  socket (``ctguard_guard_events_lost_total``), and its CPU meanwhile.
- A million sources: one datagram from each of 1,000,000 distinct
  addresses (a spoofed flood, every /24 under its rule) into a guard
  without ``--listen``, then its RSS and peak RSS.

- ``--namespaces N`` (instead of the above): a guard ``--all-netns
  --dry-run`` following N namespaces of its own (each with a table in use)
  and the host's, idle: its CPU and RSS (a container host's case).

The server's UDP timeout is lowered to 2 s inside its namespace (a
per-namespace sysctl), so a flood holds at most a few seconds of flows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctguard.lab.namespaces import Lab, LabNamespace, lab_preflight

SUBNET = 88
SLOT = 0.01  # seconds per paced burst
MAX_FLOWS = 2_000_000  # per flood, whatever the rate asked
POLICY = """
[detect]
new_flows_per_source = 1000
new_flows_per_net24 = 5000
sustain = 2
[ban]
duration = "10m"
max_per_minute = 60
"""
_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
PAYLOAD = b"ctguard-bench"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the guard and of the tools it ran and waited for (nft, conntrack)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(text.split("VmRSS:")[1].split()[0]) / 1024
    hwm = int(text.split("VmHWM:")[1].split()[0]) / 1024
    return rss, hwm


class Sender:
    """IPv4 UDP datagrams on a raw socket of ``namespace``, each a new flow, paced."""

    def __init__(self, namespace: LabNamespace, destination: str) -> None:
        with namespace.entered():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.destination = destination
        self.dst = socket.inet_aton(destination)
        self.flow = 0  # flows sent so far: source port and destination port from it

    def close(self) -> None:
        self.sock.close()

    def _packet(self, src: bytes) -> bytes:
        sport = 1024 + self.flow % 64000
        dport = 2000 + (self.flow // 64000) % 60000
        self.flow += 1
        length = 28 + len(PAYLOAD)
        return (
            _IP.pack(0x45, 0, length, 0, 0, 64, 17, 0, src, self.dst)
            + _UDP.pack(sport, dport, 8 + len(PAYLOAD), 0)
            + PAYLOAD
        )

    def flood(
        self,
        sources: Iterator[bytes],
        rate: float,
        seconds: float,
        stop: object = None,
        limit: int = MAX_FLOWS,
    ) -> tuple[int, float]:
        """Send at ``rate`` per second (0: as fast as it can) for at most ``seconds``
        and ``limit`` packets, until ``stop()`` is true; (sent, elapsed seconds)."""
        sendto, target = self.sock.sendto, (self.destination, 0)
        per_slot = max(1, int(rate * SLOT)) if rate else 256
        started = time.monotonic()
        sent, slot = 0, 0
        while sent < limit:
            now = time.monotonic()
            if now - started >= seconds:
                break
            for _ in range(min(per_slot, limit - sent)):
                try:
                    src = next(sources)
                except StopIteration:
                    return sent, time.monotonic() - started
                try:
                    sendto(self._packet(src), target)
                    sent += 1
                except OSError:
                    continue
            slot += 1
            if callable(stop) and stop():
                break
            if rate:
                delay = started + slot * SLOT - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        return sent, time.monotonic() - started


class GuardProcess:
    """`ctguard guard --netns SERVER --listen 127.0.0.1:0` with its own state and log."""

    def __init__(
        self,
        workdir: Path,
        server: LabNamespace | None,
        *,
        listen: bool = True,
        watching: int = 1,
    ) -> None:
        """``server`` None: ``--all-netns --dry-run`` (every namespace of the host is
        watched, none is changed), started once ``watching`` namespaces are followed."""
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "guard.toml"
        config.write_text(POLICY)
        self.log = workdir / "guard.log"
        env = {
            **os.environ,
            "CTGUARD_STATE_DIR": str(workdir / "state"),
            "CTGUARD_ETC_DIR": str(workdir / "etc"),
            "CTGUARD_ALLOWLIST": str(workdir / "allowlist"),
        }
        which = ["--netns", server.name] if server else ["--all-netns", "--dry-run"]
        argv = [sys.executable, "-m", "ctguard", "guard", *which]
        argv += ["--config", str(config), *(["--listen", "127.0.0.1:0"] if listen else [])]
        with open(self.log, "w") as stream:
            self.process = subprocess.Popen(argv, env=env, stderr=stream)
        self.offset = 0
        self.text = ""
        deadline = time.monotonic() + 30
        while self.read().count("event=watching") < watching:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the guard did not start: {self.read()[-2000:]}")
            time.sleep(0.1)
        found = re.search(r"guard metrics on (\S+)", self.text)
        self.url = found.group(1) if found else None

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self) -> str:
        """The log so far (read incrementally)."""
        with open(self.log) as handle:
            handle.seek(self.offset)
            more = handle.read()
        self.offset += len(more.encode())
        self.text += more
        return self.text

    def metric(self, series: str) -> float:
        assert self.url is not None
        body = urllib.request.urlopen(self.url, timeout=10).read().decode()
        for line in body.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class RateResult:
    asked: int
    reached: float
    decided_after: float | None  # the flood's first packet to the decision in the log
    blocked_after: float | None  # ... to the source in ctguard's set in the kernel
    logged_after: float | None  # ... to event=blocked (after the entries were deleted)
    seen: float | None
    lost: float
    cpu: float  # share of one core while flooding, the tools it ran included


def in_kernel_set(server: LabNamespace, source: str) -> bool:
    out = server.exec(["nft", "list", "set", "inet", "ctguard", "block4"], check=False)
    return source in out


@contextmanager
def topology() -> Iterator[tuple[Lab, LabNamespace, LabNamespace, str]]:
    with Lab() as lab:
        server = lab.add_namespace("bsrv")
        attacker = lab.add_namespace("batk")
        _atk, srv = lab.link(attacker, server, subnet=SUBNET)
        server.enable_conntrack()
        server.write_sysctl("net.netfilter.nf_conntrack_udp_timeout", "2")
        for scope in ("all", "default"):
            server.write_sysctl(f"net.ipv4.conf.{scope}.rp_filter", "0")
        for dev in server.exec(["ip", "-o", "link", "show"]).split("\n"):
            match = re.match(r"\d+: (cgb[^@:]+)", dev)
            if match:
                server.write_sysctl(f"net.ipv4.conf.{match.group(1)}.rp_filter", "0")
        # the attacker's kernel answers nothing: the flows stay one-way, as a flood's do
        yield lab, server, attacker, srv


def idle(guard: GuardProcess, seconds: float) -> tuple[float, float]:
    before = cpu_seconds(guard.pid)
    time.sleep(seconds)
    return (cpu_seconds(guard.pid) - before) / seconds, rss_mib(guard.pid)[0]


def one_rate(
    guard: GuardProcess,
    sender: Sender,
    server: LabNamespace,
    index: int,
    rate: int,
    seconds: float,
) -> RateResult:
    source = f"10.{SUBNET}.0.{10 + index}"
    packed = socket.inet_aton(source)
    lost_series = f'ctguard_guard_events_lost_total{{netns="{server.name}"}}'
    lost_before = guard.metric(lost_series)
    decision = re.compile(rf"source={re.escape(source)}/32 signal=\S+ seen=(\S+) .*action=block ")
    marker = f"event=blocked netns={server.name} source={source}/32"
    times: dict[str, float] = {}
    last_poll = [0.0]

    def blocked() -> bool:
        """Polled after every 10 ms slot: the log, then (once decided) the kernel's set."""
        now = time.monotonic()
        if "decided" not in times:
            if decision.search(guard.read()):
                times["decided"] = now
            return False
        if now - last_poll[0] < 0.05:
            return False
        last_poll[0] = now
        if in_kernel_set(server, source):
            times["blocked"] = now
            return True
        return False

    def forever() -> Iterator[bytes]:
        while True:
            yield packed

    guard.read()
    cpu_before = cpu_seconds(guard.pid)
    started = time.monotonic()
    sent, elapsed = sender.flood(forever(), rate, seconds, stop=blocked)
    cpu = (cpu_seconds(guard.pid) - cpu_before) / max(elapsed, 1e-3)
    deadline = time.monotonic() + 40
    while marker not in guard.read() and time.monotonic() < deadline:
        time.sleep(0.05)
    if marker in guard.text:
        times["logged"] = time.monotonic()
    found = decision.search(guard.text)
    lost = guard.metric(lost_series) - lost_before
    time.sleep(2.5)  # the table empties (2 s UDP timeout)

    def since(key: str) -> float | None:
        return round(times[key] - started, 3) if key in times else None

    return RateResult(
        rate,
        sent / max(elapsed, 1e-3),
        since("decided"),
        since("blocked"),
        since("logged"),
        float(found.group(1)) if found else None,
        lost,
        cpu,
    )


def million(guard: GuardProcess, sender: Sender, rate: int) -> dict[str, float]:
    def spoofed() -> Iterator[bytes]:
        for i in range(1_000_000):
            yield (0x0A800000 + i).to_bytes(4, "big")  # 10.128.0.0 - 10.143.66.63

    rss_before, _ = rss_mib(guard.pid)
    sent, elapsed = sender.flood(spoofed(), rate, 60.0, limit=1_000_000)
    time.sleep(2.5)  # two ticks: the last window is counted
    rss_after, hwm = rss_mib(guard.pid)
    log = guard.read()
    return {
        "sent": sent,
        "seconds": round(elapsed, 1),
        "rss_before_mib": round(rss_before, 1),
        "rss_after_mib": round(rss_after, 1),
        "peak_rss_mib": round(hwm, 1),
        "blocks": log.count("action=block "),
        "ticks_with_events_lost": log.count("event=events-lost"),
    }


def many_namespaces(count: int, seconds: float) -> dict[str, float]:
    """A dry-run guard following ``count`` namespaces of its own (each with a table
    in use) plus the host's: its CPU over ``seconds`` of quiet, and its RSS."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        for index in range(count):
            lab.add_namespace(f"m{index}").enable_conntrack()
        guard = GuardProcess(Path(tmp), None, listen=False, watching=count)
        try:
            time.sleep(2)  # the start-up table reads are done
            share, rss = idle(guard, seconds)
            followed = guard.read().count("event=watching")
        finally:
            guard.stop()
    return {
        "namespaces": followed,
        "cpu_share": round(share, 4),
        "rss_mib": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rates",
        default="2000,5000,10000,20000,40000,0",
        help="new flows per second, in order (0: as fast as the sender can)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="longest flood per rate")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle measured")
    parser.add_argument(
        "--million-rate", type=int, default=50000, help="pace of the million-source flood"
    )
    parser.add_argument("--no-million", action="store_true")
    parser.add_argument(
        "--namespaces",
        type=int,
        default=0,
        help="only this: a dry-run --all-netns guard idle over that many namespaces",
    )
    args = parser.parse_args()
    lab_preflight()
    if args.namespaces:
        result = many_namespaces(args.namespaces, args.idle)
        print(json.dumps(result, indent=1))
        return
    rates = [int(r) for r in args.rates.split(",")]
    results: dict[str, object] = {"kernel": os.uname().release, "cpus": os.cpu_count()}
    with topology() as (_lab, server, attacker, srv), tempfile.TemporaryDirectory() as tmp:
        sender = Sender(attacker, srv)
        try:
            # a plain guard (no --listen): idle, then a million distinct sources
            plain = GuardProcess(Path(tmp) / "plain", server, listen=False)
            try:
                time.sleep(2)  # the start-up table read is done
                share, rss = idle(plain, args.idle)
                results["idle"] = {"cpu_share": round(share, 4), "rss_mib": round(rss, 1)}
                print(f"idle: {share:.2%} of a core, RSS {rss:.1f} MiB", flush=True)
                if not args.no_million:
                    m = million(plain, sender, args.million_rate)
                    results["million"] = m
                    print(f"1,000,000 sources: {json.dumps(m)}", flush=True)
            finally:
                plain.stop()
            guard = GuardProcess(Path(tmp) / "listen", server)
            try:
                time.sleep(2)
                share, rss = idle(guard, args.idle)
                results["idle_listen"] = {"cpu_share": round(share, 4), "rss_mib": round(rss, 1)}
                print(f"idle with --listen: {share:.2%} of a core, RSS {rss:.1f} MiB", flush=True)
                runs = []
                for index, rate in enumerate(rates):
                    r = one_rate(guard, sender, server, index, rate, args.seconds)
                    runs.append(r.__dict__)
                    print(
                        f"asked {rate or 'max'}/s: reached {r.reached:,.0f}/s, decided "
                        f"{r.decided_after} s, in the kernel {r.blocked_after} s, logged "
                        f"{r.logged_after} s, guard saw {r.seen}/s, ENOBUFS {r.lost:.0f}, "
                        f"guard CPU {r.cpu:.1%}",
                        flush=True,
                    )
                results["rates"] = runs
                results["peak_rss_mib"] = round(rss_mib(guard.pid)[1], 1)
                results["events_lost_log_lines"] = guard.read().count("event=events-lost")
            finally:
                guard.stop()
        finally:
            sender.close()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
