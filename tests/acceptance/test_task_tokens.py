"""``.waitForTaskToken`` end to end: a real server, a loopback service that keeps the task token, and the
test reporting the outcome later through ``POST /tasks/success|failure|heartbeat``.

The service answers at once and hands each call (its ``X-Machinery-Task-Token`` header and its body, where
``$$.Task.Token`` was placed by ``Parameters``) to the test through a queue. Heartbeats are timed by
nature: the heartbeat test keeps one ``HeartbeatSeconds: 2`` task alive for about three seconds while a
second one, left without heartbeats, fails with ``States.HeartbeatTimeout`` in the same window.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from examples.demo import request

#: Seconds to wait for the service to be called, or for an execution to end.
PATIENCE = 15.0
HEARTBEAT_SECONDS = 2


@dataclass(frozen=True)
class Call:
    """One call the token service received."""

    header_token: str | None
    body: Any


class TokenService:
    """A loopback ``.waitForTaskToken`` service: answers at once, queues each call for the test."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Call] = queue.Queue()
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
                reply = b'{"accepted": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                self.wfile.flush()
                calls.put(Call(self.headers.get("X-Machinery-Task-Token"), body))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next_call(self) -> Call:
        return self.calls.get(timeout=PATIENCE)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_service() -> Iterator[TokenService]:
    service = TokenService()
    try:
        yield service
    finally:
        service.close()


def _definition(resource: str, heartbeat: bool = False) -> dict[str, Any]:
    ask: dict[str, Any] = {
        "Type": "Task",
        "Resource": f"{resource}.waitForTaskToken",
        "Parameters": {"order.$": "$.order", "token.$": "$$.Task.Token"},
        "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "Rejected"}],
        "End": True,
    }
    if heartbeat:
        ask["HeartbeatSeconds"] = HEARTBEAT_SECONDS
    return {
        "StartAt": "Ask",
        "States": {"Ask": ask, "Rejected": {"Type": "Pass", "End": True}},
    }


@pytest.fixture
def server(machinery_server: Callable[[], str], token_service: TokenService) -> str:
    """A server with the ``approver`` service and two workflows: ``approval`` calls the service by name,
    ``approval-heartbeat`` calls its URL and sets ``HeartbeatSeconds``."""
    base = machinery_server()
    service = {"name": "approver", "address": token_service.url, "inputs": [], "outputs": []}
    status, body = request("POST", f"{base}/s", service)
    assert status == 201, body
    for name, definition in (
        ("approval", _definition("approver")),
        ("approval-heartbeat", _definition(f"{token_service.url}approve", heartbeat=True)),
    ):
        status, body = request("POST", f"{base}/w", {"name": name, "definition": definition})
        assert status == 201, body
    return base


def _start(base: str, workflow: str, order: int) -> str:
    status, body = request("POST", f"{base}/e/{workflow}?wait=0", {"order": order})
    assert status == 202, body
    return str(body["event_id"])


def _finished(base: str, event_id: str) -> dict[str, Any]:
    status, record = request("GET", f"{base}/e/{event_id}?wait={PATIENCE}")
    assert status == 200, record
    assert record["status"] != "RUNNING", record
    return dict(record)


def _report(base: str, outcome: str, token: str, **fields: Any) -> tuple[int, Any]:
    return request("POST", f"{base}/tasks/{outcome}", {"taskToken": token, **fields})


def _token_of(call: Call, order: int) -> str:
    """The token from the header, checked against the one ``$$.Task.Token`` put into the body."""
    assert call.body == {"order": order, "token": call.header_token}
    assert call.header_token
    return call.header_token


def test_success_reported_later_ends_the_execution_with_that_output(
    server: str, token_service: TokenService
) -> None:
    event_id = _start(server, "approval", 1)
    token = _token_of(token_service.next_call(), 1)

    status, body = request("GET", f"{server}/e/{event_id}")
    assert (status, body["status"]) == (200, "RUNNING")
    assert _report(server, "success", token, output={"approved": True}) == (200, {"accepted": True})

    record = _finished(server, event_id)
    assert (record["status"], record["output"]) == ("SUCCEEDED", {"approved": True})
    status, history = request("GET", f"{server}/e/{event_id}/history")
    types = [event["type"] for event in history["events"]]
    assert types[types.index("TaskScheduled") :][:3] == ["TaskScheduled", "TaskStarted", "TaskSucceeded"]

    # The token is spent: reusing it (any outcome) is TaskTimedOut, an unknown token is 404.
    for outcome, fields in (("success", {"output": 1}), ("failure", {}), ("heartbeat", {})):
        status, body = _report(server, outcome, token, **fields)
        assert (status, body["error"]) == (409, "TaskTimedOut"), body
    status, body = _report(server, "success", "not-a-token", output=1)
    assert status == 404, body
    status, body = _report(server, "success", token.swapcase(), output=1)
    assert status == 404, body


def test_failure_fails_the_execution_or_is_caught(server: str, token_service: TokenService) -> None:
    failing = _start(server, "approval", 2)
    failing_token = _token_of(token_service.next_call(), 2)
    caught = _start(server, "approval", 3)
    caught_token = _token_of(token_service.next_call(), 3)

    status, _ = _report(server, "failure", failing_token, error="OutOfStock", cause="no more widgets")
    assert status == 200
    status, _ = _report(server, "failure", caught_token, error="Rejected", cause="too expensive")
    assert status == 200

    record = _finished(server, failing)
    assert (record["status"], record["error"], record["cause"]) == ("FAILED", "OutOfStock", "no more widgets")
    record = _finished(server, caught)
    assert record["status"] == "SUCCEEDED"
    assert record["output"] == {"order": 3, "rejection": {"Error": "Rejected", "Cause": "too expensive"}}
    status, body = _report(server, "failure", failing_token, error="Again")
    assert (status, body["error"]) == (409, "TaskTimedOut")


def test_heartbeats_keep_the_task_alive_and_a_missing_heartbeat_times_it_out(
    server: str, token_service: TokenService
) -> None:
    kept = _start(server, "approval-heartbeat", 4)
    kept_token = _token_of(token_service.next_call(), 4)
    silent = _start(server, "approval-heartbeat", 5)
    silent_token = _token_of(token_service.next_call(), 5)

    # Beat every half second for 1.5 heartbeat periods: without the heartbeats it would have failed.
    alive_until = time.monotonic() + HEARTBEAT_SECONDS * 1.5
    while time.monotonic() < alive_until:
        status, body = _report(server, "heartbeat", kept_token)
        assert status == 200, body
        time.sleep(0.5)

    status, record = request("GET", f"{server}/e/{kept}")
    assert record["status"] == "RUNNING", record
    timed_out = _finished(server, silent)
    assert (timed_out["status"], timed_out["error"]) == ("FAILED", "States.HeartbeatTimeout")
    status, history = request("GET", f"{server}/e/{silent}/history")
    assert "TaskTimedOut" in [event["type"] for event in history["events"]]
    status, body = _report(server, "heartbeat", silent_token)
    assert (status, body["error"]) == (409, "TaskTimedOut")

    assert _report(server, "success", kept_token, output={"approved": 4})[0] == 200
    record = _finished(server, kept)
    assert (record["status"], record["output"]) == ("SUCCEEDED", {"approved": 4})
