"""DISTRIBUTED Maps through the API: items read over HTTP, each item a child execution of its own.

A loopback service serves the items (JSON, JSONL, CSV) and another one is the task each item calls.
Waiting is done with the API's ``?wait`` long-poll, never with sleeps.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.unit.conftest import Received, Reply

HTTP = "arn:aws:states:::http:invoke"
PEOPLE = [{"name": "ada", "age": "36"}, {"name": "bob", "age": "41"}, {"name": "cy", "age": "7"}]
BODIES = {
    "JSON": ("application/json", json.dumps(PEOPLE).encode()),
    "JSONL": ("application/x-ndjson", "\n".join(json.dumps(p) for p in PEOPLE).encode()),
    "CSV": ("text/csv", b"name,age\nada,36\nbob,41\ncy,7\n"),
}


def distributed_map(task_url: str, reader: dict[str, Any], **fields: Any) -> dict[str, Any]:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Greet",
        "States": {"Greet": {"Type": "Task", "Resource": task_url, "End": True}},
    }
    state = {"Type": "Map", "ItemReader": reader, "ItemProcessor": processor, "End": True, **fields}
    return {"StartAt": "Each", "States": {"Each": state}}


def greeter(request: Received) -> Reply:
    person = request.json()
    if person["name"] == "bob" and request.path == "/fail-bob":
        return 500, "application/json", b'{"error": "Greeting.Refused", "cause": "not bob"}'
    return 200, "application/json", json.dumps({"hello": person["name"]}).encode()


def run(
    client: FlaskClient, definition: dict[str, Any], data: Any = None, wait: float = 20
) -> dict[str, Any]:
    response = client.post("/w", json={"name": "fan-out", "definition": definition})
    assert response.status_code in (200, 201), response.get_json()
    record: dict[str, Any] = client.post(f"/e/fan-out?wait={wait}", json=data or {}).get_json()
    return record


def children(client: FlaskClient, event_id: str) -> list[dict[str, Any]]:
    listed = client.get(f"/e?parent={event_id}&limit=1000").get_json()["events"]
    return sorted(listed, key=lambda child: int(child["name"].rsplit("/", 1)[1]))


def history_types(client: FlaskClient, event_id: str) -> list[str]:
    return [event["type"] for event in client.get(f"/e/{event_id}/history").get_json()["events"]]


@pytest.mark.parametrize("input_type", ["JSON", "JSONL", "CSV"])
def test_items_read_over_http_run_as_child_executions(
    live_client: FlaskClient, loopback: Any, input_type: str
) -> None:
    content_type, body = BODIES[input_type]
    items = loopback(lambda request: (200, content_type, body))
    task = loopback(greeter)
    reader = {
        "Resource": HTTP,
        "ReaderConfig": {"InputType": input_type},
        "Parameters": {"ApiEndpoint.$": "$.source", "Method": "GET", "Headers": {"X-Key": "k"}},
    }
    record = run(live_client, distributed_map(f"{task.url}/greet", reader), {"source": f"{items.url}/people"})
    assert record["status"] == "SUCCEEDED", record
    assert record["output"] == [{"hello": "ada"}, {"hello": "bob"}, {"hello": "cy"}]
    fetched = items.next_request()
    assert (fetched.method, fetched.path, fetched.headers["X-Key"]) == ("GET", "/people", "k")
    assert sorted(task.next_request().json()["name"] for _ in PEOPLE) == ["ada", "bob", "cy"]
    assert [e["type"] for e in live_client.get(f"/e/{record['event_id']}/history").get_json()["events"]] == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    found = children(live_client, record["event_id"])
    assert [c["name"] for c in found] == [f"{record['name']}/Each/{i}" for i in range(3)]
    for index, child in enumerate(found):
        assert child["parent_event_id"] == record["event_id"]
        assert (child["status"], child["workflow_id"]) == ("SUCCEEDED", record["workflow_id"])
        assert child["output"] == {"hello": PEOPLE[index]["name"]}
        types = history_types(live_client, child["event_id"])
        assert (types[0], types[-1]) == ("ExecutionStarted", "ExecutionSucceeded")
        assert "TaskSucceeded" in types
        started = live_client.get(f"/e/{child['event_id']}/history").get_json()["events"][0]
        assert json.loads(started["executionStartedEventDetails"]["input"]) == PEOPLE[index]
    assert record["parent_event_id"] is None
    top = [e["event_id"] for e in live_client.get("/e?limit=1000").get_json()["events"]]
    assert top == [record["event_id"]]


def test_tolerated_failures_and_max_concurrency(live_client: FlaskClient, loopback: Any) -> None:
    task = loopback(greeter)
    reader = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items.$": "$.people"}}
    definition = distributed_map(
        f"{task.url}/fail-bob", reader, MaxConcurrency=1, ToleratedFailureCount=1, Label="greet"
    )
    record = run(live_client, definition, {"people": PEOPLE})
    assert record["status"] == "SUCCEEDED", record
    assert record["output"] == [
        {"hello": "ada"},
        {"Error": "Greeting.Refused", "Cause": "not bob"},
        {"hello": "cy"},
    ]
    found = children(live_client, record["event_id"])
    assert [c["status"] for c in found] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert found[1]["error"] == "Greeting.Refused"
    assert history_types(live_client, found[1]["event_id"])[-1] == "ExecutionFailed"
    # One at a time: each child started after the one before it had ended (records exist from the start).
    spans = [live_client.get(f"/e/{c['event_id']}/history").get_json()["events"] for c in found]
    for before, after in itertools.pairwise(spans):
        assert before[-1]["timestamp"] <= after[0]["timestamp"]
    assert [c["name"].split("/")[1] for c in found] == ["greet"] * 3


def test_a_failure_over_the_tolerance_fails_the_map(live_client: FlaskClient, loopback: Any) -> None:
    task = loopback(greeter)
    reader = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": PEOPLE}}
    record = run(live_client, distributed_map(f"{task.url}/fail-bob", reader, MaxConcurrency=1))
    assert (record["status"], record["error"]) == ("FAILED", "Greeting.Refused")
    found = children(live_client, record["event_id"])
    assert [c["status"] for c in found] == ["SUCCEEDED", "FAILED", "ABORTED"]
    assert history_types(live_client, found[2]["event_id"]) == ["ExecutionAborted"]  # it never started
    assert history_types(live_client, record["event_id"])[-3:] == [
        "MapRunFailed",
        "MapStateFailed",
        "ExecutionFailed",
    ]


def test_an_item_reader_that_fails(live_client: FlaskClient, loopback: Any) -> None:
    items = loopback(lambda request: (404, "text/plain", b"no such list"))
    reader = {
        "Resource": HTTP,
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"ApiEndpoint": items.url},
    }
    record = run(live_client, distributed_map("http://127.0.0.1:9/never", reader))
    assert (record["status"], record["error"]) == ("FAILED", "States.ItemReaderFailed")
    assert "404" in record["cause"] and "no such list" in record["cause"]
    assert children(live_client, record["event_id"]) == []


def test_stopping_the_parent_stops_its_children(
    live_client: FlaskClient, loopback: Any, release_blocked: threading.Event
) -> None:
    def blocked(request: Received) -> Reply:
        release_blocked.wait(30)
        return 200, "application/json", b"{}"

    task = loopback(blocked)
    reader = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": [1, 2]}}
    record = run(live_client, distributed_map(task.url, reader), wait=0)
    assert record["status"] == "RUNNING"
    task.next_request()
    task.next_request()  # both children are calling their task
    running = children(live_client, record["event_id"])
    assert [c["status"] for c in running] == ["RUNNING", "RUNNING"]
    stopped = live_client.post(f"/e/{record['event_id']}/stop", json={"cause": "enough"}).get_json()
    assert stopped["status"] == "ABORTED"
    for child in children(live_client, record["event_id"]):
        assert child["status"] == "ABORTED"
        assert history_types(live_client, child["event_id"])[-1] == "ExecutionAborted"
    assert live_client.get("/e?parent=nope").status_code == 404


def test_express_workflows_run_distributed_maps_inline(live_client: FlaskClient, loopback: Any) -> None:
    task = loopback(greeter)
    reader = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": PEOPLE[:2]}}
    body = {"name": "quick-fan-out", "definition": distributed_map(task.url, reader), "express": True}
    assert live_client.post("/w", json=body).status_code == 201
    record = live_client.post("/e/quick-fan-out?wait=20", json={}).get_json()
    assert (record["status"], record["output"]) == ("SUCCEEDED", [{"hello": "ada"}, {"hello": "bob"}])
    assert children(live_client, record["event_id"]) == []
