"""Between ticks the guard drains the event sockets as events come, into the window of
the next tick, so a flood faster than a socket buffer per tick is still counted."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Callable
from pathlib import Path

from ctguard.guard.policy import Policy
from ctguard.guard.service import Guard, Watch


class FakeEvents:
    """A readable descriptor and queued batches of sources, as NewEntryEvents drains them."""

    def __init__(self, batches: list[tuple[list[bytes], bool]]) -> None:
        self.batches = batches
        self.overruns = 0
        self.read_end, self.write_end = socket.socketpair()
        self.write_end.send(b"x")  # readable until the batches run out
        self.drains = 0

    def fileno(self) -> int:
        return self.read_end.fileno()

    def drain(self, add: Callable[[bytes], None]) -> tuple[int, bool]:
        self.drains += 1
        if not self.batches:
            self.read_end.recv(16)  # nothing left: no longer readable
            return 0, False
        sources, lost = self.batches.pop(0)
        for source in sources:
            add(source)
        self.overruns += int(lost)
        return len(sources), lost

    def close(self) -> None:
        self.read_end.close()
        self.write_end.close()


def guard(tmp_path: Path) -> Guard:
    return Guard(
        config=tmp_path / "guard.toml",
        policy=Policy(source="test"),
        state_dir=tmp_path / "state",
        environ=dict(os.environ),
        log=io.StringIO(),
    )


def test_events_are_drained_between_ticks_into_the_next_window(tmp_path: Path) -> None:
    g = guard(tmp_path)
    src = bytes([10, 0, 0, 7])
    events = FakeEvents([([src] * 500, False), ([src] * 300, True), ([src] * 200, False)])
    watch = Watch("web", None, events)
    g.watches["web"] = watch
    g.metrics.watching("web")
    g.wait(0.5)
    assert events.drains >= 3  # drained while it waited, not only once per tick
    assert watch.window is not None
    assert watch.window.events == 1000 and watch.window.sources.counts[src] == 1000
    assert watch.window.lost  # one drain hit ENOBUFS: the counts are lower bounds
    body = {f.name: f for f in g.metrics.families()}
    (lost,) = [s for s in body["ctguard_guard_events_lost"].samples if s.labels["netns"] == "web"]
    assert lost.value == 1
    events.close()
    g.db.close()


def test_a_stop_ends_the_wait(tmp_path: Path) -> None:
    g = guard(tmp_path)
    g.stopping = True
    g.wait(30)  # returns at once: the loop honours SIGTERM between ticks
    g.db.close()
