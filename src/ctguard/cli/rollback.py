"""`ctguard rollback`: put back the values a change set replaced (runtime and files)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ctguard.cli.changing import (
    add_change_options,
    journal_for,
    live_system,
    recover_first,
    require_live_root,
    restore_status,
)
from ctguard.cli.common import make_console, open_root, write_json
from ctguard.cli.env import Environment, ExitStatus
from ctguard.effects.executor import RestoreReport, rollback_change
from ctguard.effects.journal import ChangeSet, Journal
from ctguard.effects.slots import normalized, read_slot, slot_label
from ctguard.errors import CtguardError


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "rollback",
        help="undo the last (or a given) applied change, from the journal",
        description="Restore the original values recorded before a change (default: the last "
        "applied one). Prints what it would restore; --yes restores it. Change sets a crash "
        "left half-done are always rolled back first.",
    )
    parser.add_argument("change_id", nargs="?", metavar="ID", help="a change set id (--list)")
    parser.add_argument("--list", action="store_true", help="list the recorded change sets")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_change_options(parser)


def choose(journal: Journal, change_id: str | None) -> ChangeSet | None:
    if change_id:
        change = journal.get(change_id)
        if change.status != "applied":
            raise CtguardError(
                f"change {change_id} is {change.status}, not applied: nothing to roll back"
            )
        return change
    return journal.last_applied()


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    journal = journal_for(env)
    if args.list:
        return list_changes(env, args, journal)
    root = open_root(None)
    if not args.yes:
        return preview(env, args, journal, root)
    require_live_root(root, env, "rollback")
    reports: list[RestoreReport] = []
    with journal.locked():
        reports.extend(recover_first(journal, root))
        change = choose(journal, args.change_id)
        if change is not None:
            reports.append(rollback_change(change, journal, live_system(root)))
    from ctguard.render.plan_text import render_restore, restore_json

    if args.json:
        write_json(env, {"rolled_back": [restore_json(r) for r in reports]})
    else:
        console = make_console(env)
        if not reports:
            console.print("nothing to roll back: no applied change in the journal")
        for report in reports:
            render_restore(console, report, "rolled back")
    return restore_status(reports)


def preview(env: Environment, args: argparse.Namespace, journal: Journal, root: Any) -> ExitStatus:
    interrupted = journal.interrupted()
    change = choose(journal, args.change_id)
    targets = [*interrupted, *([change] if change else [])]
    rows: list[dict[str, Any]] = []
    system = live_system(root)
    for item in targets:
        for step in reversed(item.steps):
            try:
                now = normalized(read_slot(system, step.action))
            except CtguardError as err:
                now = f"unreadable: {err.what}"
            rows.append(
                {
                    "change": item.id,
                    "slot": slot_label(step.action),
                    "now": now,
                    "restore": normalized(step.original),
                    "remove_dirs": [d for d in reversed(step.created_dirs) if Path(d).is_dir()],
                }
            )
    if args.json:
        write_json(env, {"changes": [c.id for c in targets], "steps": rows, "applied": False})
        return ExitStatus.OK
    console = make_console(env)
    if not targets:
        console.print("nothing to roll back: no applied change in the journal")
        return ExitStatus.OK
    for item in targets:
        console.print(f"change {item.id} ({item.title}, {item.status})")
        for row in (r for r in rows if r["change"] == item.id):
            restore = "(remove the file)" if row["restore"] is None else row["restore"]
            now = row["now"] if row["now"] is None or len(row["now"]) < 60 else "(file content)"
            if isinstance(restore, str) and len(restore) > 60:
                restore = "(the previous content)"
            console.print(f"  {row['slot']}: now {now} -> restore {restore}")
            for directory in row["remove_dirs"]:
                console.print(f"  {directory}: created by the change -> remove it if empty")
    console.print("dry run: nothing was changed; add --yes to roll back")
    return ExitStatus.OK


def list_changes(env: Environment, args: argparse.Namespace, journal: Journal) -> ExitStatus:
    import time

    changes = journal.all()
    if args.json:
        write_json(
            env,
            {"changes": [{**c.to_dict(), "steps": len(c.steps)} for c in changes]},
        )
        return ExitStatus.OK
    console = make_console(env)
    if not changes:
        console.print(f"no change recorded in {journal.directory}")
    for change in changes:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(change.created))
        console.print(
            f"{change.id}  {when}  {change.status:<12} {change.title} ({len(change.steps)} steps)"
        )
    return ExitStatus.OK
