"""`ctguard watch` (headless) on a lab namespace whose table fills while it runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ctguard.cli.watch import ConfirmScreen, WatchApp
from ctguard.effects.journal import Journal
from ctguard.gather.watch_session import WatchSession
from ctguard.kernel.ctnetlink import Flow
from ctguard.kernel.root import KernelRoot
from ctguard.lab.fill import fill_table

SERVER = "198.19.255.254"


def flows(source: str, count: int) -> list[Flow]:
    return [Flow(source, SERVER, 1024 + i, 443, timeout=600) for i in range(count)]


def top_row(app: WatchApp) -> tuple[str, str]:
    from textual.widgets import DataTable

    table = app.query_one("#top", DataTable)
    row = table.get_row_at(0)
    return str(row[0]), str(row[1])


def test_watch_sees_the_count_and_the_top_source_change_and_blocks_it(
    lab: Any, tmp_path: Path
) -> None:
    ns = lab.add_namespace("watch")
    ns.enable_conntrack()
    assert fill_table(ns, flows("198.18.0.1", 30))[0] == 30
    environ = {
        "CTGUARD_STATE_DIR": str(tmp_path / "state"),
        "CTGUARD_ETC_DIR": str(tmp_path / "etc"),
        "CTGUARD_ALLOWLIST": str(tmp_path / "allowlist"),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    session = WatchSession(
        KernelRoot.live(), ns.ref, environ=environ, is_root=True, interval=0.2, kernel_log=False
    )
    app = WatchApp(session)
    seen: dict[str, Any] = {}

    async def until(check: Any, pilot: Any) -> bool:
        for _ in range(150):
            if check():
                return True
            await pilot.pause(0.1)
        return False

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            assert await until(lambda: app.session.top.last is not None, pilot)
            assert await until(lambda: app.last_header is not None, pilot)
            await pilot.pause(0.3)
            seen["first_count"] = app.last_header.count if app.last_header else None
            seen["first_top"] = top_row(app)
            assert fill_table(ns, flows("198.18.0.77", 120))[0] == 120
            assert await until(lambda: top_row(app)[0] == "198.18.0.77", pilot)
            assert await until(
                lambda: app.last_header is not None and app.last_header.count == 150, pilot
            )
            seen["second_top"] = top_row(app)
            await pilot.press("b")
            await pilot.pause(0.3)
            seen["confirm"] = isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            assert await until(lambda: bool(app.applied), pilot)
            await pilot.press("q")

    asyncio.run(main())
    session.stop()
    assert seen["first_count"] == 30
    assert seen["first_top"] == ("198.18.0.1", "30")
    assert seen["second_top"] == ("198.18.0.77", "120")
    assert seen["confirm"] is True
    listing = ns.exec(["nft", "list", "table", "inet", "ctguard"])
    assert "198.18.0.77" in listing
    last = Journal(tmp_path / "state").last_applied()
    assert last is not None and last.id == app.applied[-1]  # journaled: rollback undoes it
    conntrack = ns.exec(["conntrack", "-L", "-s", "198.18.0.77"], check=False)
    assert "src=198.18.0.77" not in conntrack, "the blocked source's entries are deleted"


def test_all_netns_lists_namespaces_and_enter_shows_one(lab: Any, tmp_path: Path) -> None:
    ns = lab.add_namespace("watchall")
    ns.enable_conntrack()
    assert fill_table(ns, flows("198.18.0.9", 12))[0] == 12
    session = WatchSession(
        KernelRoot.live(),
        None,
        environ={"CTGUARD_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/sbin:/usr/bin"},
        is_root=True,
        interval=0.5,
        kernel_log=False,
    )
    app = WatchApp(session, show_namespaces=True)
    seen: dict[str, Any] = {}

    async def main() -> None:
        from textual.widgets import DataTable

        async with app.run_test(size=(100, 40)) as pilot:
            await pilot.pause(0.5)
            spaces = app.query_one("#namespaces", DataTable)
            labels = [str(spaces.get_row_at(i)[0]) for i in range(spaces.row_count)]
            seen["labels"] = labels
            index = next(i for i, label in enumerate(labels) if ns.name in label)
            spaces.move_cursor(row=index)
            await pilot.press("enter")
            for _ in range(100):
                header = app.last_header
                if app.session.top.last is not None and header is not None and header.count == 12:
                    break
                await pilot.pause(0.1)
            seen["label"] = app.session.label
            seen["count"] = app.last_header.count if app.last_header else None
            seen["top"] = top_row(app)
            await pilot.press("q")

    asyncio.run(main())
    session.stop()
    assert any(ns.name in label for label in seen["labels"])
    assert ns.name in seen["label"]
    assert seen["count"] == 12
    assert seen["top"] == ("198.18.0.9", "12")
