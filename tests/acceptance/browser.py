"""A real browser for the console's acceptance tests: Debian's Chromium driven by Playwright.

Playwright's own browser downloads are never used: ``executable_path`` points at ``/usr/bin/chromium``.
Without it the browser tests skip saying how to install it, except under CI, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.shared import under_ci

CHROMIUM = Path(os.environ.get("MACHINERY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where screenshots of each page go (``test-output/console`` unless ``MACHINERY_TEST_OUTPUT`` says).
OUTPUT = Path(os.environ.get("MACHINERY_TEST_OUTPUT", Path(__file__).resolve().parents[2] / "test-output"))
HOW_TO_INSTALL = (
    f"Chromium is not installed at {CHROMIUM}: the console's browser tests need Debian's chromium package "
    "(`sudo apt-get install chromium`)"
)


def require_chromium() -> None:
    """Skip (or, under CI, fail) when there is no Chromium to drive."""
    if CHROMIUM.exists():
        return
    if under_ci():
        pytest.fail(f"{HOW_TO_INSTALL}; CI must run the browser tests", pytrace=False)
    pytest.skip(HOW_TO_INSTALL)


@contextmanager
def chromium(user_data: Path) -> Iterator[Any]:
    """A fresh Chromium (its own user-data directory) as a Playwright persistent context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(user_data),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            context.close()


class Gates:
    """A loopback HTTP service for tasks: ``POST /gate/<key>`` answers once :meth:`open` is called for
    ``key``; ``POST /fail/<error>`` answers 500 with that error; ``POST /once/<key>`` fails its first call
    (error ``Once``) and succeeds after; ``POST /echo`` returns its body."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._gates: dict[str, asyncio.Event] = {}
        self._failed_once: set[str] = set()
        self.waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        app = web.Application()
        app.router.add_post("/gate/{key}", self._gate)
        app.router.add_post("/fail/{error}", self._fail)
        app.router.add_post("/echo", self._echo)
        app.router.add_post("/once/{key}", self._once)
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="gates", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(listener), self._loop).result(10)

    async def _serve(self, listener: socket.socket) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, listener).start()

    def _event(self, key: str) -> asyncio.Event:
        return self._gates.setdefault(key, asyncio.Event())

    def reached(self, key: str) -> threading.Event:
        """Set once a task call is waiting at gate ``key``."""
        with self._lock:
            return self.waiting.setdefault(key, threading.Event())

    async def _gate(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        body = await request.json()
        self.reached(key).set()
        await self._event(key).wait()
        return web.json_response({"gate": key, "input": body})

    async def _fail(self, request: web.Request) -> web.Response:
        error = request.match_info["error"]
        return web.json_response({"error": error, "cause": f"{error} on purpose"}, status=500)

    async def _once(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if key not in self._failed_once:
            self._failed_once.add(key)
            return web.json_response({"error": "Once", "cause": "fails the first call"}, status=500)
        return web.json_response({"once": key})

    async def _echo(self, request: web.Request) -> web.Response:
        return web.json_response(await request.json())

    def open(self, key: str) -> None:
        self._loop.call_soon_threadsafe(self._event(key).set)

    def close(self) -> None:
        for event in list(self._gates.values()):
            self._loop.call_soon_threadsafe(event.set)
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
