"""The table profile: totals stay exact when the per-source tallies are pruned."""

from __future__ import annotations

import dataclasses
import io

from benchmarks.dumpgen import generate_entries, render_entry

from ctguard.analyze.table_analysis import ANALYZE_SPEC, SYN_STATES, T_PORT_CLASS, build_profile
from ctguard.kernel.table_source import iter_chunks
from ctguard.parse.table_scan import scan_chunks


def test_unreplied_totals_are_exact_under_pruning() -> None:
    entries = list(generate_entries(3000, 21, v6_share=0.3))
    text = "".join(render_entry(e, "procfs") + "\n" for e in entries)
    spec = dataclasses.replace(ANALYZE_SPEC, key_cap=300)  # fewer keys than sources
    scan = scan_chunks(spec, iter_chunks(io.BytesIO(text.encode()), 4096))
    profile = build_profile("test", scan)
    assert profile.approximate  # the per-source tallies were pruned
    syn = sum(1 for e in entries if e.proto == "tcp" and e.unreplied and e.state in SYN_STATES)
    udp = sum(1 for e in entries if e.proto == "udp" and e.unreplied)
    assert syn and udp
    assert (profile.syn_unreplied, profile.udp_unreplied) == (syn, udp)
    assert profile.entries == 3000
    assert sum(profile.by_proto.values()) == 3000
    assert not scan.tallies[T_PORT_CLASS].max_error  # the one they come from was not
