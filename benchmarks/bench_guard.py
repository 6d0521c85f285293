"""The guard's counting path without the kernel: events parsed and counted per second,
and the memory a window holds after a million distinct sources.

    python -m benchmarks.bench_guard

Messages are built exactly as ctnetlink sends a new entry (CTA_TUPLE_ORIG
first), so this times the parsing fast path and the bounded sketches; the
kernel's own delivery cost comes on top (docs/guard.md).
"""

from __future__ import annotations

import socket
import struct
import time

from ctguard.guard.detect import Window
from ctguard.kernel.ctevents import MSG_CT_NEW, iter_messages, source_of
from ctguard.kernel.ctnetlink import Flow, encode_new_entry, nfgenmsg


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        text = handle.read()
    return int(text.split("VmRSS:")[1].split()[0]) / 1024


def parse_rate(messages: int = 2000, rounds: int = 250) -> float:
    chunks = []
    for i in range(messages):
        src = f"10.{i % 200}.{i % 250}.{i % 251}"
        body = nfgenmsg(socket.AF_INET) + encode_new_entry(Flow(src, "10.0.0.2", 1000 + i, 80))
        chunks.append(struct.pack("=IHHII", 16 + len(body), MSG_CT_NEW, 0, 0, 0) + body)
    data = b"".join(chunks)
    window = Window(4096)
    started = time.perf_counter()
    for _ in range(rounds):
        for _type, _seq, body in iter_messages(data):
            source = source_of(body)
            if source is not None:
                window.add(source)
    return messages * rounds / (time.perf_counter() - started)


def million_sources() -> tuple[float, int, float]:
    before = rss_mib()
    window = Window(4096)
    started = time.perf_counter()
    for i in range(0x0A000000, 0x0A000000 + 1_000_000):
        window.add(i.to_bytes(4, "big"))
    rate = 1_000_000 / (time.perf_counter() - started)
    keys = len(window.sources) + len(window.net24) + len(window.net64)
    return rate, keys, rss_mib() - before


def main() -> None:
    print(f"parse + count: {parse_rate():,.0f} new-entry events/s (one core)")
    rate, keys, grown = million_sources()
    print(f"1,000,000 distinct sources: {rate:,.0f} events/s, {keys} keys kept")
    print(f"RSS grew by {grown:.1f} MiB")


if __name__ == "__main__":
    main()
