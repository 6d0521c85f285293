"""The exporter's HTTP face: a landing page at /, the metrics at /metrics.

Serving lives in ``render.metrics_http`` (the guard's ``--listen`` serves the
same families); this module adds what only the exporter does: its landing
page and the textfile written for node_exporter.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest

from ctguard.errors import CtguardError, SourceMissing
from ctguard.render.metrics_http import bind as bind_metrics
from ctguard.render.metrics_http import landing_page, make_registry, serve

__all__ = ["bind", "make_registry", "serve", "write_textfile"]


def bind(listen: str, registry: CollectorRegistry, what: str) -> WSGIServer:
    """The exporter's server on ``listen``, not serving yet."""
    about = f"Connection tracking (nf_conntrack) of {what}, read at each scrape."
    return bind_metrics(listen, registry, landing_page("ctguard exporter", about))


def write_textfile(path: Path, registry: CollectorRegistry) -> None:
    """The exposition written to a temporary file beside ``path``, then renamed
    over it (node_exporter's textfile collector reads only ``*.prom``)."""
    directory = path.parent
    if not directory.is_dir():
        raise SourceMissing(
            "the textfile directory does not exist",
            where=str(directory),
            hint="create it, or point --textfile at node_exporter's "
            "--collector.textfile.directory (Debian: /var/lib/prometheus/node-exporter)",
        )
    body = generate_latest(registry)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except PermissionError as err:
        raise CtguardError(
            "cannot write in the textfile directory", where=str(directory), hint="run as root"
        ) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as err:
        Path(temp).unlink(missing_ok=True)
        raise CtguardError(
            f"cannot write the textfile: {os.strerror(err.errno or 0)}", where=str(path)
        ) from err
