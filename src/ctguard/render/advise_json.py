"""`ctguard advise --json`: stable keys."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ctguard.advise.advice import Advice
from ctguard.advise.neighbours import KEYS
from ctguard.plan.actions import Plan


def advise_json(advice: Advice, plan: Plan | None) -> dict[str, Any]:
    sizing = advice.sizing
    return {
        "source": advice.snapshot.source,
        "netns": advice.snapshot.netns.label if advice.snapshot.netns else None,
        "netns_owners": (advice.snapshot.netns.owners or None) if advice.snapshot.netns else None,
        "sizing": None
        if sizing is None
        else {
            "current_max": sizing.current_max,
            "current_buckets": sizing.current_buckets,
            "recommended_max": sizing.recommended_max,
            "recommended_buckets": sizing.recommended_buckets,
            "peak": sizing.peak,
            "peak_basis": sizing.peak_basis,
            "reached_max": sizing.reached_max,
            "needed": sizing.needed,
            "budget_bytes": sizing.budget_bytes,
            "budget_max": sizing.budget_max,
            "ratio": sizing.ratio,
            "memory_at_max_bytes": sizing.memory_at_max,
            "hash_bytes": sizing.hash_bytes,
            "avg_chain_at_max": round(sizing.avg_chain_at_max, 3),
            "namespaces_in_use": sizing.namespaces_in_use,
            "worst_case_bytes": sizing.worst_case_bytes,
            "why": sizing.why,
            "warnings": sizing.warnings,
        },
        "timeouts": [{**asdict(item), "change": item.change} for item in advice.timeouts],
        "neighbours": [
            {
                "family": item.family,
                "table": item.table,
                "entries": item.entries,
                "peak": item.peak,
                "peak_basis": item.peak_basis,
                "overflowed": item.overflowed,
                "current": dict(zip(KEYS, item.current, strict=True)),
                "recommended": dict(zip(KEYS, item.recommended, strict=True)),
                "change": item.change,
                "memory_at_gc_thresh3_bytes": item.memory_at_thresh3,
                "why": item.why,
                "warnings": item.warnings,
            }
            for item in advice.neighbours
        ],
        "wrong_fix": [finding.to_json() for finding in advice.wrong_fix],
        "corrections": [asdict(item) for item in advice.corrections],
        "notes": advice.notes,
        "plan": None if plan is None else plan.to_dict(),
    }
