"""The native API of schedules (``/schedules``) and event sources (``/sources``)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from machinery.control.schedules import SCHEDULE_RECORD
from machinery.control.sources import REJECTION_RECORD, SOURCE_RECORD
from machinery.runtime.sources import REJECTION_KIND, STATUS_KIND


@pytest.fixture
def api(client: FlaskClient) -> FlaskClient:
    waits = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}
    assert client.post("/w", json={"name": "waits", "definition": waits}).status_code == 201
    typed = {
        "name": "typed",
        "inputs": [{"name": "n", "type": "integer"}],
        "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    assert client.post("/w", json=typed).status_code == 201
    return client


def conforms(schema: dict[str, Any], record: Any) -> None:
    """The record is what the API's description says it is."""
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(record)]
    assert errors == [], errors


def fields_of(response: Any) -> list[str]:
    return [issue["field"] for issue in response.get_json().get("errors", [])]


def test_schedule_lifecycle(api: FlaskClient) -> None:
    body = {
        "name": "every-5",
        "workflow": "waits",
        "expression": "rate(5 minutes)",
        "input": {"at": "<machinery.scheduled-time>"},
        "overlap": "buffer_one",
        "catch_up": 2,
    }
    created = api.post("/schedules", json=body)
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"] == "/schedules/every-5"
    record = created.get_json()
    conforms(SCHEDULE_RECORD, record)
    assert record["kind"] == "rate" and record["overlap"] == "buffer_one" and record["catch_up"] == 2
    assert len(record["next_runs"]) == 5 and record["state"]["next_run_at"] == record["next_runs"][0]
    assert record["state"]["started"] == 0 and record["paused"] is False

    cron = {
        "name": "nightly",
        "workflow": "typed",
        "expression": "0 2 * * *",
        "timezone": "Asia/Tokyo",
        "input": {"n": 1},
    }
    assert api.post("/schedules", json=cron).status_code == 201
    listed = api.get("/schedules").get_json()["schedules"]
    assert [s["name"] for s in listed] == ["every-5", "nightly"]
    assert [s["name"] for s in api.get("/schedules?workflow=typed").get_json()["schedules"]] == ["nightly"]
    assert api.get("/schedules/nightly").get_json()["next_runs"][0].endswith("T17:00:00Z")  # 02:00 in Tokyo

    patched = api.patch("/schedules/nightly", json={"expression": "30 3 * * *", "description": "later"})
    assert patched.status_code == 200
    assert patched.get_json()["revision"] == 2 and patched.get_json()["next_runs"][0].endswith("T18:30:00Z")
    paused = api.post("/schedules/nightly/pause").get_json()
    assert paused["paused"] is True and paused["next_runs"] == []
    resumed = api.post("/schedules/nightly/resume").get_json()
    assert resumed["paused"] is False and resumed["next_runs"]
    assert api.delete("/schedules/nightly").status_code == 204
    assert api.get("/schedules/nightly").status_code == 404
    assert api.delete("/schedules/nightly").status_code == 404


_EVERY = {"name": "x", "workflow": "waits", "expression": "rate(1 minute)"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"workflow": "waits", "expression": "rate(1 minute)"}, 400, "name"),
        ({**_EVERY, "expression": "0 0 * *"}, 400, "expression"),
        ({**_EVERY, "timezone": "Nowhere/Else"}, 400, "timezone"),
        ({**_EVERY, "catch_up": -1}, 400, "catch_up"),
        ({**_EVERY, "workflow": "missing"}, 409, "workflow"),
        ({**_EVERY, "workflow": "typed", "input": {"n": "one"}}, 422, "input/n"),
        ({**_EVERY, "callback_url": "javascript:alert(1)"}, 400, "callback_url"),
    ],
)
def test_invalid_schedules_get_a_4xx_naming_the_field(
    api: FlaskClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = api.post("/schedules", json=body)
    assert response.status_code == status, response.get_json()
    assert field in fields_of(response)
    assert api.get("/schedules").get_json()["schedules"] == []


def test_schedule_bodies_that_are_not_json_or_not_objects(api: FlaskClient) -> None:
    assert api.post("/schedules", data="nope", content_type="text/plain").status_code == 415
    assert api.post("/schedules", json=[1]).status_code == 400
    assert api.patch("/schedules/none", json={"paused": True}).status_code == 404
    assert (
        api.post(
            "/schedules", json={"name": "a", "workflow": "waits", "expression": "rate(1 minute)"}
        ).status_code
        == 201
    )
    assert api.patch("/schedules/a", json={"name": "b"}).status_code == 400  # the name cannot change
    assert (
        api.post(
            "/schedules", json={"name": "a", "workflow": "waits", "expression": "rate(1 minute)"}
        ).status_code
        == 409
    )


def test_source_lifecycle_and_its_state(api: FlaskClient) -> None:
    body = {
        "name": "orders",
        "workflow": "typed",
        "type": "redis",
        "url": "redis://user:secret@127.0.0.1:6379/0",
        "stream": "orders-stream",
        "batch": 10,
    }
    created = api.post("/sources", json=body)
    assert created.status_code == 201, created.get_json()
    record = created.get_json()
    conforms(SOURCE_RECORD, record)
    assert record["url"] == "redis://user:***@127.0.0.1:6379/0"  # the password is never shown
    assert record["group"] == "machinery" and record["batch"] == 10 and record["field"] == "body"
    assert record["state"] == {
        "connected": False,
        "consumers": 0,
        "lag": None,
        "saturated": False,
        "last_error": None,
        "started": 0,
        "duplicates": 0,
        "rejected": 0,
        "retried": 0,
        "reconnects": 0,
    }
    # What the consumers of two processes reported adds up.
    storage = api.application.extensions["machinery"].storage
    source_id = record["source_id"]
    import time

    now = time.time()
    storage.put_resource(
        STATUS_KIND,
        f"{source_id}/a",
        {"owner": "a", "connected": True, "lag": 5, "started": 7, "rejected": 1, "updated_at": now},
    )
    storage.put_resource(
        STATUS_KIND,
        f"{source_id}/b",
        {"owner": "b", "connected": False, "lag": None, "started": 3, "updated_at": now - 3600},
    )
    storage.put_resource(
        REJECTION_KIND,
        f"{source_id}/x",
        {"message_id": "m1", "reason": "not JSON", "errors": [], "body": "{", "bytes": 1, "rejected_at": now},
    )
    state = api.get("/sources/orders").get_json()["state"]
    assert state["connected"] is True and state["consumers"] == 1 and state["lag"] == 5
    assert state["started"] == 10 and state["rejected"] == 1
    rejections = api.get("/sources/orders/rejections").get_json()["rejections"]
    conforms(REJECTION_RECORD, rejections[0])
    conforms(SOURCE_RECORD, api.get("/sources/orders").get_json())
    assert [r["message_id"] for r in rejections] == ["m1"] and rejections[0]["reason"] == "not JSON"
    assert api.get("/sources/orders/rejections?limit=0").status_code == 400

    assert api.patch("/sources/orders", json={"batch": 20}).get_json()["revision"] == 2
    assert api.patch("/sources/orders", json={"queue": "q"}).status_code == 400  # a RabbitMQ option
    assert api.post("/sources/orders/pause").get_json()["enabled"] is False
    assert api.post("/sources/orders/resume").get_json()["enabled"] is True
    assert [s["name"] for s in api.get("/sources").get_json()["sources"]] == ["orders"]
    assert api.delete("/sources/orders").status_code == 204
    assert api.get("/sources/orders").status_code == 404
    assert storage.list_resources(REJECTION_KIND) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "s", "workflow": "typed", "type": "kafka", "stream": "x"}, 400, "type"),
        ({"name": "s", "workflow": "typed", "type": "rabbitmq"}, 400, "queue"),
        ({"name": "s", "workflow": "typed", "type": "nats", "stream": "x", "group": "g"}, 400, "group"),
        ({"name": "s", "workflow": "typed", "type": "redis", "stream": "x", "url": "http://h/"}, 400, "url"),
        ({"name": "s", "workflow": "typed", "type": "redis", "stream": "x", "batch": 0}, 400, "batch"),
        ({"name": "s/1", "workflow": "typed", "type": "redis", "stream": "x"}, 400, "name"),
        ({"name": "s", "workflow": "nope", "type": "redis", "stream": "x"}, 409, "workflow"),
    ],
)
def test_invalid_sources_get_a_4xx_naming_the_field(
    api: FlaskClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = api.post("/sources", json=body)
    assert response.status_code == status, response.get_json()
    assert field in fields_of(response)


def test_a_source_whose_library_is_missing_is_refused_naming_the_extra(
    api: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def without_aio_pika(name: str, *args: Any) -> Any:
        return None if name == "aio_pika" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_aio_pika)
    response = api.post("/sources", json={"name": "q", "workflow": "typed", "type": "rabbitmq", "queue": "q"})
    assert response.status_code == 409
    assert "pip install 'machinery[rabbitmq]'" in response.get_json()["message"]
    assert response.get_json()["extra"] == "rabbitmq"
