"""`ctguard watch` headless (textual's Pilot) against a bundle: keys, grouping,
the screens as text at 80x24, and a block confirmation that is cancelled."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ctguard.cli.watch import ConfirmScreen, WatchApp
from ctguard.gather.watch_session import WatchSession
from ctguard.kernel.root import KernelRoot
from tests.fixture_roots import root_k618_sample, write


def entry(src: str, dport: int) -> str:
    return (
        f"ipv4     2 tcp      6 431999 ESTABLISHED src={src} dst=10.9.0.1 sport=40000 "
        f"dport={dport} src=10.9.0.1 dst={src} sport={dport} dport=40000 [ASSURED] "
        "mark=0 zone=0 use=2\n"
    )


TABLE = [entry("192.0.2.10", 80)] * 7 + [entry("198.51.100.3", 443)] * 3


def session_for(tmp_path: Path, lines: list[str] = TABLE) -> WatchSession:
    base = root_k618_sample(tmp_path / "root")
    write(base, "proc/net/nf_conntrack", "".join(lines))
    return WatchSession(
        KernelRoot.from_bundle(base),
        None,
        environ={"CTGUARD_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/sbin:/usr/bin"},
        is_root=True,
        interval=0.5,
        kernel_log=False,
    )


def screen_text(app: WatchApp) -> str:
    """What the terminal shows, as text (what export_screenshot draws, unstyled)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


def drive(app: WatchApp, steps: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(100):  # the first table read runs in a worker thread
                if app.session.top.last is not None and app.last_header is not None:
                    break
                await pilot.pause(0.05)
            await pilot.pause()
            await steps(pilot)

    asyncio.run(main())


def test_header_top_talkers_and_grouping_switch(tmp_path: Path) -> None:
    app = WatchApp(session_for(tmp_path))
    screens: list[str] = []

    async def steps(pilot: Any) -> None:
        screens.append(screen_text(app))
        await pilot.press("g")
        screens.append(screen_text(app))
        await pilot.press("g", "g", "g")
        screens.append(screen_text(app))

    drive(app, steps)
    first, subnets, state = screens
    lines = first.splitlines()
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    assert "entries 10 / 262,144" in first
    assert "[crit]" in first or "[warn]" in first or "[ok]" in first or "[info]" in first
    assert "drop - " in first  # one bundle snapshot: no rate yet
    row = next(line for line in lines if "192.0.2.10" in line)
    assert "7" in row and "70.0%" in row and "new" in row
    assert "198.51.100.3" in first
    assert "10 entries read" in first
    assert "q quit" in first and "g grouping" in first
    assert "source /24 (/64)" in subnets and "192.0.2.0/24" in subnets
    assert "192.0.2.10 " not in subnets
    assert "state" in state and "ESTABLISHED" in state
    assert app.return_code is None or app.return_code == 0


def test_q_exits_with_zero(tmp_path: Path) -> None:
    app = WatchApp(session_for(tmp_path))

    async def steps(pilot: Any) -> None:
        await pilot.press("q")

    drive(app, steps)
    assert app.return_value == 0


def test_block_cancelled_applies_nothing(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    app = WatchApp(session)
    seen: dict[str, str] = {}

    async def steps(pilot: Any) -> None:
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        seen["plan"] = screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        seen["after"] = screen_text(app)

    drive(app, steps)
    assert "block 192.0.2.10/32 in this host" in seen["plan"]
    assert "for 1h (expires " in seen["plan"] and "reason: from ctguard watch" in seen["plan"]
    assert "apply this plan?" in seen["plan"]
    assert "cancelled, nothing changed" in seen["after"]
    state = tmp_path / "state"
    assert not state.exists() or not any(state.rglob("*")), "no state, no journal written"
    assert app.applied == []


def test_act_keys_explain_what_they_need(tmp_path: Path) -> None:
    session = session_for(tmp_path)
    session.is_root = False
    app = WatchApp(session)
    seen: list[str] = []

    async def steps(pilot: Any) -> None:
        await pilot.press("n")  # grouping is source: n needs a port
        seen.append(screen_text(app))
        await pilot.press("b")
        seen.append(screen_text(app))
        seen.append(type(app.screen).__name__)

    drive(app, steps)
    assert "switch the grouping (g) to destination port" in seen[0]
    assert "needs root" in seen[1] and "sudo ctguard watch" in seen[1]
    assert seen[2] != "ConfirmScreen"


@pytest.mark.parametrize("no_color", [True, False])
def test_renders_with_and_without_colour(tmp_path: Path, monkeypatch: Any, no_color: bool) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = WatchApp(session_for(tmp_path))
    texts: list[str] = []

    async def steps(pilot: Any) -> None:
        texts.append(screen_text(app))

    drive(app, steps)
    assert "192.0.2.10" in texts[0]


def test_notrack_on_a_port_shows_its_plan_and_cancel_changes_nothing(tmp_path: Path) -> None:
    app = WatchApp(session_for(tmp_path))
    seen: list[str] = []

    async def steps(pilot: Any) -> None:
        await pilot.press("g", "g", "g")  # source -> /24 -> destination -> port
        seen.append(screen_text(app))
        await pilot.press("n")
        await pilot.pause()
        seen.append(screen_text(app))
        await pilot.press("escape")
        await pilot.pause()
        seen.append(screen_text(app))

    drive(app, steps)
    ports, plan, after = seen
    assert "destination port" in ports and "80" in ports
    assert "notrack" in plan and "port 80" in plan and "apply this plan?" in plan
    assert "cancelled, nothing changed" in after
    state = tmp_path / "state"
    assert not state.exists() or not any(state.rglob("*"))
