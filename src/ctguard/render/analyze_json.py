"""The documented JSON shape of `ctguard analyze`."""

from __future__ import annotations

from typing import Any

from ctguard.analyze.table_analysis import TableProfile
from ctguard.model.findings import Finding, Severity
from ctguard.render.scan_json import skipped_json


def _pairs(items: list[tuple[Any, int]]) -> list[dict[str, Any]]:
    return [{"key": key, "count": count} for key, count in items]


def analyze_json(
    profile: TableProfile, findings: list[Finding], verdict: Severity
) -> dict[str, Any]:
    return {
        "source": profile.source,
        "entries": profile.entries,
        **skipped_json(profile.scan),
        "verdict": verdict.label,
        "approximate": profile.approximate,
        "assured": profile.assured,
        "evictable": profile.evictable,
        "assured_closing": profile.assured_closing,
        "nat": profile.nat,
        "top": {
            "src": _pairs(profile.by_src),
            "src_subnet": _pairs(profile.by_src24),
            "dst": _pairs(profile.by_dst),
            "dport": [
                {
                    "key": f"{proto}/{port if port is not None else '-'}",
                    "proto": proto,
                    "port": port,
                    "count": count,
                }
                for (proto, port), count in profile.by_dport
            ],
            "distinct_dports_per_src": _pairs(profile.ports_per_src),
        },
        "totals": {
            "proto": _pairs(profile.by_proto.most_common()),
            "state": _pairs(profile.by_state.most_common()),
            "flags": _pairs(profile.by_flags.most_common()),
        },
        "syn_half_open": profile.syn_half_open,
        "syn_recv": profile.syn_recv,
        "syn_sent_unreplied": profile.syn_sent_unreplied,
        "udp_unreplied": profile.udp_unreplied,
        "established": {
            "assured": profile.established_assured,
            "timeout": profile.established_timeout,
            "timeout_source": profile.established_timeout_source or None,
            "idle": profile.established_idle,
        },
        "findings": [finding.to_json() for finding in findings],
    }
