"""Event sources against the real brokers: 1,000 messages start 1,000 executions, none twice, through a
server killed with SIGKILL mid-stream and through a broker restart; messages that are not JSON or do not
match the workflow's inputs are rejected and acknowledged; a saturated worker stops consuming.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.demo import spawn_machinery
from machinery.control import sources as control
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.storage.sqlite import SQLiteStorage
from tests.acceptance.brokers import (
    NATS_URL,
    RABBITMQ_URL,
    REDIS_URL,
    Broker,
    Nats,
    RabbitMQ,
    Redis,
    broker_lock,  # noqa: F401 (the fixture)
    numbered,
    private_nats,
    private_redis,
    require,
    unique,
)

pytestmark = pytest.mark.usefixtures("broker_lock")

MESSAGES = 1000
TYPED = {
    "name": "typed",
    "inputs": [{"name": "n", "type": "integer"}],
    "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
}
BAD = [("bad-json", b"{not json"), ("bad-type", b'{"n": "seven"}')]
SERVER_SETTINGS = {"MACHINERY_SOURCE_REFRESH_SECONDS": "0.2", "MACHINERY_POLL_INTERVAL": "0.1"}


def shared(kind: str) -> Broker:
    if kind == "rabbitmq":
        require("127.0.0.1", 5672, "RabbitMQ")
        return RabbitMQ(RABBITMQ_URL)
    if kind == "nats":
        require("127.0.0.1", 4222, "NATS")
        return Nats(NATS_URL)
    require("127.0.0.1", 6379, "Redis")
    return Redis(REDIS_URL)


class Stored:
    """The test's view of the server's SQLite database (its own connection)."""

    def __init__(self, path: Path, create: bool = True) -> None:
        self.storage = SQLiteStorage(str(path))
        if create:
            self.storage.migrate()
            self.storage.save_workflow("typed", TYPED, TYPED["definition"], [], False, time.time())

    def executions(self) -> list[Any]:
        workflow = self.storage.get_workflow("typed")
        assert workflow is not None
        return self.storage.list_executions(workflow.workflow_id, None, 100_000, None)

    def count(self) -> int:
        return len(self.executions())

    def source(self, name: str = "orders") -> dict[str, Any]:
        return control.source_json(self.storage, control.find_source(self.storage, name), time.time())


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def serve(db: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return spawn_machinery(f"sqlite:///{db}", output, settings=SERVER_SETTINGS)[0]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def check_exactly_once(stored: Stored) -> None:
    executions = stored.executions()
    assert len(executions) == MESSAGES
    inputs = Counter(record.input["n"] for record in executions)
    assert inputs == Counter(range(MESSAGES)), "some message started twice or never"
    assert len({record.execution_id for record in executions}) == MESSAGES


def check_rejections(stored: Stored) -> None:
    found = control.rejections(stored.storage, control.find_source(stored.storage, "orders"), 10)
    reasons = sorted(rejection["reason"] for rejection in found)
    assert len(reasons) == 2, found
    assert reasons[0].startswith("event data does not match the workflow's inputs")
    assert reasons[1].startswith("the message is not JSON")
    typed = next(r for r in found if r["reason"].startswith("event data"))
    assert typed["errors"] == [{"field": "n", "message": "must be of type integer, got str"}]
    assert typed["body"] == '{"n": "seven"}'


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "db.sqlite", tmp_path / "server.log"


def run_through_a_crash_or_restart(
    broker: Broker,
    db: Path,
    log: Path,
    interrupt: Callable[[subprocess.Popen[bytes]], subprocess.Popen[bytes]],
) -> dict[str, Any]:
    """Publish 500 messages (and two bad ones), let a server consume them, ``interrupt`` it mid-stream,
    publish 500 more, wait until every message is settled, then deliver them all again; the source's
    final state."""
    name = unique(broker.type)
    broker.run(broker.prepare(name))
    try:
        stored = Stored(db)
        body = {
            "name": "orders",
            "workflow": "typed",
            "type": broker.type,
            "url": broker.url,
            **broker.options(name),
        }
        if broker.type == "rabbitmq":
            body["prefetch"] = 10
        else:
            body["batch"] = 10
        control.create_source(stored.storage, body, time.time())
        messages = numbered(MESSAGES, "m")
        # Half the stream before the interruption, half after: it lands mid-stream however fast the
        # first half is consumed (a broker takes longer to stop than 500 messages take to start).
        broker.run(broker.publish(name, messages[:500] + BAD))
        process = serve(db, log)
        try:
            wait_until(lambda: stored.count() >= 250, 60, "the first executions")
            process = interrupt(process)
            broker.run(broker.publish(name, messages[500:]))
            wait_until(lambda: stored.count() >= MESSAGES, 90, "every execution")
            wait_until(lambda: broker.run(broker.left(name)) == 0, 60, "every message acknowledged")
            wait_until(lambda: stored.source()["state"]["rejected"] >= 2, 10, "the rejections reported")
            check_exactly_once(stored)
            check_rejections(stored)
            if broker.type == "rabbitmq":
                broker.run(broker.publish(name, messages))  # the same message ids again
            else:
                broker.run(broker.replay(name))
            wait_until(lambda: broker.run(broker.left(name)) == 0, 60, "the replay acknowledged")
            wait_until(
                lambda: stored.source()["state"]["duplicates"] >= MESSAGES, 10, "the duplicates reported"
            )
            check_exactly_once(stored)
            wait_until(lambda: stored.source()["state"]["lag"] == 0, 10, "no lag reported")
            state: dict[str, Any] = stored.source()["state"]
            assert state["connected"] is True
        finally:
            stop(process)
        return state
    finally:
        broker.run(broker.cleanup(name))


@pytest.mark.parametrize("kind", ["rabbitmq", "nats", "redis"])
def test_a_thousand_messages_through_a_server_killed_mid_stream(
    kind: str, workspace: tuple[Path, Path]
) -> None:
    broker = shared(kind)
    db, log = workspace
    killed_at: list[int] = []

    def kill_and_restart(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at.append(Stored(db, create=False).count())
        return serve(db, log)

    run_through_a_crash_or_restart(broker, db, log, kill_and_restart)
    assert 0 < killed_at[0] < MESSAGES, f"the kill did not land mid-stream ({killed_at})"


@pytest.mark.restarts_broker
@pytest.mark.parametrize("kind", ["rabbitmq", "nats", "redis"])
def test_a_thousand_messages_through_a_broker_restart(
    kind: str, workspace: tuple[Path, Path], tmp_path: Path
) -> None:
    db, log = workspace
    server = None
    if kind == "rabbitmq":
        broker: Broker = shared(kind)
    elif kind == "nats":
        broker, server = private_nats(tmp_path)
    else:
        broker, server = private_redis(tmp_path)
    if server is not None:
        server.start()
    restarted_at: list[int] = []

    def restart_broker(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        broker.restart()
        restarted_at.append(Stored(db, create=False).count())
        return process

    try:
        state = run_through_a_crash_or_restart(broker, db, log, restart_broker)
        assert restarted_at[0] < MESSAGES, f"the restart did not land mid-stream ({restarted_at})"
        assert state["reconnects"] >= 1
    finally:
        if server is not None:
            server.stop()


def test_a_saturated_worker_stops_consuming_until_it_has_room(tmp_path: Path) -> None:
    """Back-pressure: executions whose task is held fill the worker; the source waits, then goes on."""
    broker = shared("redis")
    held = threading.Event()
    calls: list[int] = []
    lock = threading.Lock()

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            with lock:
                calls.append(body["n"])
            held.wait(30)
            reply = b"{}"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    service = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.daemon_threads = True
    threading.Thread(target=service.serve_forever, daemon=True).start()
    name = unique("redis")
    storage = SQLiteStorage(str(tmp_path / "db.sqlite"))
    storage.migrate()
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": f"http://127.0.0.1:{service.server_address[1]}/",
                "End": True,
            }
        },
    }
    storage.save_workflow("held", {"name": "held"}, definition, [], False, time.time())
    settings = WorkerSettings(poll_interval=0.05, max_in_flight=4, source_refresh_seconds=0.1)
    worker = Worker(storage, settings)
    worker.start()
    try:
        body = {
            "name": "orders",
            "workflow": "held",
            "type": "redis",
            "url": broker.url,
            "stream": name,
            "batch": 2,
        }
        source = control.create_source(storage, body, time.time())
        worker.refresh_sources()
        broker.run(broker.publish(name, numbered(30, "m")))
        wait_until(lambda: len(calls) >= 4, 20, "the worker to fill up")
        wait_until(
            lambda: control.source_json(storage, source, time.time())["state"]["saturated"],
            10,
            "saturation reported",
        )
        time.sleep(0.5)  # give a consumer that ignored back-pressure the time to take more
        workflow = storage.get_workflow("held")
        assert workflow is not None
        started = len(storage.list_executions(workflow.workflow_id, None, 100, None))
        # Four tasks hold the worker; the consumer stops with at most one more batch taken.
        assert 4 <= started <= 4 + 2, started
        assert broker.run(broker.left(name)) >= 30 - started
        held.set()
        wait_until(lambda: broker.run(broker.left(name)) == 0, 30, "the rest consumed")
        wait_until(lambda: len(calls) == 30, 30, "every execution's call")
        assert sorted(calls) == list(range(30))
    finally:
        held.set()
        worker.stop()
        service.shutdown()
        service.server_close()
        broker.run(broker.cleanup(name))
