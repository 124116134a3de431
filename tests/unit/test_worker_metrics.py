"""What the worker counts: retries, lease takeovers, webhook outcomes (a real app, real loopback services).

Counters live in the process's registry and other tests add to them too, so each test compares the
values before and after what it does.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable

from flask import Flask
from prometheus_client import REGISTRY

from machinery.api import orchestrator_of
from tests.unit.conftest import Loopback, Received

Start = Callable[[Callable[[Received], tuple[int, str, bytes]]], Loopback]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_retried_task_counts_a_retry_and_each_call_by_its_outcome(
    make_app: Callable[..., Flask], loopback: Start
) -> None:
    calls = itertools.count()

    def flaky(_request: Received) -> tuple[int, str, bytes]:
        if next(calls) == 0:
            return 503, "application/json", b"{}"
        return 200, "application/json", b'{"ok": true}'

    service = loopback(flaky)
    client = make_app(START_WORKER=True, TIME_SCALE=0.0).test_client()
    assert client.post("/s", json={"name": "flaky", "address": service.url}).status_code == 201
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]
    definition = {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": "flaky", "Retry": retry, "End": True}},
    }
    assert client.post("/w", json={"name": "retries", "definition": definition}).status_code == 201
    before = {
        "retries": sample("machinery_retries_total", workflow="retries"),
        "failed": sample("machinery_task_call_duration_seconds_count", service="flaky", outcome="http_5xx"),
        "ok": sample("machinery_task_call_duration_seconds_count", service="flaky", outcome="succeeded"),
    }
    assert client.post("/e/retries", json={}).get_json()["status"] == "SUCCEEDED"
    assert sample("machinery_retries_total", workflow="retries") == before["retries"] + 1
    failed = sample("machinery_task_call_duration_seconds_count", service="flaky", outcome="http_5xx")
    assert failed == before["failed"] + 1
    ok = sample("machinery_task_call_duration_seconds_count", service="flaky", outcome="succeeded")
    assert ok == before["ok"] + 1


def test_work_claimed_after_its_owner_lost_it_is_a_lease_takeover(make_app: Callable[..., Flask]) -> None:
    app = make_app()  # no worker yet: the execution waits for one
    client = app.test_client()
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    assert client.post("/w", json={"name": "taken-over", "definition": definition}).status_code == 201
    event_id = client.post("/e/taken-over?wait=0", json={}).get_json()["event_id"]
    storage = orchestrator_of(app).storage
    # A worker claims the start of the execution and dies: its lease has already run out.
    assert len(storage.claim_work("dead-worker", time.time(), 10, -1.0)) == 1
    before = sample("machinery_lease_takeovers_total")
    orchestrator_of(app).start()
    assert client.get(f"/e/{event_id}?wait=10").get_json()["status"] == "SUCCEEDED"
    assert sample("machinery_lease_takeovers_total") == before + 1


def test_webhook_deliveries_are_counted_by_outcome(make_app: Callable[..., Flask], loopback: Start) -> None:
    receiver = loopback(lambda _request: (204, "text/plain", b""))
    client = make_app(START_WORKER=True).test_client()
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    assert client.post("/w", json={"name": "hooked", "definition": definition}).status_code == 201
    before = sample("machinery_webhook_deliveries_total", outcome="delivered")
    body = {"data": {}, "callback_url": f"{receiver.url}/hook"}
    assert client.post("/e/hooked", json=body).get_json()["status"] == "SUCCEEDED"
    delivered = receiver.next_request()
    assert json.loads(delivered.body)["status"] == "SUCCEEDED"
    # The delivery's outcome is counted once the worker has read the receiver's answer.
    deadline = time.monotonic() + 10
    while sample("machinery_webhook_deliveries_total", outcome="delivered") == before:
        assert time.monotonic() < deadline, "the delivery was not counted"
        time.sleep(0.01)
    assert sample("machinery_webhook_deliveries_total", outcome="delivered") == before + 1
