"""The exporter's HTTP face: a landing page at /, the metrics at /metrics.

A custom prometheus-client collector reads one collection round at each
scrape (the kernel's counters are already counters: nothing is cached), in
a private registry (no process_* or python_* series).  A source that fails
is a 0 in ``ctguard_scrape_source_success``, never an HTTP 500.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector as PromCollector

from ctguard import __version__
from ctguard.errors import CtguardError, SourceMissing, UsageError
from ctguard.gather.collect import Collector
from ctguard.gather.kmsg_follow import KmsgFollower
from ctguard.render.metrics import collection_metrics

LANDING = """<!DOCTYPE html>
<html><head><title>ctguard exporter</title></head>
<body><h1>ctguard exporter {version}</h1>
<p>Connection tracking (nf_conntrack) of {what}, read at each scrape.</p>
<p><a href="/metrics">Metrics</a></p>
<p>Every metric, and the alerts and dashboard that use them: docs/monitoring.md.</p>
</body></html>
"""


class ConntrackCollector(PromCollector):
    """prometheus-client collector: one round per scrape."""

    def __init__(self, collector: Collector, follower: KmsgFollower | None) -> None:
        self.collector = collector
        self.follower = follower

    def describe(self) -> Iterable[Metric]:
        return []  # registration must not read the kernel

    def collect(self) -> Iterator[Metric]:
        counts = self.follower.tally.counts() if self.follower is not None else None
        yield from collection_metrics(self.collector.collect(), counts)


def make_registry(collector: Collector, follower: KmsgFollower | None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConntrackCollector(collector, follower))
    return registry


def make_app(registry: CollectorRegistry, what: str) -> Callable[..., Iterable[bytes]]:
    landing = LANDING.format(version=__version__, what=what).encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"only GET\n"]
        if path == "/metrics":
            body = generate_latest(registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [landing]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: the metrics are at /metrics\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape on stderr helps nobody


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def parse_listen(text: str) -> tuple[str, int]:
    """ADDR:PORT, [V6ADDR]:PORT or :PORT (all addresses) -> (host, port); port 0 = any free."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise UsageError(
            f"--listen {text!r} is not ADDR:PORT", hint="e.g. --listen 127.0.0.1:10371"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


def bind(listen: str, registry: CollectorRegistry, what: str) -> WSGIServer:
    host, port = parse_listen(listen)
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        return make_server(
            host, port, make_app(registry, what), server_class, handler_class=_QuietHandler
        )
    except socket.gaierror as err:
        raise UsageError(f"--listen {listen!r}: unknown address ({err.strerror})") from err
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise CtguardError(
                f"port {port} is already in use",
                where=listen,
                hint="stop what listens there (ss -ltnp) or pick another: --listen ADDR:PORT",
            ) from err
        if err.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise UsageError(f"--listen {listen!r}: no such address on this host") from err
        if err.errno == errno.EACCES:
            raise CtguardError(
                f"not allowed to listen on port {port}", where=listen, hint="use a port above 1024"
            ) from err
        raise CtguardError(f"cannot listen: {os.strerror(err.errno or 0)}", where=listen) from err


def serve(server: WSGIServer, stop: threading.Event) -> None:
    """Serve until ``stop`` is set (SIGTERM/SIGINT handlers set it)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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
