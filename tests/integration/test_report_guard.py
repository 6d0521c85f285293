"""`ctguard report`'s guard section: the guard's database (a bundle's copy or this
host's), read-only, as fill, drops, decisions and bans over the window."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import UTC, datetime
from html import unescape
from pathlib import Path

from ctguard.gather.guard_db import MIGRATIONS
from ctguard.gather.guard_history import ROWS_SHOWN, gather_guard_history
from ctguard.gather.report import gather_report
from ctguard.guard.detect import ACTION_BLOCK, ACTION_WOULD_BLOCK, SIGNAL_SOURCE, Decision
from ctguard.guard.state import STATUS_APPLIED, STATUS_LIFTED, GuardDb
from ctguard.kernel.capture import CaptureResult, _capture_guard_db
from ctguard.kernel.root import KernelRoot
from ctguard.kernel.snapshot import BUNDLE_GUARD_DB
from ctguard.model.collection import NetnsSample
from ctguard.render.report_html import render_report_html
from ctguard.render.report_json import report_json
from tests.conftest import run_cli
from tests.integration.test_report import BOOT, NOW, make_bundle

GOLDEN = Path(__file__).parent.parent / "golden" / "report" / "guard-history-bundle.json"
START = BOOT + 3000.0  # the guard's first tick: 20 minutes before the bundle was captured
CAPTURED = BOOT + 7200.0


def tick(label: str, count: int, drop: int, maximum: int = 65536) -> NetnsSample:
    counters = {"drop": drop, "early_drop": drop // 4, "insert_failed": 0}
    return NetnsSample(label, None, True, 0.0, count, maximum, None, counters, None, None, ())


def decision(target: str, action: str, seen: float = 1500.0) -> Decision:
    duration = 600.0 if action == ACTION_BLOCK else None
    why = "" if action == ACTION_BLOCK else "dry run"
    return Decision(
        "edge", target, SIGNAL_SOURCE, seen, 1000, action, duration, 0, {"events": seen}, why
    )


def fill_guard_db(path: Path) -> None:
    """A guard that ran 10 minutes, stopped 15, ran 45 more: the table of namespace
    `edge` fills and drops in its second run, the guard blocks the source."""
    db = GuardDb(path)
    for second in [*range(0, 600, 5), *range(1500, 4200, 5)]:
        at = START + second
        flood = 2400 <= second < 3000
        count = 65536 if flood else 20000 + second
        drop = 0 if second < 2400 else min(second - 2400, 600) * 40
        db.record_samples(at, (tick("edge", count, drop), tick("idle", 300, 0, 262144)))
    first = db.record(decision("198.51.100.9/32", ACTION_WOULD_BLOCK), START + 2410)
    assert first
    blocked = db.record(decision("198.51.100.9/32", ACTION_BLOCK, 2600.0), START + 2420)
    ban = db.add_ban("edge", None, "198.51.100.9/32", START + 2420, START + 2420 + 7200, blocked)
    db.set_status(ban, STATUS_APPLIED, START + 2421)
    db.set_verified(ban)
    other = db.record(decision("203.0.113.5/32", ACTION_BLOCK), START + 2430)
    lifted = db.add_ban("edge", None, "203.0.113.5/32", START + 2430, START + 9000, other)
    db.set_status(lifted, STATUS_LIFTED, START + 2500, "unblocked by hand")
    db.close()


def guard_bundle(tmp_path: Path) -> Path:
    root = make_bundle(tmp_path / "bundle")
    source = tmp_path / "state" / "guard.sqlite3"
    fill_guard_db(source)
    result = CaptureResult(root)
    _capture_guard_db(source, root, result)
    assert result.files == [BUNDLE_GUARD_DB], result.missing
    return root


def report_of(root: Path, tmp_path: Path, **window: datetime) -> dict:
    data = gather_report(
        KernelRoot.from_bundle(root),
        None,
        is_root=False,
        state_dir=tmp_path / "no-state",
        now=NOW,
        **window,
    )
    return report_json(data)


def test_the_guard_section_of_a_bundle_is_pinned(tmp_path: Path) -> None:
    root = guard_bundle(tmp_path)
    guard = report_of(root, tmp_path)["guard"]
    text = json.dumps(guard, indent=1, sort_keys=True).replace(str(root), "BUNDLE") + "\n"
    if os.environ.get("CTGUARD_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "the guard section differs from its golden file"
    # what an operator must find in it, whatever the wording
    assert guard["state"] == "recorded" and guard["schema"] == MIGRATIONS[-1][0]
    edge, idle = guard["namespaces"]  # the fuller first
    assert edge["netns"] == "edge" and edge["peak_fill"] == 1.0 and idle["netns"] == "idle"
    assert edge["drops"] == 600 * 40 and idle["drops"] == 0
    assert len(guard["runs"]) == 2  # it stopped for 15 minutes in between
    assert len(edge["bins"]) <= 121 and None in edge["bins"]  # the gap, not zeros
    assert sum(guard["decisions_per_bin"]["block"]) == 2
    assert sum(guard["decisions_per_bin"]["would-block"]) == 1
    assert guard["decisions_total"] == 3
    by_action = {(t["action"], t["decisions"]) for t in guard["decision_totals"]}
    assert by_action == {("block", 2), ("would-block", 1)}
    # at the capture's time: the applied ban is active, the one lifted by hand is not
    assert guard["bans_at"] == datetime.fromtimestamp(CAPTURED, UTC).isoformat()
    assert [(b["target"], b["verified"]) for b in guard["bans"]] == [("198.51.100.9/32", True)]
    assert guard["start_commands"] == []


def test_the_window_bounds_the_history(tmp_path: Path) -> None:
    root = guard_bundle(tmp_path)
    since = datetime.fromtimestamp(START + 1500, UTC)
    until = datetime.fromtimestamp(START + 2000, UTC)
    guard = report_of(root, tmp_path, since=since, until=until)["guard"]
    assert guard["start"] == since.isoformat() and guard["end"] == until.isoformat()
    assert guard["decisions_total"] == 0 and len(guard["runs"]) == 1
    assert guard["namespaces"][0]["drops"] == 0  # before the flood
    # bans active at the window's end: none yet
    assert guard["bans"] == [] and guard["bans_at"] == until.isoformat()
    before = report_of(root, tmp_path, until=datetime.fromtimestamp(START - 60, UTC))["guard"]
    assert before["state"] == "empty" and "nothing in this window" in before["summary"]


def test_the_html_shows_fill_drops_decisions_and_bans(tmp_path: Path) -> None:
    root = guard_bundle(tmp_path)
    html = render_report_html(report_of(root, tmp_path))
    section = html[html.index("What the guard saw and did") : html.index("The table now")]
    assert section.count("<svg") == 3  # fill, drops, decisions
    for text in ("table fill", "packets dropped", "198.51.100.9/32", "would-block", "Bans active"):
        assert text in section, text
    assert not re.search(r"<script", html, re.I)


def test_no_guard_database_says_the_guard_did_not_run_and_how_to_start_it(
    tmp_path: Path,
) -> None:
    root = make_bundle(tmp_path / "bundle")
    payload = report_of(root, tmp_path)
    guard = payload["guard"]
    assert guard["state"] == "absent" and "not in this bundle" in guard["summary"]
    assert any("ctguard guard --dry-run" in c for c in guard["start_commands"])
    html = unescape(render_report_html(payload))
    assert "The guard's history is not in this bundle" in html and "guard --dry-run" in html
    # the capture's reason, when it gave one
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["missing"][BUNDLE_GUARD_DB] = "the guard has not run on this host (no /x)"
    (root / "manifest.json").write_text(json.dumps(manifest))
    summary = report_of(root, tmp_path)["guard"]["summary"]
    assert summary.endswith("not in this bundle: the guard has not run on this host (no /x)")
    # on this host: the state directory's database, absent here too
    env = {"CTGUARD_STATE_DIR": str(tmp_path / "empty-state")}
    live = run_cli("report", "--json", environ=env).json()["guard"]
    assert live["state"] == "absent" and "on this host" in live["summary"]
    assert live["database"] == str(tmp_path / "empty-state" / "guard.sqlite3")
    assert not (tmp_path / "empty-state").exists()  # the report created nothing


def test_a_live_state_dir_is_read_without_writing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_guard_db(state / "guard.sqlite3")
    db = GuardDb(state / "guard.sqlite3")  # the guard still running: WAL, open
    db.record_samples(START + 4300, (tick("edge", 100, 24000),))
    before = (state / "guard.sqlite3").stat().st_mtime_ns
    env = {"CTGUARD_STATE_DIR": str(state)}
    guard = run_cli("report", "--json", "--until", "2030-01-01", environ=env).json()["guard"]
    assert guard["state"] == "recorded" and guard["decisions_total"] == 3
    assert (state / "guard.sqlite3").stat().st_mtime_ns == before
    db.close()


def test_the_newest_decisions_are_kept_and_counted(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "bundle")
    db = GuardDb(root / BUNDLE_GUARD_DB)
    for i in range(300):
        db.record(decision(f"10.0.{i // 250}.{i % 250}/32", ACTION_WOULD_BLOCK), START + i)
    db.close()
    guard = report_of(root, tmp_path)["guard"]
    assert guard["decisions_total"] == 300
    assert len(guard["decisions"]) == ROWS_SHOWN
    assert guard["decisions"][-1]["target"] == "10.0.1.49/32"  # the newest, oldest first
    assert guard["notes"] == []


def test_an_old_or_foreign_database_is_a_note_not_an_error(tmp_path: Path) -> None:
    root = make_bundle(tmp_path / "bundle")
    path = root / BUNDLE_GUARD_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as raw:  # as the first release wrote it: no samples
        raw.executescript(MIGRATIONS[0][1])
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO schema_version (version) VALUES (1)")
    guard = report_of(root, tmp_path)["guard"]
    assert guard["state"] == "empty" and "did not record the table's fill" in guard["notes"][0]
    path.write_bytes(b"garbage" * 1000)
    guard = report_of(root, tmp_path)["guard"]
    assert guard["state"] == "unreadable" and "could not be read" in guard["summary"]
    assert "could not be read" in render_report_html(report_of(root, tmp_path))


def test_capture_copies_the_database_consistently_and_notes_its_absence(
    tmp_path: Path,
) -> None:
    source = tmp_path / "state" / "guard.sqlite3"
    fill_guard_db(source)
    writer = GuardDb(source)  # still open: the newest rows are in its write-ahead log
    writer.record_samples(START + 9999, (tick("edge", 1, 0),))
    result = CaptureResult(tmp_path / "b")
    _capture_guard_db(source, tmp_path / "b", result)
    writer.close()
    copy = tmp_path / "b" / BUNDLE_GUARD_DB
    assert not Path(f"{copy}-wal").exists()
    with sqlite3.connect(copy) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert raw.execute("SELECT MAX(at) FROM samples").fetchone() == (START + 9999,)
    nothing = CaptureResult(tmp_path / "c")
    _capture_guard_db(tmp_path / "none" / "guard.sqlite3", tmp_path / "c", nothing)
    assert nothing.files == [] and "has not run" in nothing.missing[BUNDLE_GUARD_DB]


def test_a_longer_history_does_not_make_a_larger_report(tmp_path: Path) -> None:
    def html_of(name: str, namespaces: int, ticks: int, decisions: int) -> int:
        root = make_bundle(tmp_path / name)
        db = GuardDb(root / BUNDLE_GUARD_DB)
        for i in range(ticks):
            at = START + i * 60
            db.record_samples(
                at,
                tuple(
                    tick(f"ns{k}", 1000 + (i * 37 + k) % 60000, i * k) for k in range(namespaces)
                ),
            )
        for i in range(decisions):
            db.record(
                decision(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}/32", ACTION_BLOCK), START + i
            )
        db.close()
        return len(render_report_html(report_of(root, tmp_path)))

    small = html_of("small", 2, 30, 10)
    large = html_of("large", 20, 1500, 400)  # a day of minutes, 20 namespaces
    assert large < small * 1.25  # bounded by the caps (bins, namespaces, rows), not the data


def test_netns_narrows_the_history_to_that_namespace(tmp_path: Path) -> None:
    """`report --netns idle`: the guard's part for that namespace only, matched by
    any of its names or its inode; a namespace the guard never watched says so."""
    path = tmp_path / "guard.sqlite3"
    fill_guard_db(path)
    every = gather_guard_history(path, since=None, until=None, now=CAPTURED, where="db")
    assert [h.netns for h in every.netns] == ["edge", "idle"] and every.decisions_total == 3
    idle = gather_guard_history(
        path, since=None, until=None, now=CAPTURED, where="db", netns=("4026532999", "idle")
    )
    assert [h.netns for h in idle.netns] == ["idle"]
    assert idle.decisions_total == 0 and idle.bans == [] and idle.decision_totals == []
    edge = gather_guard_history(
        path, since=None, until=None, now=CAPTURED, where="db", netns=("edge",)
    )
    assert [h.netns for h in edge.netns] == ["edge"] and edge.decisions_total == 3
    assert [b.target for b in edge.bans] == ["198.51.100.9/32"]
    nowhere = gather_guard_history(
        path, since=None, until=None, now=CAPTURED, where="db", netns=("web",)
    )
    assert nowhere.state == "empty" and nowhere.netns == ()
    assert any("nothing for namespace web" in n and "edge, idle" in n for n in nowhere.notes)
