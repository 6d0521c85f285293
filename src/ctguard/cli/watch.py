"""`ctguard watch`: a live terminal view of the table (textual).

Options and rendering only: what is read, when, and what a key changes
live in ``ctguard.gather.watch_session`` and ``watch_model``.  textual is
imported here, and this module only by this command (and --help).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import time
from typing import Any, ClassVar

from rich.console import Console
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from ctguard.cli.env import Environment, ExitStatus
from ctguard.errors import CtguardError, UsageError
from ctguard.gather.watch_model import (
    GROUPING_TITLES,
    GROUPINGS,
    RATE_COUNTERS,
    Header,
    TopView,
    sparkline,
)
from ctguard.gather.watch_session import Action, WatchSession
from ctguard.model.findings import Severity
from ctguard.rules.model import Block

SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARN: "yellow",
    Severity.CRIT: "bold red",
}


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "watch",
        help="live view: fill, drop rates, 'table full' lines and top talkers; act on them",
        description="A live terminal view of the conntrack table: entries / max, drop, "
        "early_drop and insert_failed per second with their history, the verdict, 'table "
        "full' lines as they arrive, and the top talkers (by source, source /24 or /64, "
        "destination, destination port or state) with their change since the last refresh. "
        "The header never reads the table; the table is read off the screen's thread at most "
        "every --interval and at most 5%% of the time (a large table is sampled). Keys: g "
        "grouping, b block the selected source, n notrack the selected port, t trace, a "
        "namespaces, q quit. Changes show their plan and need a confirmation (and root).",
    )
    parser.add_argument(
        "--netns", metavar="NS", help="watch this network namespace (NAME, PID or PATH)"
    )
    parser.add_argument(
        "--all-netns",
        action="store_true",
        help="start with the list of namespaces in use and their fill; Enter shows one",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds between header refreshes (default 2; the table may be read less often)",
    )


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if not 0.2 <= args.interval <= 3600:
        raise UsageError("--interval must be between 0.2 and 3600 seconds")
    if args.all_netns and args.netns:
        raise UsageError("choose --netns or --all-netns, not both")
    from ctguard.cli.common import open_root, resolve_netns_option

    root = open_root(None)
    netns = resolve_netns_option(root, args.netns)
    session = WatchSession(
        root, netns, environ=env.environ, is_root=env.is_root, interval=args.interval
    )
    app = WatchApp(session, show_namespaces=args.all_netns)
    try:
        status = app.run()
    finally:
        session.stop()
    return ExitStatus(status if status is not None else ExitStatus.OK)


# --- rendering ------------------------------------------------------------------


def fill_bar(fill: float | None, width: int) -> Text:
    if fill is None:
        return Text("?" * width, "dim")
    done = min(width, round(fill * width))
    style = "red" if fill >= 0.9 else "yellow" if fill >= 0.75 else "green"
    return Text("█" * done, style) + Text("░" * (width - done), "dim")


def header_text(header: Header, width: int) -> Text:
    text = Text()
    text.append(f"{header.label}  ", "bold")
    text.append(f"[{header.verdict.label}]", SEVERITY_STYLE[header.verdict])
    text.append(time.strftime("  %H:%M:%S\n"))
    count = "?" if header.count is None else f"{header.count:,}"
    maximum = "?" if header.max is None else f"{header.max:,}"
    fill = "" if header.fill is None else f" {header.fill:6.1%}"
    text.append(f"entries {count} / {maximum} ")
    text.append_text(fill_bar(header.fill, max(10, width - len(count) - len(maximum) - 24)))
    text.append(fill + "\n")
    spark = max(4, (width - 3 * 22) // 3)
    for name in RATE_COUNTERS:
        rate = header.rates.get(name)
        shown = "-" if rate is None else f"{rate:,.1f}/s"
        style = "bold red" if rate else ""
        text.append(f"{name} ")
        text.append(shown, style)
        text.append(" " + sparkline(header.history.get(name, ()), spark) + "  ")
    text.append("\n")
    if header.table_full:
        text.append(f"table full: {header.table_full_total} line(s), last: ", "red")
        text.append(header.table_full[-1][: max(10, width - 30)])
    else:
        text.append("no 'table full' line since the view started", "dim")
    return text


def findings_text(view: TopView | None, note: str) -> Text:
    text = Text()
    if view is None:
        text.append(note or "reading the table ...", "dim")
        return text
    text.append(view.note, "dim")
    at = time.strftime("%H:%M:%S", time.localtime(view.read_at))
    text.append(f"  (read in {view.read_seconds:.2f} s at {at})\n", "dim")
    shown = [f for f in view.findings if f.severity >= Severity.WARN] or list(view.findings)
    if not shown:
        text.append("analyze: nothing stands out in what was read", "green")
    for finding in shown[:3]:
        text.append(f"{finding.code} ", SEVERITY_STYLE[finding.severity])
        text.append(f"{finding.title}: {finding.evidence}\n")
    return text


def plan_text(action: Action, width: int) -> str:
    from ctguard.render.plan_text import render_plan

    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, highlight=False)
    render_plan(console, action.plan)
    return out.getvalue()


def _left(block: Block, now: float) -> str:
    return "no expiry" if block.expires is None else f"{block.seconds_left(now)}s left"


class ConfirmScreen(ModalScreen[bool]):
    """The exact plan, applied only on y."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "apply"),
        Binding("n,escape,q", "answer(False)", "cancel"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 90%; height: 90%;
        border: thick $warning; background: $surface; padding: 0 1; }
    ConfirmScreen Static { height: auto; }
    """

    def __init__(self, action: Action) -> None:
        super().__init__()
        self.action_shown = action

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("apply this plan?  y = apply   n / Esc = cancel", "bold"))
            yield Static(Text(self.action_shown.summary, "yellow"))
            with VerticalScroll():
                yield Static(plan_text(self.action_shown, 72), id="plan")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class WatchApp(App[int]):
    """Header (snapshots), top talkers (table reads), findings, blocks in force."""

    TITLE = "ctguard watch"
    CSS = """
    #header { height: 4; }
    #namespaces { height: auto; max-height: 8; display: none; }
    #top { height: 1fr; }
    #findings { height: auto; max-height: 5; }
    #blocks { height: auto; max-height: 2; }
    #message { height: auto; max-height: 3; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_view", "quit"),
        Binding("ctrl+c", "quit_view", "quit", show=False, priority=True),
        Binding("g", "grouping", "grouping"),
        Binding("b", "block", "block"),
        Binding("n", "notrack", "notrack"),
        Binding("t", "trace", "trace"),
        Binding("a", "namespaces", "namespaces"),
    ]

    def __init__(self, session: WatchSession, *, show_namespaces: bool = False) -> None:
        super().__init__()
        self.session = session
        self.grouping = GROUPINGS[0]
        self.show_namespaces = show_namespaces
        self.last_header: Header | None = None
        self._header_busy = False
        self._table_busy = False
        self.applied: list[str] = []
        self._namespace_refs: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        yield DataTable(id="namespaces", cursor_type="row")
        yield DataTable(id="top", cursor_type="row", zebra_stripes=True)
        yield Static(id="findings")
        yield Static(id="blocks")
        yield Static(id="message")
        yield Footer()

    def on_mount(self) -> None:
        top = self.query_one("#top", DataTable)
        top.add_columns(GROUPING_TITLES[self.grouping], "entries", "share", "change")
        spaces = self.query_one("#namespaces", DataTable)
        spaces.add_columns("namespace", "entries", "max", "fill", "verdict")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGHUP, signal.SIGTERM):
            loop.add_signal_handler(sig, self.exit, int(ExitStatus.INTERRUPTED))
        self.tick()
        self.set_interval(self.session.interval, self.tick)
        self.show_blocks()
        if self.show_namespaces:
            self.action_namespaces()
        elif not self.session.can_read_table:
            self.say("table content not read: the file is mode 0440 (run as root)")

    # --- refresh -------------------------------------------------------------

    def tick(self) -> None:
        if not self._header_busy:
            self._header_busy = True
            self.refresh_header()
        if not self._table_busy and self.session.table_due():
            self._table_busy = True
            self.refresh_table()

    @work(thread=True, group="header")
    def refresh_header(self) -> None:
        try:
            header: Header | None = self.session.read_header()
            error = ""
        except CtguardError as err:
            header, error = None, err.what
        self.call_from_thread(self._show_header, header, error)

    def _show_header(self, header: Header | None, error: str) -> None:
        self._header_busy = False
        if header is None:
            self.say(f"cannot read {self.session.label}: {error}")
            return
        self.last_header = header
        width = max(40, self.size.width)
        self.query_one("#header", Static).update(header_text(header, width))

    @work(thread=True, group="table")
    def refresh_table(self) -> None:
        error = ""
        try:
            self.session.read_table()
        except CtguardError as err:
            error = err.what
        self.call_from_thread(self._table_read, error)

    def _table_read(self, error: str) -> None:
        self._table_busy = False
        if error:
            self.say(f"table not read: {error}")
        self.show_top()
        self.show_blocks()

    def show_top(self) -> None:
        view = self.session.top.view(self.grouping)
        table = self.query_one("#top", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        table.add_columns(GROUPING_TITLES[self.grouping], "entries", "share", "change")
        for row in view.rows if view else ():
            change = "new" if row.change is None else f"{row.change:+,}"
            table.add_row(row.label, f"{row.count:,}", f"{row.share:.1%}", change, key=row.label)
        if view and view.rows:
            table.move_cursor(row=min(cursor, len(view.rows) - 1))
        note = "" if self.session.can_read_table else "table content not read (needs root)"
        self.query_one("#findings", Static).update(findings_text(view, note))

    def show_blocks(self) -> None:
        blocks = self.session.blocks()
        now = time.time()
        text = Text()
        if blocks:
            text.append("blocked: ", "bold")
            text.append(", ".join(f"{b.network} ({_left(b, now)})" for b in blocks))
        else:
            text.append("no blocks by ctguard in force", "dim")
        self.query_one("#blocks", Static).update(text)

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(Text(message, "yellow"))

    # --- keys ------------------------------------------------------------------

    def action_quit_view(self) -> None:
        self.exit(int(ExitStatus.OK))

    def action_grouping(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]
        self.show_top()

    def selected(self) -> str | None:
        table = self.query_one("#top", DataTable)
        if table.row_count == 0:
            return None
        return str(table.get_row_at(table.cursor_row)[0])

    def action_block(self) -> None:
        if self.grouping not in ("src", "src/24"):
            self.say("b blocks a source: switch the grouping (g) to source or source /24")
            return
        self._offer(lambda value: self.session.block_action(value))

    def action_notrack(self) -> None:
        if self.grouping != "dport":
            self.say("n exempts a port: switch the grouping (g) to destination port")
            return
        self._offer(lambda value: self.session.notrack_action(int(value)))

    def action_trace(self) -> None:
        if self.grouping in ("src", "src/24"):
            self._offer(lambda value: self.session.trace_action(src=value))
        elif self.grouping == "dport":
            self._offer(lambda value: self.session.trace_action(dport=int(value)))
        else:
            self._offer(lambda _value: self.session.trace_action(), need_row=False)

    def _offer(self, make: Any, *, need_row: bool = True) -> None:
        value = self.selected()
        if need_row and (value is None or value == "-"):
            self.say("select a row first (arrow keys)")
            return
        try:
            action: Action = make(value)
        except CtguardError as err:
            self.say(f"{err.what}" + (f" ({err.hint})" if err.hint else ""))
            return
        except ValueError:
            self.say(f"{value!r} cannot be acted on")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                self.say(f"{action.kind} {action.subject}: cancelled, nothing changed")
                return
            try:
                _plan, change_id = self.session.apply(action)
            except CtguardError as err:
                self.say(f"{action.kind} {action.subject} failed: {err.what}")
                return
            if change_id is None:
                self.say(f"{action.kind} {action.subject}: already in place, nothing to do")
            else:
                self.applied.append(change_id)
                self.say(
                    f"{action.kind} {action.subject}: applied, change {change_id} "
                    "(undo: sudo ctguard rollback --yes)"
                )
            self.show_blocks()

        self.push_screen(ConfirmScreen(action), answered)

    def action_namespaces(self) -> None:
        spaces = self.query_one("#namespaces", DataTable)
        if spaces.display and not self.show_namespaces:
            spaces.display = False
            self.query_one("#top", DataTable).focus()
            return
        self.show_namespaces = False
        spaces.clear()
        try:
            rows = self.session.namespaces()
        except CtguardError as err:
            self.say(f"namespaces not listed: {err.what}")
            return
        self._namespace_refs = {}
        for i, row in enumerate(rows):
            fill = "?" if row.fill is None else f"{row.fill:.1%}"
            count = "?" if row.count is None else f"{row.count:,}"
            maximum = "?" if row.max is None else f"{row.max:,}"
            spaces.add_row(row.label, count, maximum, fill, row.verdict, key=str(i))
            self._namespace_refs[str(i)] = row.ref
        spaces.display = True
        spaces.focus()
        self.say("namespaces: Enter shows one, a hides the list")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id != "namespaces":
            return
        key = event.row_key.value
        if key is None or key not in self._namespace_refs:
            return
        self.session.select(self._namespace_refs[key])
        event.data_table.display = False
        self.query_one("#top", DataTable).focus()
        self.say(f"showing {self.session.label}")
        self.show_top()
        self.show_blocks()
        self._header_busy = self._table_busy = False
        self.tick()
