"""The plan that carries out `ctguard advise`'s numbers (what `apply` runs)."""

from __future__ import annotations

from pathlib import Path

from ctguard.advise.advice import Advice
from ctguard.plan.actions import Plan
from ctguard.plan.conntrack_settings import SettingTargets, plan_settings


def advice_targets(advice: Advice, with_global: bool) -> SettingTargets:
    """The global sizing only for the host's own namespace (max, buckets and the
    neighbour thresholds are global)."""
    sizing = advice.global_targets if with_global else {}
    return SettingTargets(
        max=sizing.get("max"),
        buckets=sizing.get("buckets"),
        timeouts=advice.timeout_targets,
        neighbours=advice.neighbour_targets if with_global else {},
    )


def plan_advice(advice: Advice, *, etc_dir: Path, persist: bool, force: bool = False) -> Plan:
    netns = advice.snapshot.netns
    return plan_settings(
        advice.snapshot,
        advice_targets(advice, with_global=netns is None),
        netns=netns,
        etc_dir=etc_dir,
        persist=persist,
        force=force,
        title="apply ctguard's advice",
    )
