"""The documented JSON shape of `ctguard status` (keys are stable)."""

from __future__ import annotations

from typing import Any

from ctguard.analyze.status_report import StatusReport
from ctguard.model.netns_ref import NetnsRef

HEADLINE_COUNTERS = (
    "drop",
    "early_drop",
    "insert_failed",
    "invalid",
    "search_restart",
    "clash_resolve",
    "chaintoolong",
)


def netns_json(ref: NetnsRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"inode": ref.inode, "path": ref.path, "names": list(ref.names)}


def status_json(report: StatusReport) -> dict[str, Any]:
    snap, metrics = report.snapshot, report.metrics
    counters = snap.counters or {}
    memory = metrics.memory
    payload: dict[str, Any] = {
        "source": snap.source,
        "netns": netns_json(snap.netns),
        "kernel": snap.kernel_release,
        "module_loaded": snap.module_loaded,
        "legacy": snap.legacy,
        "count": snap.count,
        "max": snap.max,
        "buckets": snap.buckets,
        "fill": None if metrics.fill is None else round(metrics.fill, 6),
        "avg_chain": None if metrics.avg_chain is None else round(metrics.avg_chain, 4),
        "max_buckets_ratio": None if metrics.ratio is None else round(metrics.ratio, 4),
        "ratio_meaning": metrics.ratio_meaning,
    }
    for name in HEADLINE_COUNTERS:
        payload[name] = counters.get(name) if snap.counters is not None else None
    payload.update(
        {
            "counters": dict(sorted(counters.items())) if snap.counters is not None else None,
            "counter_source": None
            if snap.counter_source is None
            else {
                "kind": snap.counter_source.kind,
                "variant": snap.counter_source.variant,
                "cpus": snap.counter_source.cpus,
            },
            "memory": {
                "bytes_per_entry": memory.bytes_per_entry,
                "measured": memory.measured,
                "basis": memory.basis,
                "table_now_bytes": memory.table_now,
                "table_at_max_bytes": memory.table_at_max,
                "hash_bytes": memory.hash_bytes,
                "mem_total_bytes": snap.mem_total,
                "share_of_ram_at_max": None
                if memory.share_of_ram_at_max is None
                else round(memory.share_of_ram_at_max, 6),
                "slab_caches": [
                    {"name": c.name, "active_objs": c.active_objs, "objsize": c.objsize}
                    for c in snap.slab_caches or ()
                ],
            },
            "kernel_defaults": [
                {"era": d.era, "buckets": d.buckets, "max": d.max, "formula": d.formula}
                for d in metrics.defaults
            ],
            "timeouts": [
                {
                    "sysctl": t.sysctl,
                    "key": t.key,
                    "seconds": t.seconds,
                    "default": t.default,
                    "state": t.state,
                }
                for t in snap.timeouts
            ],
            "settings": snap.settings,
            "neighbours": [
                {
                    "family": t.family,
                    "table": t.name,
                    "entries": t.entries,
                    "gc_thresh1": t.gc_thresh1,
                    "gc_thresh2": t.gc_thresh2,
                    "gc_thresh3": t.gc_thresh3,
                    "gc_stale_time": t.gc_stale_time,
                    "fill": None if t.fill is None else round(t.fill, 6),
                    "table_fulls": t.table_fulls,
                    "forced_gc_runs": t.forced_gc_runs,
                }
                for t in snap.neighbours
            ],
            "module_params": snap.module_params,
            "module_users": list(snap.module_users),
            "verdict": report.verdict.label,
            "findings": [f.to_json() for f in report.findings],
            "notes": list(snap.notes),
        }
    )
    return payload
