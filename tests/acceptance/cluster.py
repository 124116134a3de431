"""Helpers of the scale-out tests: API and worker processes on one PostgreSQL, and a recording service.

:class:`Cluster` starts ``machinery serve --no-worker`` and ``machinery worker`` processes the way a
deployment runs them. :class:`RecordingService` is a loopback HTTP service that answers task calls,
records each call's ``Idempotency-Key`` and which worker process made it, and holds calls to ``/hold``
until the test opens its gate.

The service names the worker of each call from the ``X-Machinery-Worker`` header every task call carries
(``host:pid:random``), mapped to the cluster's process names by pid.
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
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from examples.demo import REPOSITORY, free_port, wait_until_healthy

#: Client threads that start and await executions.
CLIENTS = 8

#: The multi-state workflow: Pass → Task → Choice → Task → Parallel of two Tasks → Succeed.
STATE_NAMES = ("Prepare", "Fetch", "Route", "Both", "Left", "Right", "Done")


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


def hold_definition(service: str) -> dict[str, Any]:
    """First → Hold (the gate) → Last."""
    return {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": f"{service}/first", "ResultPath": "$.a", "Next": "Hold"},
            "Hold": {"Type": "Task", "Resource": f"{service}/hold", "ResultPath": "$.b", "Next": "Last"},
            "Last": {"Type": "Task", "Resource": f"{service}/last", "ResultPath": "$.c", "End": True},
        },
    }


def hold_output(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "a": {"step": "first", "n": n},
        "b": {"step": "hold", "n": n},
        "c": {"step": "last", "n": n},
    }


def check_hold_histories(database_url: str, ids: list[str]) -> None:
    """Each history holds each of the three tasks' transitions exactly once."""
    found = histories(database_url)
    for event_id in ids:
        kinds = Counter(kind for kind, _details in found[event_id])
        entered = Counter(details["name"] for kind, details in found[event_id] if kind == "TaskStateEntered")
        assert entered == {"First": 1, "Hold": 1, "Last": 1}, (event_id, found[event_id])
        assert kinds["TaskScheduled"] == kinds["TaskSucceeded"] == kinds["TaskStateExited"] == 3, kinds
        assert kinds["ExecutionSucceeded"] == 1, kinds
        assert not [kind for kind in kinds if "Fail" in kind], kinds


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` threads; re-raise the first failure."""
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported by the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def start_executions(api_url: str, workflow: str, inputs: list[int]) -> list[str]:
    """``POST /e/<workflow>?wait=0`` with ``{"n": n}`` for each input, from :data:`CLIENTS` threads."""
    ids: list[str] = [""] * len(inputs)

    def post(client: int) -> None:
        api = Api(api_url)
        try:
            for index in range(client, len(inputs), CLIENTS):
                status, record = api.call("POST", f"/e/{workflow}?wait=0", {"n": inputs[index]})
                assert status == 202, (status, record)
                ids[index] = record["event_id"]
        finally:
            api.close()

    _in_threads(CLIENTS, post)
    return ids


def await_executions(api_url: str, ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    """Long-poll ``GET /e/<id>?wait=…`` until each execution has ended; the final records by id.

    A request the API answers with an error (the database restarting) or a dropped connection is
    repeated until ``deadline`` (a ``time.monotonic()`` value).
    """
    records: dict[str, dict[str, Any]] = {}

    def poll(client: int) -> None:
        api = Api(api_url)
        try:
            for index in range(client, len(ids), CLIENTS):
                while True:
                    remaining = deadline - time.monotonic()
                    assert remaining > 0, f"execution {ids[index]} still running at the deadline"
                    try:
                        status, record = api.call("GET", f"/e/{ids[index]}?wait={min(remaining, 20):.1f}")
                    except OSError:
                        status, record = 0, None
                    if status == 200 and record["status"] != "RUNNING":
                        records[ids[index]] = record
                        break
                    if status != 200:
                        time.sleep(0.2)  # the API or its database is restarting: nothing to await
        finally:
            api.close()

    _in_threads(CLIENTS, poll)
    return records


def histories(database_url: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every execution's history, read from the database: ``(type, details)`` in order, by id."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT execution_id, type, details FROM history ORDER BY execution_id, event_id"
        ).fetchall()
    for execution_id, kind, details in rows:
        found.setdefault(execution_id, []).append((kind, details))
    return found


def check_executions(
    database_url: str, ids: list[str], inputs: list[int], records: dict[str, dict[str, Any]]
) -> None:
    """Each execution succeeded with its output, and each history holds each transition once."""
    wrong = [
        (event_id, records[event_id])
        for event_id, n in zip(ids, inputs, strict=True)
        if records[event_id]["status"] != "SUCCEEDED" or records[event_id]["output"] != scale_out_output(n)
    ]
    assert not wrong, f"{len(wrong)} executions ended wrongly, e.g. {json.dumps(wrong[:3])}"
    found = histories(database_url)
    problems = {
        event_id: check_scale_out_history(n, found.get(event_id, []))
        for event_id, n in zip(ids, inputs, strict=True)
    }
    problems = {event_id: found for event_id, found in problems.items() if found}
    assert not problems, f"{len(problems)} histories are wrong, e.g. {list(problems.items())[:3]}"


def register(api_url: str, name: str, definition: dict[str, Any]) -> None:
    api = Api(api_url)
    try:
        status, reply = api.call("POST", "/w", {"name": name, "definition": definition})
        assert status == 201, reply
    finally:
        api.close()


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


class WorkerNames:
    """Names the worker of a call from its ``X-Machinery-Worker`` header (``host:pid:random``)."""

    def __init__(self) -> None:
        self.processes: dict[int, str] = {}

    def name(self, header: str | None) -> str:
        try:
            pid = int((header or "").split(":")[1])
        except (IndexError, ValueError):
            return "unknown"
        return self.processes.get(pid, "unknown")


class RecordingService:
    """Answers ``POST /<step>`` with ``{"step": step, "n": n}`` (``/fetch`` adds ``even``); ``/hold``
    waits until :meth:`open_gate`. Every call is recorded before it is answered.

    An aiohttp server on its own event loop thread: workers open hundreds of connections at once.
    """

    def __init__(self) -> None:
        self.owners = WorkerNames()
        self.calls: list[Call] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._gate = asyncio.Event()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = int(listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        app = web.Application()
        app.router.add_post("/{step}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="recording-service", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(listener), self._loop).result(10)

    async def _serve(self, listener: socket.socket) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, listener, backlog=1024).start()

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        worker = self.owners.name(request.headers.get("X-Machinery-Worker"))
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
        self._thread.join(10)
        self._loop.close()
