"""``machinery serve`` killed with SIGKILL mid-execution and started again finishes every execution once.

A gate service holds the second task's calls until the test opens it, so the kill lands while calls are
in flight. After the restart every execution must succeed with each state's transition recorded exactly
once, and calls repeated after the crash must carry the same ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from examples.demo import free_port, request, spawn_machinery

EXECUTIONS = 20


class Gate:
    """Records calls and blocks them until opened."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.lock = threading.Condition()
        self.keys: list[str] = []
        self.blocked = 0

    def arrived(self, key: str) -> None:
        with self.lock:
            self.keys.append(key)
            self.blocked += 1
            self.lock.notify_all()

    def wait_for_blocked(self, count: int, timeout: float) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.blocked >= count, timeout)


def _gate_server(gate: Gate) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            step = self.path.strip("/")
            if step == "hold":
                gate.arrived(self.headers["Idempotency-Key"])
                gate.open.wait(60)
            reply = json.dumps({f"{step}_seen": body.get("n")}).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply)
            except OSError:
                pass  # the caller was killed
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # every execution's call is held open at once

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _start(db: Path, port: int, log: Path, processes: int | None = None) -> subprocess.Popen[bytes]:
    """``machinery serve`` on ``db``, with ``--processes`` when given (else the default: one per core)."""
    with log.open("ab") as output:
        return spawn_machinery(
            f"sqlite:///{db}",
            output,
            port=port,
            settings={"MACHINERY_LEASE_SECONDS": "300"},
            args=[] if processes is None else ["--processes", str(processes)],
        )[0]


@pytest.fixture
def gate() -> Iterator[tuple[Gate, str]]:
    gate = Gate()
    server = _gate_server(gate)
    yield gate, f"http://127.0.0.1:{server.server_address[1]}"
    gate.open.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_mid_execution_then_restart_finishes_each_execution_once(
    tmp_path: Path, gate: tuple[Gate, str], processes: int
) -> None:
    """With ``--processes 2`` the SIGKILL reaches the supervisor: its children die with it (none is left
    holding work), and the restarted server voids their leases before its children start."""
    the_gate, gate_url = gate
    db, log, port = tmp_path / "db.sqlite", tmp_path / "server.log", free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(db, port, log, processes)
    try:
        definition = {
            "StartAt": "First",
            "States": {
                "First": {
                    "Type": "Task",
                    "Resource": f"{gate_url}/first",
                    "ResultPath": "$.a",
                    "Next": "Hold",
                },
                "Hold": {"Type": "Task", "Resource": f"{gate_url}/hold", "ResultPath": "$.b", "Next": "Last"},
                "Last": {"Type": "Task", "Resource": f"{gate_url}/last", "ResultPath": "$.c", "End": True},
            },
        }
        status, _ = request("POST", f"{base}/w", {"name": "durable", "definition": definition})
        assert status == 201
        ids = []
        for n in range(EXECUTIONS):
            status, record = request("POST", f"{base}/e/durable?wait=0", {"n": n})
            assert status == 202
            ids.append(record["event_id"])
        if not the_gate.wait_for_blocked(EXECUTIONS, 30):
            states = [request("GET", f"{base}/e/{event_id}")[1] for event_id in ids]
            pytest.fail(f"only {the_gate.blocked} calls reached the gate: {states}")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        keys_before_crash = list(the_gate.keys)

        process = _start(db, port, log, processes)
        the_gate.open.set()
        for n, event_id in enumerate(ids):
            status, record = request("GET", f"{base}/e/{event_id}?wait=30")
            assert status == 200
            assert record["status"] == "SUCCEEDED", json.dumps(record)
            assert record["output"] == {
                "n": n,
                "a": {"first_seen": n},
                "b": {"hold_seen": n},
                "c": {"last_seen": n},
            }
            _, history = request("GET", f"{base}/e/{event_id}/history")
            kinds = Counter(event["type"] for event in history["events"])
            assert kinds["ExecutionSucceeded"] == 1
            assert kinds["TaskStateEntered"] == 3
            assert kinds["TaskSucceeded"] == 3
            assert kinds["TaskStateExited"] == 3
        # Calls in flight at the crash were repeated, each with the key it had before.
        repeated = Counter(the_gate.keys)
        assert set(repeated) == set(keys_before_crash)
        assert all(count == 2 for count in repeated.values())
    finally:
        process.terminate()
        process.wait(10)


def test_sigkill_between_start_execution_and_the_end_through_the_aws_api(
    tmp_path: Path, gate: tuple[Gate, str]
) -> None:
    """StartExecution through boto3, SIGKILL while a task is in flight, restart: DescribeExecution reports
    the execution finished, under the same ARN, with its whole history."""
    from tests.acceptance.aws_helpers import ROLE, sfn_client, wait_until_done

    the_gate, gate_url = gate
    db, log, port = tmp_path / "db.sqlite", tmp_path / "server.log", free_port()
    process = _start(db, port, log, 1)
    try:
        sfn = sfn_client(f"http://127.0.0.1:{port}")
        definition = {
            "StartAt": "Hold",
            "States": {
                "Hold": {"Type": "Task", "Resource": f"{gate_url}/hold", "ResultPath": "$.b", "End": True}
            },
        }
        machine = sfn.create_state_machine(
            name="durable-aws", definition=json.dumps(definition), roleArn=ROLE
        )
        started = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"], name="survivor", input='{"n": 7}'
        )
        assert the_gate.wait_for_blocked(1, 30), "the task call did not reach the gate"
        process.send_signal(signal.SIGKILL)
        process.wait(10)

        process = _start(db, port, log, 1)
        the_gate.open.set()
        done = wait_until_done(sfn, started["executionArn"], timeout=30)
        assert done["status"] == "SUCCEEDED", done
        assert json.loads(done["output"]) == {"n": 7, "b": {"hold_seen": 7}}
        assert done["executionArn"] == started["executionArn"] and done["startDate"] == started["startDate"]
        types = [e["type"] for e in sfn.get_execution_history(executionArn=started["executionArn"])["events"]]
        assert types.count("ExecutionStarted") == 1 and types[-1] == "ExecutionSucceeded"
    finally:
        process.terminate()
        process.wait(10)
