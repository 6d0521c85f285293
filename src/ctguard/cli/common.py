"""Options and helpers every command shares (the CLI conventions).

- every reading command: ``--json`` (stable keys) and ``--root DIR|FILE.tar.gz``;
- every command touching kernel state: ``--netns NAME|PID|PATH``;
- every changing command: prints its plan and changes nothing without ``--yes``.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ctguard.cli.env import Environment
from ctguard.errors import CtguardError, SourceMissing, UsageError
from ctguard.kernel.root import KernelRoot
from ctguard.model.netns_ref import NetnsRef


def add_read_options(parser: argparse.ArgumentParser, *, netns: bool = True) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON (stable keys) instead of text"
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="read a bundle made by `ctguard capture` (directory or .tar.gz) instead of this host",
    )
    if netns:
        parser.add_argument(
            "--netns",
            metavar="NS",
            help="read another network namespace: an `ip netns` NAME, a PID, or a path "
            "such as /proc/PID/ns/net",
        )


def open_root(spec: str | None) -> KernelRoot:
    """The live host, a capture directory, or a capture .tar.gz (extracted to a temp dir)."""
    if spec is None:
        return KernelRoot.live()
    path = Path(spec)
    if path.is_dir():
        if not (path / "proc").is_dir():
            raise SourceMissing(
                "not a ctguard bundle: no proc/ directory inside",
                where=str(path),
                hint="make one with `sudo ctguard capture DIR` on the host to analyse",
            )
        return replace(KernelRoot.from_bundle(path), origin=spec)
    if path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
        import tarfile  # only for packed bundles

        from ctguard.kernel.bundle_archive import extract_bundle

        target = Path(tempfile.mkdtemp(prefix="ctguard-bundle-"))
        atexit.register(shutil.rmtree, target, True)
        try:
            with tarfile.open(path) as archive:
                extract_bundle(archive, target)
        except (tarfile.TarError, OSError) as err:
            raise CtguardError(f"cannot unpack bundle: {err}", where=str(path)) from err
        inner = [p for p in target.iterdir() if p.is_dir()]
        base = inner[0] if len(inner) == 1 and not (target / "proc").exists() else target
        return replace(open_root(str(base)), origin=spec)
    raise SourceMissing(
        "bundle not found",
        where=str(path),
        hint="pass a directory or .tar.gz made by `ctguard capture`",
    )


def resolve_netns_option(root: KernelRoot, spec: str | None) -> NetnsRef | None:
    if spec is None:
        return None
    if not root.is_live:
        raise UsageError(
            "--netns reads a live namespace and cannot be combined with --root",
            hint="capture the namespace with `ctguard capture --netns NS DIR`",
        )
    from ctguard.kernel.netns import resolve_netns

    return resolve_netns(spec)


def write_json(env: Environment, payload: Any) -> None:
    import json

    json.dump(payload, env.stdout, indent=2, sort_keys=False, default=str)
    env.stdout.write("\n")


def preload_renderer(module: str, source_kind: str) -> Callable[[], None] | None:
    """Import a text renderer (and rich) off the critical path; for a file,
    return the import for ``scan_table``'s ``while_waiting``.

    The kernel prints the live table at its own pace and the parser waits on
    it part of the time: the import runs in a background thread meanwhile.
    A file scan may fork workers, and a fork must not happen halfway through
    an import: there it runs once they are forked, while they scan.
    """
    import importlib

    def load() -> None:
        for name in (module, "rich.console"):  # make_console's import too
            importlib.import_module(name)

    if not source_kind.startswith("live"):
        return load
    import threading

    threading.Thread(target=load, name="ctguard-preload", daemon=True).start()
    return None


def make_console(env: Environment) -> Any:
    """A rich Console on the environment's stdout (rich imported only here)."""
    from rich.console import Console

    return Console(
        file=env.stdout,
        force_terminal=env.color,
        no_color=not env.color,
        width=None if env.stdout_isatty else 110,
        highlight=False,
        soft_wrap=False,
    )
