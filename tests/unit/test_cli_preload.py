"""The text renderer is imported in the background only while a live table is read."""

from __future__ import annotations

import sys
import threading

from ctguard.cli.common import preload_renderer

MODULE = "ctguard.render.lab_text"


def _preload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ctguard-preload"]


def test_file_sources_never_start_a_preload_thread() -> None:
    # a file scan may fork workers; no import may be running in another thread then
    for kind in ("file", "bundle", "stdin"):
        preload_renderer(MODULE, kind)
    assert _preload_threads() == []


def test_live_sources_import_the_renderer_in_the_background() -> None:
    sys.modules.pop(MODULE, None)
    preload_renderer(MODULE, "live-procfs")
    for thread in _preload_threads():
        thread.join(timeout=10)
    assert MODULE in sys.modules
