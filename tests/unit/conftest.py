"""Fixtures of the unit tests: apps on throw-away SQLite files, the example services, loopback servers."""

from __future__ import annotations

import itertools
import json
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.services.textservices import KINDS, serve, stop
from machinery.api import create_app, orchestrator_of

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on fresh SQLite files; ``make_app(START_WORKER=True)`` runs a worker.

    Every app's worker stops and its storage closes at teardown.
    """
    apps: list[Flask] = []
    numbers = itertools.count(1)

    def make(**config: Any) -> Flask:
        settings: dict[str, Any] = {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / f'machinery-{next(numbers)}.db'}",
            "START_WORKER": False,
            "SYNC_WAIT": 10.0,
            "POLL_INTERVAL": 0.2,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        settings.update(config)
        app = create_app(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        orchestrator = orchestrator_of(app)
        orchestrator.stop()
        orchestrator.storage.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app without a running worker: events stay RUNNING; for validation and read routes."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_app(make_app: Callable[..., Flask]) -> Flask:
    """An app whose worker runs events to the end."""
    return make_app(START_WORKER=True)


@pytest.fixture
def live_client(live_app: Flask) -> FlaskClient:
    return live_app.test_client()


@pytest.fixture(scope="session")
def text_services() -> Iterator[dict[str, str]]:
    """The ``/event`` URLs of the example services ``upper``, ``reverse``, ``space-counter`` (free ports)."""
    servers = {kind: serve(kind, "127.0.0.1", 0) for kind in KINDS}
    try:
        yield {kind: f"{server.url}/event" for kind, server in servers.items()}
    finally:
        for server in servers.values():
            stop(server)


@dataclass
class Received:
    """One request a loopback server got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, str, bytes]


@dataclass
class Loopback:
    """A loopback HTTP server answering with ``respond``; what it received is queued in ``received``."""

    url: str
    server: ThreadingHTTPServer
    received: queue.Queue[Received] = field(default_factory=queue.Queue)

    def next_request(self, timeout: float = 10.0) -> Received:
        return self.received.get(timeout=timeout)


@pytest.fixture
def loopback() -> Iterator[Callable[[Callable[[Received], Reply]], Loopback]]:
    """Start loopback servers: ``loopback(respond)``, ``respond(request) -> (status, content_type, body)``."""
    started: list[Loopback] = []
    release = threading.Event()

    def start(respond: Callable[[Received], Reply]) -> Loopback:
        holder: list[Loopback] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                holder[0].received.put(request)
                status, content_type, body = respond(request)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        host, port = server.server_address[:2]
        holder.append(Loopback(f"http://{host!s}:{port}", server))
        started.append(holder[0])
        return holder[0]

    start.release = release  # type: ignore[attr-defined]
    yield start
    release.set()
    for running in started:
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture
def release_blocked(loopback: Any) -> threading.Event:
    """Set at teardown (before the loopback servers stop): handlers waiting on it return then."""
    event: threading.Event = loopback.release
    return event


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
