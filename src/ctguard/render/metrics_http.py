"""Serving Prometheus metrics over HTTP, for every face that serves them
(`ctguard exporter`, `ctguard guard --listen`): a landing page at /, the
metrics at /metrics, the connection-tracking families read at each scrape.

A custom prometheus-client collector reads one collection round at each
scrape (the kernel's counters are already counters: nothing is cached), in
a private registry (no process_* or python_* series).  A source that fails
is a 0 in ``ctguard_scrape_source_success``, never an HTTP 500.
"""

from __future__ import annotations

import errno
import html
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector as PromCollector

from ctguard import __version__
from ctguard.errors import CtguardError, UsageError
from ctguard.gather.collect import Collector
from ctguard.gather.kmsg_follow import KmsgFollower
from ctguard.render.metrics import collection_metrics

LANDING = """<!DOCTYPE html>
<html><head><title>{title}</title></head>
<body><h1>{title} {version}</h1>
<p>{about}</p>
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


def landing_page(title: str, about: str) -> bytes:
    return LANDING.format(
        title=html.escape(title), version=__version__, about=html.escape(about)
    ).encode()


def make_app(registry: CollectorRegistry, landing: bytes) -> Callable[..., Iterable[bytes]]:
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


def bind(listen: str, registry: CollectorRegistry, landing: bytes) -> WSGIServer:
    """The server bound to ``listen`` (not serving yet); a clear error if it cannot be."""
    host, port = parse_listen(listen)
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    try:
        return make_server(
            host, port, make_app(registry, landing), server_class, handler_class=_QuietHandler
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


def shown_address(server: WSGIServer) -> str:
    """http://HOST:PORT of a bound server ([V6]:PORT for IPv6)."""
    host, port = server.server_address[:2]
    shown = f"[{host!s}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}"


class Serving:
    """A bound server answering in a thread of its own until :meth:`stop`."""

    def __init__(self, server: WSGIServer) -> None:
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="ctguard-metrics",
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(server: WSGIServer, stop: threading.Event) -> None:
    """Serve until ``stop`` is set (SIGTERM/SIGINT handlers set it)."""
    serving = Serving(server)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        serving.stop()
