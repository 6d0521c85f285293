"""Everything a post-mortem holds, gathered once from this host or a bundle.

The guard's history comes from its database (read-only), the state
directory's on this host or the bundle's copy.

The table is read once (doctor's table section: sampled above a size on a
live host, bounded tallies always), and the advice, the audit and the
verdict are built from that same reading.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ctguard.advise.advice import Advice, AdviceOptions
from ctguard.analyze.status_checks import Thresholds
from ctguard.gather.advice import EvidenceChoice, gather_advice
from ctguard.gather.audit import Audit, gather_audit
from ctguard.gather.diagnosis import Diagnosis, gather_diagnosis
from ctguard.gather.guard_db import db_path
from ctguard.gather.guard_history import GuardHistory, gather_guard_history
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import BUNDLE_GUARD_DB
from ctguard.model.netns_ref import NetnsRef


@dataclass(frozen=True)
class BundleContents:
    """What a capture bundle says it holds and what it could not capture."""

    captured_at: str | None
    captured_at_epoch: float | None
    hostname: str | None
    files: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]  # (file, why)


@dataclass
class ReportData:
    host: str
    kernel: str | None
    generated_at: datetime
    source: str  # "this host" or the bundle's path
    since: datetime | None
    until: datetime | None
    diagnosis: Diagnosis
    advice: Advice
    audit: Audit
    bundle: BundleContents | None
    guard: GuardHistory
    notes: list[str] = field(default_factory=list)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def guard_history_of(
    root: KernelRoot,
    state_dir: Path,
    bundle: BundleContents | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    netns: NetnsRef | None = None,
) -> GuardHistory:
    """The guard's database of this host (its state directory) or the bundle's copy;
    with ``netns``, that namespace's part (the guard labels a namespace by its
    first `ip netns` name, else its inode)."""
    path = db_path(state_dir) if root.is_live else root.bundle_path(BUNDLE_GUARD_DB)
    at = bundle.captured_at_epoch if bundle and bundle.captured_at_epoch else now.timestamp()
    history = gather_guard_history(
        path,
        since=since.timestamp() if since else None,
        until=until.timestamp() if until else None,
        now=at,
        where=str(path),
        netns=None if netns is None else (*netns.names, str(netns.inode)),
    )
    if history.state == "absent" and bundle is not None:
        history.why = dict(bundle.missing).get(BUNDLE_GUARD_DB, "")
    return history


def read_bundle_contents(root: KernelRoot) -> BundleContents | None:
    text = root.read_bundle("manifest.json")
    if root.is_live or text is None:
        return None
    try:
        manifest = json.loads(text)
    except ValueError:
        return BundleContents(None, None, None, (), (("manifest.json", "not valid JSON"),))
    missing = manifest.get("missing") or {}
    return BundleContents(
        captured_at=manifest.get("captured_at"),
        captured_at_epoch=_number(manifest.get("captured_at_epoch")),
        hostname=manifest.get("hostname"),
        files=tuple(str(name) for name in manifest.get("files") or ()),
        missing=tuple((str(k), str(v)) for k, v in sorted(missing.items())),
    )


def gather_report(
    root: KernelRoot,
    netns: NetnsRef | None,
    *,
    is_root: bool,
    state_dir: Path,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> ReportData:
    diagnosis = gather_diagnosis(
        root, netns, Thresholds(), is_root=is_root, state_dir=state_dir, since=since, until=until
    )
    advice = gather_advice(
        root,
        netns,
        state_dir=state_dir,
        is_root=is_root,
        options=AdviceOptions(),
        choice=EvidenceChoice(),
        table=diagnosis.table,
    )
    bundle = read_bundle_contents(root)
    snapshot = diagnosis.report.snapshot
    host = (bundle.hostname if bundle else None) or (
        platform.node() if root.is_live else root.label
    )
    generated_at = now or datetime.now(UTC)
    notes: list[str] = []
    if bundle is None and not root.is_live:
        notes.append("the bundle has no manifest.json: what it holds is not listed")
    return ReportData(
        host=host or "unknown host",
        kernel=snapshot.kernel_release,
        generated_at=generated_at,
        source=root.root_argument or "this host",
        since=since,
        until=until,
        diagnosis=diagnosis,
        advice=advice,
        audit=gather_audit(root, netns),
        bundle=bundle,
        guard=guard_history_of(root, state_dir, bundle, since, until, generated_at, netns),
        notes=notes,
    )
