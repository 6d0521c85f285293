"""The sizing folklore, corrected with this host's numbers (FACTS.md §1, §3, §7).

Each correction shows the classic claim, which kernel era it belongs to,
and what is true here.  Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ctguard.advise.sizing import mib
from ctguard.model.kernel_defaults import (
    GIB,
    HASH_BYTES_PER_BUCKET,
    default_sizing_modern,
    default_sizing_pre_5_15,
)


@dataclass(frozen=True)
class Correction:
    claim: str
    truth: str


def corrections(
    mem_total: int | None, bytes_per_entry: int, kernel: tuple[int, int] | None
) -> list[Correction]:
    result = []
    if mem_total:
        classic = mem_total // 16384 // 2
        modern = default_sizing_modern(mem_total)
        old = default_sizing_pre_5_15(mem_total)
        running = (
            f"this kernel's own default is max {modern.max:,} ({modern.era})"
            if kernel is None or kernel >= (5, 15)
            else f"this kernel's own default is max {old.max:,} ({old.era})"
        )
        result.append(
            Correction(
                "CONNTRACK_MAX = RAMSIZE / 16384 / (ARCH / 32)",
                f"here that gives {classic:,}. It is the pre-5.15 kernels' default below their "
                f"fixed caps, not a memory requirement and not a recommendation; {running}",
            )
        )
    result.append(
        Correction(
            "HASHSIZE = CONNTRACK_MAX / 8",
            "8:1 is the ip_conntrack era and what `hashsize=N` at module load gives "
            "(max = 8 x N); 3.17-5.14 default to 4:1 and Linux >= 5.15 to 1:1. At 8:1 an "
            "average lookup walks 16 entries at max; at 1:1, 2. The hash costs only "
            f"{HASH_BYTES_PER_BUCKET} B per bucket",
        )
    )
    at_65536 = 65536 * bytes_per_entry
    result.append(
        Correction(
            "65536 entries need about 1 GB of RAM",
            f"65536 entries take {mib(at_65536)} here ({bytes_per_entry} B each, measured from "
            f"slabinfo where readable) + {mib(65536 * HASH_BYTES_PER_BUCKET)} of hash: about "
            f"{GIB / max(at_65536, 1):.0f}x less. 65536 was simply the default max of every "
            "machine with more than 1 GiB on 2.6.15-3.16 kernels",
        )
    )
    result.append(
        Correction(
            "nf_conntrack_tcp_timeout_established = 180 keeps connections for 3 hours",
            "timeouts are SECONDS: 180 is 3 minutes, and idle SSH or database sessions through "
            "NAT break after it. 3 hours is 10800; the default 432000 is 5 days",
        )
    )
    result.append(
        Correction(
            "echo N > /proc/sys/net/netfilter/nf_conntrack_max (or a line in sysctl.conf) "
            "makes it permanent",
            "echo is lost at reboot, and at boot sysctl.conf may run before nf_conntrack is "
            "loaded (`unknown key`). Persistent settings need the module loaded first "
            "(modules-load.d) and the hash size as a module option (modprobe.d); "
            "`ctguard apply` writes all three files",
        )
    )
    return result
