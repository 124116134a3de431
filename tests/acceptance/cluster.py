"""Helpers of the scale-out tests: API and worker processes on one PostgreSQL, and a recording service.

:class:`Cluster` starts ``machinery serve --no-worker`` and ``machinery worker`` processes the way a
deployment runs them. :class:`RecordingService` is a loopback HTTP service that answers task calls,
records each call's ``Idempotency-Key`` and which worker process made it, and holds calls to ``/hold``
until the test opens its gate.

Which worker made a call is read from the operating system, not from anything machinery sends: the
service looks up the client end of each new connection in ``/proc/net/tcp`` and finds the worker process
holding that socket in ``/proc/<pid>/fd`` (Linux only).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from examples.demo import REPOSITORY, free_port, wait_until_healthy

#: The multi-state workflow: Pass → Task → Choice → Task → Parallel of two Tasks → Succeed.
STATE_NAMES = ("Prepare", "Fetch", "Route", "Both", "Left", "Right", "Done")


def scale_out_definition(service: str) -> dict[str, Any]:
    """The workflow of the scale-out tests; its tasks call ``service`` (a base URL)."""
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Fetch"},
            "Fetch": {
                "Type": "Task",
                "Resource": f"{service}/fetch",
                "ResultPath": "$.fetch",
                "Next": "Route",
            },
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fetch.even", "BooleanEquals": True, "Next": "Even"}],
                "Default": "Odd",
            },
            "Even": {"Type": "Task", "Resource": f"{service}/even", "ResultPath": "$.branch", "Next": "Both"},
            "Odd": {"Type": "Task", "Resource": f"{service}/odd", "ResultPath": "$.branch", "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "ResultPath": "$.both",
                "Next": "Done",
                "Branches": [
                    {
                        "StartAt": "Left",
                        "States": {"Left": {"Type": "Task", "Resource": f"{service}/left", "End": True}},
                    },
                    {
                        "StartAt": "Right",
                        "States": {"Right": {"Type": "Task", "Resource": f"{service}/right", "End": True}},
                    },
                ],
            },
            "Done": {"Type": "Succeed"},
        },
    }


def scale_out_output(n: int) -> dict[str, Any]:
    """What an execution of :func:`scale_out_definition` started with ``{"n": n}`` returns."""
    branch = "even" if n % 2 == 0 else "odd"
    return {
        "n": n,
        "fetch": {"step": "fetch", "n": n, "even": n % 2 == 0},
        "branch": {"step": branch, "n": n},
        "both": [{"step": "left", "n": n}, {"step": "right", "n": n}],
    }


def check_scale_out_history(n: int, events: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """Every transition of one execution exactly once: the problems found (empty when it is right).

    ``events`` are ``(type, details)`` pairs in history order.
    """
    chosen = "Even" if n % 2 == 0 else "Odd"
    states = (*STATE_NAMES, chosen)
    entered: Counter[str] = Counter()
    exited: Counter[str] = Counter()
    scheduled: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for kind, details in events:
        kinds[kind] += 1
        if kind.endswith("StateEntered"):
            entered[details["name"]] += 1
        elif kind.endswith("StateExited"):
            exited[details["name"]] += 1
        elif kind == "TaskScheduled":
            scheduled[details["resource"].rsplit("/", 1)[1]] += 1
        elif kind == "TaskSucceeded":
            succeeded[json.loads(details["output"])["step"]] += 1
    tasks = ("fetch", chosen.lower(), "left", "right")
    wanted = {
        "entered": (entered, dict.fromkeys(states, 1)),
        "exited": (exited, dict.fromkeys(states, 1)),
        "scheduled": (scheduled, dict.fromkeys(tasks, 1)),
        "succeeded": (succeeded, dict.fromkeys(tasks, 1)),
    }
    problems = [f"{label}: {dict(found)}" for label, (found, expected) in wanted.items() if found != expected]
    for kind, count in (("ExecutionStarted", 1), ("ExecutionSucceeded", 1), ("TaskStarted", 4)):
        if kinds[kind] != count:
            problems.append(f"{kind} {kinds[kind]} times")
    failures = [kind for kind in kinds if "Fail" in kind or "TimedOut" in kind or "Aborted" in kind]
    if failures:
        problems.append(f"failure events {failures}")
    return problems


# Processes ---------------------------------------------------------------------------------------------


class Cluster:
    """``machinery serve --no-worker`` and ``machinery worker`` processes on one database.

    :param database_url: the PostgreSQL database every process shares.
    :param logs: directory for each process's output (``api.log``, ``worker-1.log``, ...).
    :param settings: extra ``MACHINERY_*`` environment variables for every process.
    """

    def __init__(self, database_url: str, logs: Path, settings: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.logs = logs
        self.environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MACHINERY_DATABASE_URL": database_url,
            # Several of these processes share the server with other tests: keep the pools small.
            "MACHINERY_PG_POOL_MAX": "4",
            **(settings or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.api_url = ""

    def start(self, workers: int) -> None:
        """Start the API process and ``workers`` workers together; return when the API answers."""
        port = free_port()
        self._spawn(
            "api",
            ["serve", "--no-worker", "--port", str(port), "--threads", "32"],
            {"MACHINERY_PG_POOL_MAX": "12"},
        )
        for _ in range(workers):
            self.start_worker()
        self.api_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(self.api_url, self.processes["api"])

    def start_worker(self) -> str:
        """Start one more ``machinery worker``; returns its name (``worker-<n>``)."""
        name = f"worker-{sum(1 for key in self.processes if key.startswith('worker-')) + 1}"
        self._spawn(name, ["worker"])
        return name

    def _spawn(self, name: str, arguments: list[str], settings: dict[str, str] | None = None) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "machinery", *arguments],
                cwd=REPOSITORY,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.environment, **(settings or {})},
            )

    def workers(self) -> dict[int, str]:
        """The running workers' names by process id."""
        return {
            process.pid: name
            for name, process in self.processes.items()
            if name.startswith("worker-") and process.poll() is None
        }

    def kill(self, name: str) -> None:
        """SIGKILL one process and reap it."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        """SIGTERM every process still running (SIGKILL after 10 s)."""
        running = [process for process in self.processes.values() if process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tails(self, characters: int = 3000) -> str:
        """The end of each process's log, for failure messages."""
        parts = []
        for name in self.processes:
            text = (self.logs / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name}.log\n{text[-characters:]}")
        return "\n".join(parts)


class Api:
    """A keep-alive JSON client of the API (one per thread)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def call(self, method: str, path: str, document: Any = None) -> tuple[int, Any]:
        body = None if document is None else json.dumps(document).encode()
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            status, payload = response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnects on the next request
            raise
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        self.connection.close()


# The recording service ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One task call the service received."""

    step: str
    key: str
    worker: str
    at: float


class SocketOwners:
    """Finds which of the given processes holds the client end of a loopback TCP connection."""

    def __init__(self) -> None:
        self.processes: dict[int, str] = {}

    def owner(self, client_port: int, server_port: int) -> str:
        inode = None
        wanted = (f"{client_port:04X}", f"{server_port:04X}")
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if (fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]) == wanted:
                    inode = fields[9]
                    break
        if inode is None:
            return "unknown"
        target = f"socket:[{inode}]"
        for pid, name in list(self.processes.items()):
            try:
                descriptors = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for descriptor in descriptors:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{descriptor}") == target:
                        return name
                except OSError:
                    continue
        return "unknown"


class RecordingService:
    """Answers ``POST /<step>`` with ``{"step": step, "n": n}`` (``/fetch`` adds ``even``); ``/hold``
    waits until :meth:`open_gate`. Every call is recorded before it is answered.

    An aiohttp server on its own event loop thread: workers open hundreds of connections at once.
    """

    def __init__(self) -> None:
        self.owners = SocketOwners()
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        # Which worker holds each connection, looked up once per connection while the client holds it.
        self._connections: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._loop = asyncio.new_event_loop()
        self._gate = asyncio.Event()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = int(listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        app = web.Application()
        app.router.add_post("/{step}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        threading.Thread(target=self._loop.run_forever, name="recording-service", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve(listener), self._loop).result(10)

    async def _serve(self, listener: socket.socket) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, listener, backlog=1024).start()

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        transport = request.transport
        worker = self._connections.get(transport) if transport is not None else None
        if worker is None:
            worker = self.owners.owner(request.transport.get_extra_info("peername")[1], self.port)
            if transport is not None:
                self._connections[transport] = worker
        step = request.match_info["step"]
        with self._changed:
            self.calls.append(Call(step, request.headers["Idempotency-Key"], worker, time.monotonic()))
            self._changed.notify_all()
        if step == "hold":
            await self._gate.wait()
        reply: dict[str, Any] = {"step": step, "n": body.get("n")}
        if step == "fetch":
            reply["even"] = body.get("n", 1) % 2 == 0
        return web.json_response(reply)

    def open_gate(self) -> None:
        """Answer the held calls and every later ``/hold`` call at once."""
        self._loop.call_soon_threadsafe(self._gate.set)

    def wait_for(self, condition: Callable[[list[Call]], bool], timeout: float) -> bool:
        """Block until ``condition(calls)`` holds (True) or ``timeout`` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self.calls), timeout)

    def snapshot(self) -> list[Call]:
        with self._changed:
            return list(self.calls)

    def close(self) -> None:
        self.open_gate()
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
