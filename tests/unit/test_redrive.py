"""Redrive through the native API (``POST /e/<id>/redrive``) with a real worker and loopback services.

A service that fails until it is told otherwise makes an execution fail; redriving it reruns only what
did not succeed: the failed state, the failed iterations of a Map, the failed branch of a Parallel.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.conftest import Loopback, Received, Reply


class Flaky:
    """A service failing for the inputs in ``failing`` (500), echoing the rest; counts calls by input."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        key = json.dumps(body, sort_keys=True)
        with self.lock:
            self.calls[key] += 1
            fail = key in self.failing or "*" in self.failing
        if fail:
            return 500, "application/json", json.dumps({"error": "Flaky", "cause": f"failed {key}"}).encode()
        return 200, "application/json", json.dumps({"done": body}).encode()


@pytest.fixture
def flaky(loopback: Callable[[Callable[[Received], Reply]], Loopback]) -> tuple[Flaky, str]:
    service = Flaky()
    return service, loopback(service).url


def register(client: FlaskClient, name: str, definition: dict[str, Any]) -> None:
    response = client.post("/w", json={"name": name, "definition": definition})
    assert response.status_code == 201, response.get_json()


def run(client: FlaskClient, name: str, data: Any) -> dict[str, Any]:
    response = client.post(f"/e/{name}?wait=10", json=data)
    assert response.status_code == 201, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def redrive(client: FlaskClient, event_id: str, body: Any = None) -> dict[str, Any]:
    response = (
        client.post(f"/e/{event_id}/redrive", json=body)
        if body is not None
        else client.post(f"/e/{event_id}/redrive")
    )
    assert response.status_code == 200, response.get_json()
    finished = client.get(f"/e/{event_id}?wait=10").get_json()
    assert isinstance(finished, dict)
    return finished


def types(client: FlaskClient, event_id: str) -> list[str]:
    return [event["type"] for event in client.get(f"/e/{event_id}/history").get_json()["events"]]


def test_a_failed_task_reruns_alone(live_client: FlaskClient, flaky: tuple[Flaky, str]) -> None:
    service, url = flaky
    register(
        live_client,
        "chain",
        {
            "StartAt": "First",
            "States": {
                "First": {"Type": "Task", "Resource": url, "ResultPath": "$.first", "Next": "Second"},
                "Second": {"Type": "Task", "Resource": url, "Parameters": {"second.$": "$.n"}, "End": True},
            },
        },
    )
    service.failing = {json.dumps({"second": 1})}
    failed = run(live_client, "chain", {"n": 1})
    assert failed["status"] == "FAILED" and failed["error"] == "Flaky"
    assert failed["redrive_count"] == 0
    service.failing = set()
    done = redrive(live_client, failed["event_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == {"done": {"second": 1}}
    assert done["redrive_count"] == 1 and done["redriven_at"] is not None
    assert done["event_id"] == failed["event_id"]
    # The first task ran once, the second twice (failed, then redriven).
    assert service.calls[json.dumps({"n": 1})] == 1
    assert service.calls[json.dumps({"second": 1})] == 2
    history = types(live_client, failed["event_id"])
    assert history.count("ExecutionStarted") == 1
    redriven_at = history.index("ExecutionRedriven")
    assert history[redriven_at - 1] == "ExecutionFailed"
    assert history[redriven_at + 1 :] == [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]


def test_a_failed_map_reruns_only_its_failed_iterations(
    live_client: FlaskClient, flaky: tuple[Flaky, str]
) -> None:
    service, url = flaky
    register(
        live_client,
        "fan",
        {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": {
                        "StartAt": "Call",
                        "States": {"Call": {"Type": "Task", "Resource": url, "End": True}},
                    },
                    "End": True,
                }
            },
        },
    )
    items = [{"i": i} for i in range(6)]
    service.failing = {json.dumps({"i": 2}), json.dumps({"i": 4})}
    failed = run(live_client, "fan", {"items": items})
    assert failed["status"] == "FAILED"
    first_calls = dict(service.calls)
    events = live_client.get(f"/e/{failed['event_id']}/history").get_json()["events"]
    succeeded = {
        e["mapIterationSucceededEventDetails"]["index"]
        for e in events
        if e["type"] == "MapIterationSucceeded"
    }
    assert not succeeded & {2, 4}
    service.failing = set()
    done = redrive(live_client, failed["event_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == [{"done": item} for item in items]
    for index, item in enumerate(items):
        key = json.dumps(item)
        # Iterations that succeeded the first time are not called again; the others (failed, aborted
        # while their siblings failed, or never started) are, once.
        extra = service.calls[key] - first_calls.get(key, 0)
        if index in succeeded:
            assert extra == 0, key  # succeeded before: not run again
        else:
            # Run again once; a call of the first run that was in flight when its sibling failed may still
            # reach the service after the snapshot (task calls are at-least-once), hence at most twice.
            assert extra >= 1 and service.calls[key] <= 2, key


def test_a_map_with_max_concurrency_admits_reruns_in_order(
    live_client: FlaskClient, flaky: tuple[Flaky, str]
) -> None:
    service, url = flaky
    register(
        live_client,
        "fan1",
        {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "MaxConcurrency": 1,
                    "ItemProcessor": {
                        "StartAt": "Call",
                        "States": {"Call": {"Type": "Task", "Resource": url, "End": True}},
                    },
                    "End": True,
                }
            },
        },
    )
    items = [{"i": i} for i in range(5)]
    service.failing = {json.dumps({"i": 1})}
    failed = run(live_client, "fan1", items)
    assert failed["status"] == "FAILED"
    # One at a time: 0 succeeded, 1 failed, 2.. never started.
    assert service.calls[json.dumps({"i": 0})] == 1 and service.calls[json.dumps({"i": 2})] == 0
    service.failing = set()
    done = redrive(live_client, failed["event_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == [{"done": item} for item in items]
    assert [service.calls[json.dumps(item)] for item in items] == [1, 2, 1, 1, 1]


def test_a_failed_parallel_reruns_only_its_failed_branch(
    live_client: FlaskClient, flaky: tuple[Flaky, str]
) -> None:
    service, url = flaky
    branch = lambda tag: {  # noqa: E731
        "StartAt": f"Call-{tag}",
        "States": {
            f"Call-{tag}": {"Type": "Task", "Resource": url, "Parameters": {"branch": tag}, "End": True}
        },
    }
    register(
        live_client,
        "par",
        {
            "StartAt": "Both",
            "States": {"Both": {"Type": "Parallel", "Branches": [branch("a"), branch("b")], "End": True}},
        },
    )
    service.failing = {json.dumps({"branch": "b"})}
    failed = run(live_client, "par", {})
    assert failed["status"] == "FAILED"
    # Branch a may have finished before b failed, or been cancelled by b's failure (then it reruns).
    events = live_client.get(f"/e/{failed['event_id']}/history").get_json()["events"]
    a_done = any(e["type"] == "TaskSucceeded" for e in events)
    service.failing = set()
    done = redrive(live_client, failed["event_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == [{"done": {"branch": "a"}}, {"done": {"branch": "b"}}]
    assert service.calls[json.dumps({"branch": "a"})] == (1 if a_done else 2)
    assert service.calls[json.dumps({"branch": "b"})] == 2


def test_an_edited_input_for_the_rerun_state(live_client: FlaskClient, flaky: tuple[Flaky, str]) -> None:
    service, url = flaky
    register(
        live_client,
        "one",
        {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": url, "End": True}}},
    )
    service.failing = {json.dumps({"bad": True})}
    failed = run(live_client, "one", {"bad": True})
    done = redrive(live_client, failed["event_id"], {"input": {"bad": False}})
    assert done["status"] == "SUCCEEDED" and done["output"] == {"done": {"bad": False}}


def history_until(client: FlaskClient, event_id: str, done: Callable[[list[str]], bool]) -> list[str]:
    """The history's event types once ``done`` holds of them. A state's entry is committed by the worker
    with no signal a client can wait on, so this polls, as a client of the API would (bounded)."""
    deadline = time.monotonic() + 10
    while True:
        found = types(client, event_id)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_an_aborted_execution_reruns_its_state(live_client: FlaskClient) -> None:
    register(
        live_client,
        "sleepy",
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}},
    )
    started = live_client.post("/e/sleepy?wait=0", json={}).get_json()
    assert "WaitStateEntered" in history_until(
        live_client, started["event_id"], lambda t: "WaitStateEntered" in t
    )
    stopped = live_client.post(f"/e/{started['event_id']}/stop", json={"error": "Manual"}).get_json()
    assert stopped["status"] == "ABORTED"
    response = live_client.post(f"/e/{started['event_id']}/redrive")
    assert response.status_code == 200
    assert response.get_json()["status"] == "RUNNING"
    found = history_until(live_client, started["event_id"], lambda t: t.count("WaitStateEntered") == 2)
    assert found[-3:] == ["ExecutionAborted", "ExecutionRedriven", "WaitStateEntered"]


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_only_finished_unsuccessful_executions_are_redriven(live_client: FlaskClient, status: str) -> None:
    wait = 3600 if status == "RUNNING" else 0
    register(
        live_client, "w", {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": wait, "End": True}}}
    )
    event = live_client.post("/e/w?wait=5", json={}).get_json()
    assert event["status"] == status
    response = live_client.post(f"/e/{event['event_id']}/redrive")
    assert response.status_code == 409
    assert response.get_json()["reason"] == f"Execution is {status} and cannot be redriven"


def test_the_redrive_window_is_a_setting(make_app: Callable[..., Flask]) -> None:
    client = make_app(START_WORKER=True, REDRIVE_DAYS=0).test_client()
    register(client, "failing", {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}})
    event = run(client, "failing", {})
    response = client.post(f"/e/{event['event_id']}/redrive")
    assert response.status_code == 409
    assert response.get_json()["reason"] == "Execution redrivable period exceeded"


def test_redrive_requests_are_checked(live_client: FlaskClient) -> None:
    assert live_client.post("/e/nope/redrive").status_code == 404
    register(live_client, "failing", {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}})
    event = run(live_client, "failing", {})
    for body in ([], {"input": 1, "other": 2}, "x"):
        response = live_client.post(f"/e/{event['event_id']}/redrive", json=body)
        assert response.status_code == 400, body
    assert live_client.get(f"/e/{event['event_id']}").get_json()["redrive_count"] == 0


def test_a_distributed_map_redrives_its_failed_child_executions(
    live_client: FlaskClient, flaky: tuple[Flaky, str]
) -> None:
    service, url = flaky
    register(
        live_client,
        "dist",
        {
            "StartAt": "Each",
            "States": {
                "Each": {
                    "Type": "Map",
                    "MaxConcurrency": 1,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "Call",
                        "States": {"Call": {"Type": "Task", "Resource": url, "End": True}},
                    },
                    "End": True,
                }
            },
        },
    )
    items = [{"i": i} for i in range(3)]
    service.failing = {json.dumps({"i": 1})}
    failed = run(live_client, "dist", items)
    assert failed["status"] == "FAILED"
    service.failing = set()
    done = redrive(live_client, failed["event_id"])
    assert done["status"] == "SUCCEEDED", done
    assert done["output"] == [{"done": item} for item in items]
    children = live_client.get(f"/e?parent={failed['event_id']}").get_json()["events"]
    by_index = {int(child["name"].rsplit("/", 1)[1]): child for child in children}
    assert [by_index[i]["status"] for i in range(3)] == ["SUCCEEDED"] * 3
    # Item 0 succeeded first time (not redriven), 1 failed and 2 never started (both redriven).
    assert [by_index[i]["redrive_count"] for i in range(3)] == [0, 1, 1]
    assert [service.calls[json.dumps(item)] for item in items] == [1, 2, 1]
    assert "MapRunRedriven" in types(live_client, failed["event_id"])
