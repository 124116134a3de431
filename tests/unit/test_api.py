"""The HTTP API through Flask's test client: every route, its bad inputs and its happy paths.

Rejected requests must change nothing: each rejection is checked against a snapshot of everything the
read routes show. Event routes run against a real worker and real loopback services; waiting is done
with the API's own ``?wait`` long-poll, never with sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from machinery.api import orchestrator_of
from machinery.runtime.webhooks import sign
from tests.unit.conftest import WEBHOOK_SECRET, Loopback, Received, Reply

MESSAGE_IN = [{"name": "message", "type": "string"}]


# helpers ----------------------------------------------------------------------------------------------------


def service_body(name: str, address: str = "http://127.0.0.1:9/event", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "address": address,
        "inputs": [{"name": "message", "type": "string"}],
        "outputs": [{"name": "message", "type": "string"}],
        **extra,
    }


def register(client: FlaskClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 201, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def register_text_services(client: FlaskClient, urls: dict[str, str]) -> None:
    register(client, "/s", service_body("upper", urls["upper"]))
    register(client, "/s", service_body("reverse", urls["reverse"]))
    register(
        client,
        "/s",
        service_body(
            "space-counter", urls["space-counter"], outputs=[{"name": "space_count", "type": "int"}]
        ),
    )


def snapshot(client: FlaskClient) -> dict[str, Any]:
    """Everything stored, as the read routes show it."""
    services = client.get("/s").get_json()
    workflows = client.get("/w").get_json()
    versions = {
        w["workflow_id"]: client.get(f"/w/{w['workflow_id']}/versions").get_json()
        for w in workflows["workflows"]
    }
    events = client.get("/e?limit=1000").get_json()
    histories = {
        e["event_id"]: client.get(f"/e/{e['event_id']}/history").get_json() for e in events["events"]
    }
    return {
        "services": services,
        "workflows": workflows,
        "versions": versions,
        "events": events,
        "histories": histories,
    }


@contextmanager
def unchanged(client: FlaskClient) -> Iterator[None]:
    before = snapshot(client)
    yield
    assert snapshot(client) == before


def fields_of(body: dict[str, Any]) -> list[str]:
    return [issue["field"] for issue in body.get("errors", [])]


def send(client: FlaskClient, method: str, url: str, **kwargs: Any) -> Any:
    return client.open(url, method=method, **kwargs)


def finished(client: FlaskClient, event: dict[str, Any]) -> dict[str, Any]:
    """The event's final record, through the long-poll."""
    response = client.get(f"/e/{event['event_id']}?wait=10")
    assert response.status_code == 200
    record: dict[str, Any] = response.get_json()
    assert record["status"] != "RUNNING", record
    return record


@pytest.fixture
def stocked(client: FlaskClient) -> dict[str, Any]:
    """A service ``upper``, a workflow ``wf`` using it and one RUNNING event (no worker runs)."""
    service = register(client, "/s", service_body("upper"))
    workflow = register(
        client, "/w", {"name": "wf", "services": ["upper"], "inputs": MESSAGE_IN, "outputs": MESSAGE_IN}
    )
    response = client.post("/e/wf?wait=0", json={"message": "hi"})
    assert response.status_code == 202
    return {"service": service, "workflow": workflow, "event": response.get_json()}


# every route's unreadable bodies ---------------------------------------------------------------------------

BODY_ROUTES = [
    ("POST", "/s"),
    ("PUT", "/s/upper"),
    ("POST", "/w"),
    ("PUT", "/w/wf"),
    ("POST", "/e/wf"),
    ("POST", "/e/{event}/stop"),
    ("POST", "/tasks/success"),
    ("POST", "/tasks/failure"),
    ("POST", "/tasks/heartbeat"),
]


@pytest.mark.parametrize(("method", "url"), BODY_ROUTES)
class TestUnreadableBodies:
    def test_non_json_is_415(
        self, client: FlaskClient, stocked: dict[str, Any], method: str, url: str
    ) -> None:
        url = url.format(event=stocked["event"]["event_id"])
        with unchanged(client):
            response = send(
                client, method, url, data="name=upper", content_type="application/x-www-form-urlencoded"
            )
            assert response.status_code == 415
            assert response.get_json()["error"] == "unsupported_media_type"
            assert send(client, method, url, data=b"{}", content_type="text/plain").status_code == 415

    def test_malformed_json_is_400(
        self, client: FlaskClient, stocked: dict[str, Any], method: str, url: str
    ) -> None:
        url = url.format(event=stocked["event"]["event_id"])
        with unchanged(client):
            for raw in (b'{"name": ', b"{'a': 1}", b"\xff\xfe", b"[1,]"):
                response = send(client, method, url, data=raw, content_type="application/json")
                assert response.status_code == 400, raw
                assert response.get_json()["error"] == "bad_request"
                assert fields_of(response.get_json()) == ["(body)"]

    def test_json_null(self, client: FlaskClient, stocked: dict[str, Any], method: str, url: str) -> None:
        url = url.format(event=stocked["event"]["event_id"])
        if url.endswith("/stop"):
            response = send(client, method, url, data=b"null", content_type="application/json")
            assert response.status_code == 200  # a null stop body means "no reason given"
            assert response.get_json()["status"] == "ABORTED"
            return
        with unchanged(client):
            response = send(client, method, url, data=b"null", content_type="application/json")
        # event data may be null in general; `wf` declares inputs, so null does not match them (422)
        expected = 422 if url == "/e/wf" else 400
        assert response.status_code == expected, response.get_json()


# services ---------------------------------------------------------------------------------------------------


class TestServices:
    def test_post_twice_upserts_with_the_same_id(self, client: FlaskClient) -> None:
        first = register(client, "/s", service_body("upper", "http://127.0.0.1:1/a"))
        second = register(client, "/s", service_body("upper", "http://127.0.0.1:2/b", timeout_seconds=5))
        assert second["service_id"] == first["service_id"]
        assert second["address"] == "http://127.0.0.1:2/b"
        assert second["timeout_seconds"] == 5
        listed = client.get("/s").get_json()["services"]
        assert [s["service_id"] for s in listed] == [first["service_id"]]
        assert client.get(f"/s/{first['service_id']}").get_json() == second
        assert client.get("/s/upper").get_json() == second

    def test_put_changes_by_id_or_name(self, client: FlaskClient) -> None:
        created = register(client, "/s", service_body("upper"))
        response = client.put("/s/upper", json=service_body("upper", "http://127.0.0.1:3/x", method="PUT"))
        assert response.status_code == 200
        assert response.get_json()["service_id"] == created["service_id"]
        assert response.get_json()["method"] == "PUT"
        renamed = client.put(f"/s/{created['service_id']}", json=service_body("shout"))
        assert renamed.status_code == 200
        assert renamed.get_json()["name"] == "shout"
        assert client.get("/s/upper").status_code == 404

    def test_delete(self, client: FlaskClient) -> None:
        register(client, "/s", service_body("upper"))
        assert client.delete("/s/upper").status_code == 204
        assert client.get("/s/upper").status_code == 404
        assert client.get("/s").get_json() == {"services": []}

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({}, ["address", "name"]),
            ([], ["(body)"]),
            ("upper", ["(body)"]),
            ({"name": "upper"}, ["address"]),
            ({"name": "", "address": "http://x/e"}, ["name"]),
            ({"name": "has space", "address": "http://x/e"}, ["name"]),
            ({"name": 3, "address": "http://x/e"}, ["name"]),
            ({"name": "upper", "address": "ftp://x/e"}, ["address"]),
            ({"name": "upper", "address": "http://x/e", "colour": "red"}, ["colour"]),
            (
                {"name": "upper", "address": "http://x/e", "inputs": [{"name": "m", "type": "text"}]},
                ["inputs/0/type"],
            ),
            ({"name": "upper", "address": "http://x/e", "outputs": [{"type": "string"}]}, ["outputs/0/name"]),
            ({"name": "upper", "address": "http://x/e", "inputs": {}}, ["inputs"]),
            ({"name": "upper", "address": "http://x/e", "method": "FETCH"}, ["method"]),
            ({"name": "upper", "address": "http://x/e", "timeout_seconds": 0}, ["timeout_seconds"]),
            ({"name": "upper", "address": "http://x/e", "headers": {"X-A": 1}}, ["headers/X-A"]),
        ],
    )
    def test_invalid_bodies_are_409_naming_the_field(
        self, client: FlaskClient, stocked: dict[str, Any], body: Any, fields: list[str]
    ) -> None:
        with unchanged(client):
            for method, url in (("POST", "/s"), ("PUT", "/s/upper")):
                response = send(client, method, url, json=body)
                assert response.status_code == 409, (method, response.get_json())
                assert sorted(set(fields_of(response.get_json()))) == fields

    def test_unknown_service_is_404(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            assert client.get("/s/nope").status_code == 404
            assert client.put("/s/nope", json=service_body("nope")).status_code == 404
            assert client.delete("/s/nope").status_code == 404
            assert client.get("/s/nope").get_json()["error"] == "not_found"

    def test_delete_of_a_used_service_is_409(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            response = client.delete("/s/upper")
        assert response.status_code == 409
        assert response.get_json()["workflows"] == ["wf"]

    def test_renaming_a_used_service_or_taking_a_name_is_409(
        self, client: FlaskClient, stocked: dict[str, Any]
    ) -> None:
        register(client, "/s", service_body("other"))
        with unchanged(client):
            renamed = client.put("/s/upper", json=service_body("shout"))
            assert renamed.status_code == 409
            assert fields_of(renamed.get_json()) == ["name"]
            taken = client.put("/s/other", json=service_body("upper"))
            assert taken.status_code == 409
            assert fields_of(taken.get_json()) == ["name"]


# workflows --------------------------------------------------------------------------------------------------


class TestWorkflows:
    def test_each_post_or_put_adds_a_version(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        workflow_id = stocked["workflow"]["workflow_id"]
        spec = {"name": "wf", "services": ["upper"], "inputs": MESSAGE_IN}
        assert register(client, "/w", spec)["version"] == 2
        response = client.put(f"/w/{workflow_id}", json={**spec, "description": "third"})
        assert response.status_code == 200
        assert (response.get_json()["workflow_id"], response.get_json()["version"]) == (workflow_id, 3)
        versions = client.get("/w/wf/versions").get_json()
        assert versions["workflow_id"] == workflow_id
        assert [v["version"] for v in versions["versions"]] == [1, 2, 3]
        assert client.get("/w/wf").get_json()["version"] == 3
        first = client.get("/w/wf?version=1").get_json()
        assert (first["version"], first["outputs"]) == (1, MESSAGE_IN)
        assert [w["version"] for w in client.get("/w").get_json()["workflows"]] == [3]
        # the event started on version 1 stays pinned to it
        assert client.get(f"/e/{stocked['event']['event_id']}").get_json()["workflow_version"] == 1

    def test_read_shapes(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        workflow = client.get("/w/wf").get_json()
        assert workflow["form"] == "simple"
        assert workflow["services"] == ["upper"]
        assert workflow["definition"]["StartAt"]
        assert "definition" not in client.get("/w").get_json()["workflows"][0]

    def test_express_workflows_refuse_task_tokens_as_aws_does(
        self, client: FlaskClient, stocked: dict[str, Any]
    ) -> None:
        task = {"Type": "Task", "Resource": "upper.waitForTaskToken", "End": True}
        body = {"name": "fast", "express": True, "definition": {"StartAt": "T", "States": {"T": task}}}
        with unchanged(client):
            response = client.post("/w", json=body)
        assert response.status_code == 409
        assert [issue["field"] for issue in response.get_json()["errors"]] == ["definition/States/T/Resource"]
        assert client.post("/w", json={**body, "express": False}).status_code == 201

    def test_asl_form(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        definition = {"StartAt": "Up", "States": {"Up": {"Type": "Task", "Resource": "upper", "End": True}}}
        created = register(client, "/w", {"name": "asl", "definition": definition})
        assert (created["form"], created["services"], created["definition"]) == ("asl", ["upper"], definition)

    def test_delete(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            assert client.delete("/w/wf").status_code == 409  # its event is still running
        assert client.post(f"/e/{stocked['event']['event_id']}/stop").status_code == 200
        assert client.delete("/w/wf").status_code == 204
        assert client.get("/w/wf").status_code == 404
        # no longer used: the service may go
        assert client.delete("/s/upper").status_code == 204

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({}, ["(body)", "name"]),
            ({"name": "x"}, ["(body)"]),
            ({"name": "x", "services": ["upper"], "definition": {}}, ["(body)"]),
            ({"name": "x", "services": []}, ["services"]),
            ({"name": "x", "services": "upper"}, ["services"]),
            ({"name": "x", "services": ["upper"], "express": "yes"}, ["express"]),
            ({"name": "x", "services": ["upper"], "inputs": [{"name": "message"}]}, ["inputs/0/type"]),
            ({"name": "x", "services": ["upper"], "steps": []}, ["steps"]),
            ({"name": "x", "services": ["upper"], "operations": [{"op": "rename"}]}, ["operations/0/op"]),
            ({"name": "x", "services": ["upper"], "operations": [{"op": "set"}]}, ["operations/0/field"]),
            (
                {"name": "x", "services": ["upper"], "operations": [{"op": "copy", "from": "a"}]},
                ["operations/0/to"],
            ),
            (
                {"name": "x", "services": ["upper"], "inputs": MESSAGE_IN,
                 "operations": [{"op": "delete", "field": "a", "before": "nope"}]},
                ["operations/0"],
            ),
            ({"name": "x", "definition": {"StartAt": "A", "States": {}}}, None),
        ],
    )  # fmt: skip
    def test_invalid_bodies_are_409_naming_the_field(
        self, client: FlaskClient, stocked: dict[str, Any], body: dict[str, Any], fields: list[str] | None
    ) -> None:
        with unchanged(client):
            for method, url in (("POST", "/w"), ("PUT", "/w/wf")):
                response = send(client, method, url, json=body)
                assert response.status_code == 409, (method, body)
                found = fields_of(response.get_json())
                if fields is None:
                    assert found and all(f.startswith("definition") for f in found), found
                else:
                    assert sorted(set(found)) == fields

    def test_unknown_services_are_409_naming_them(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            response = client.post("/w", json={"name": "x", "services": ["upper", "ghost", "spook"]})
            assert response.status_code == 409
            body = response.get_json()
            assert body["unknown_services"] == ["ghost", "spook"]
            assert fields_of(body) == ["services/1", "services/2"]
            assert "ghost" in body["message"]
            definition = {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "ghost", "End": True}}}
            response = client.put("/w/wf", json={"name": "wf", "definition": definition})
            assert response.status_code == 409
            assert response.get_json()["unknown_services"] == ["ghost"]

    def test_simple_form_rejects_a_service_whose_input_is_not_provided(
        self, client: FlaskClient, stocked: dict[str, Any]
    ) -> None:
        register(client, "/s", service_body("counter", outputs=[{"name": "count", "type": "int"}]))
        register(
            client, "/s", service_body("numbers", inputs=[], outputs=[{"name": "message", "type": "int"}])
        )
        with unchanged(client):
            missing = client.post("/w", json={"name": "x", "services": ["counter"]})
            assert missing.status_code == 409
            [issue] = missing.get_json()["errors"]
            assert issue["field"] == "services/0"
            assert "'counter'" in issue["message"]
            assert "'message'" in issue["message"]
            assert "string" in issue["message"]
            mistyped = client.post(
                "/w",
                json={"name": "x", "services": ["counter"], "inputs": [{"name": "message", "type": "int"}]},
            )
            assert mistyped.status_code == 409
            [issue] = mistyped.get_json()["errors"]
            assert issue["field"] == "services/0"
            for word in ("'counter'", "'message'", "string", "integer"):
                assert word in issue["message"]
            # an earlier service's output of the wrong type does not satisfy the next one's input
            chained = client.post("/w", json={"name": "x", "services": ["numbers", "upper"]})
            assert chained.status_code == 409
            assert fields_of(chained.get_json()) == ["services/1"]
            # an operation that deletes the input before the service is noticed too
            deleted = client.post(
                "/w",
                json={
                    "name": "x",
                    "services": ["upper"],
                    "inputs": MESSAGE_IN,
                    "operations": [{"op": "delete", "field": "message", "before": "upper"}],
                },
            )
            assert deleted.status_code == 409
        provided_by_operation = client.post(
            "/w",
            json={
                "name": "x",
                "services": ["upper"],
                "inputs": [{"name": "text", "type": "string"}],
                "operations": [{"op": "move", "from": "text", "to": "message", "before": "upper"}],
            },
        )
        assert provided_by_operation.status_code == 201

    def test_renaming_to_a_taken_name_is_409(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        register(client, "/w", {"name": "other", "services": ["upper"], "inputs": MESSAGE_IN})
        with unchanged(client):
            response = client.put(
                "/w/other", json={"name": "wf", "services": ["upper"], "inputs": MESSAGE_IN}
            )
            assert response.status_code == 409
            assert fields_of(response.get_json()) == ["name"]

    def test_unknown_workflow_or_version_is_404(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            assert client.get("/w/nope").status_code == 404
            assert client.get("/w/nope/versions").status_code == 404
            assert client.put("/w/nope", json={"name": "nope", "services": ["upper"]}).status_code == 404
            assert client.delete("/w/nope").status_code == 404
            assert client.get("/w/wf?version=2").status_code == 404

    @pytest.mark.parametrize("version", ["0", "abc", "-1", "1.5", ""])
    def test_bad_version_argument_is_400(
        self, client: FlaskClient, stocked: dict[str, Any], version: str
    ) -> None:
        response = client.get(f"/w/wf?version={version}")
        assert response.status_code == 400
        assert fields_of(response.get_json()) == ["version"]


# events: validation (no worker) -----------------------------------------------------------------------------


class TestEventValidation:
    def test_unknown_workflow_or_event_is_404(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        with unchanged(client):
            assert client.post("/e/nope", json={"message": "x"}).status_code == 404
            assert client.get("/e/nope").status_code == 404
            assert client.get("/e/nope?wait=1").status_code == 404
            assert client.get("/e/nope/history").status_code == 404
            assert client.post("/e/nope/stop").status_code == 404
            assert client.get("/e?workflow=nope").status_code == 404

    @pytest.mark.parametrize("query", ["wait=abc", "wait=-1", "wait=3601", "wait=nan", "wait=", "wait=inf"])
    def test_bad_wait_is_400_and_starts_nothing(
        self, client: FlaskClient, stocked: dict[str, Any], query: str
    ) -> None:
        event_id = stocked["event"]["event_id"]
        with unchanged(client):
            response = client.post(f"/e/wf?{query}", json={"message": "x"})
            assert response.status_code == 400
            assert fields_of(response.get_json()) == ["wait"]
            assert client.get(f"/e/{event_id}?{query}").status_code == 400

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=abc", "limit"),
            ("limit=-1", "limit"),
            ("limit=1001", "limit"),
            ("status=NOPE", "status"),
            ("status=running", "status"),
            ("cursor=nope", "cursor"),
        ],
    )
    def test_bad_list_arguments_are_400(
        self, client: FlaskClient, stocked: dict[str, Any], query: str, field: str
    ) -> None:
        response = client.get(f"/e?{query}")
        assert response.status_code == 400
        assert fields_of(response.get_json()) == [field]

    @pytest.mark.parametrize(
        ("body", "fields"),
        [
            ({}, ["message"]),
            ({"message": 3}, ["message"]),
            ({"message": None}, ["message"]),
            ({"data": {"text": "x"}}, ["message"]),
            ([1, 2], ["(data)"]),
            ("hello", ["(data)"]),
            ({"data": {"message": "x"}, "callback_url": "ftp://x"}, ["callback_url"]),
            ({"data": {"message": "x"}, "callback_url": 3}, ["callback_url"]),
            ({"data": {"message": "x"}, "name": ""}, ["name"]),
            ({"data": {"message": "x"}, "name": "n" * 81}, ["name"]),
        ],
    )
    def test_event_data_not_matching_the_inputs_is_422(
        self, client: FlaskClient, stocked: dict[str, Any], body: Any, fields: list[str]
    ) -> None:
        with unchanged(client):
            response = client.post("/e/wf", json=body)
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["error"] == "invalid_event_data"
        assert fields_of(response.get_json()) == fields

    @pytest.mark.parametrize(
        ("declared", "good", "bad"),
        [
            ("string", ["", "x"], [1, None, True, [], {}]),
            ("str", ["x"], [1.5]),
            ("int", [0, -3, 2.0], [1.5, "1", True, None]),
            ("integer", [7], [False, "7"]),
            ("number", [1, 1.5, -0.25], ["1", True, None]),
            ("float", [2.5, 3], [[], False]),
            ("bool", [True, False], [0, 1, "true"]),
            ("boolean", [False], [None]),
            ("object", [{}, {"a": [1]}], [[], "{}", 1]),
            ("array", [[], [1, "a"]], [{}, "[]", 1]),
        ],
    )
    def test_event_data_types(
        self, client: FlaskClient, declared: str, good: list[Any], bad: list[Any]
    ) -> None:
        register(client, "/s", service_body("sink", inputs=[]))
        register(
            client, "/w", {"name": "typed", "services": ["sink"], "inputs": [{"name": "v", "type": declared}]}
        )
        for value in good:
            response = client.post("/e/typed?wait=0", json={"v": value})
            assert response.status_code == 202, (declared, value, response.get_json())
        with unchanged(client):
            for value in bad:
                response = client.post("/e/typed?wait=0", json={"v": value})
                assert response.status_code == 422, (declared, value)
                assert fields_of(response.get_json()) == ["v"]

    def test_optional_inputs_and_workflows_without_inputs(self, client: FlaskClient) -> None:
        register(client, "/s", service_body("sink", inputs=[]))
        register(
            client,
            "/w",
            {
                "name": "opt",
                "services": ["sink"],
                "inputs": [{"name": "v", "type": "int", "required": False}],
            },
        )
        assert client.post("/e/opt?wait=0", json={}).status_code == 202
        assert client.post("/e/opt?wait=0", json={"v": "x"}).status_code == 422
        register(client, "/w", {"name": "free", "services": ["sink"]})
        for data in ("null", "[1]", '"text"', '{"anything": 1}'):
            response = client.post("/e/free?wait=0", data=data, content_type="application/json")
            assert response.status_code == 202, data

    def test_stop(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        event_id = stocked["event"]["event_id"]
        with unchanged(client):
            for body in ([1], "x", {"error": 3}, {"cause": ["x"]}):
                response = client.post(f"/e/{event_id}/stop", json=body)
                assert response.status_code == 400, body
        response = client.post(f"/e/{event_id}/stop", json={"error": "Operator", "cause": "testing"})
        assert response.status_code == 200
        record = response.get_json()
        assert (record["status"], record["error"], record["cause"]) == ("ABORTED", "Operator", "testing")
        assert record["finished_at"] is not None
        history = client.get(f"/e/{event_id}/history").get_json()["events"]
        assert history[-1]["type"] == "ExecutionAborted"
        assert history[-1]["executionAbortedEventDetails"] == {"error": "Operator", "cause": "testing"}
        with unchanged(client):
            again = client.post(f"/e/{event_id}/stop")
            assert again.status_code == 409
            assert "ABORTED" in again.get_json()["message"]

    def test_stop_without_a_body(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        event_id = stocked["event"]["event_id"]
        response = client.post(f"/e/{event_id}/stop")
        assert response.status_code == 200
        assert response.get_json()["status"] == "ABORTED"

    def test_list_filters_and_cursor_pagination(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        register(client, "/w", {"name": "other", "services": ["upper"], "inputs": MESSAGE_IN})
        ids = [stocked["event"]["event_id"]]
        for index in range(6):
            workflow = "wf" if index % 2 else "other"
            ids.append(
                client.post(f"/e/{workflow}?wait=0", json={"message": str(index)}).get_json()["event_id"]
            )
        for event_id in ids[1::3]:
            assert client.post(f"/e/{event_id}/stop").status_code == 200
        everything = client.get("/e").get_json()
        assert [e["event_id"] for e in everything["events"]] == ids[::-1]
        assert everything["next_cursor"] is None

        pages: list[list[str]] = []
        url = "/e?limit=2"
        while True:
            body = client.get(url).get_json()
            pages.append([e["event_id"] for e in body["events"]])
            if body["next_cursor"] is None:
                break
            url = f"/e?limit=2&cursor={body['next_cursor']}"
        assert pages == [ids[6:4:-1], ids[4:2:-1], ids[2:0:-1], ids[0:1]]

        of_wf = [e["event_id"] for e in client.get("/e?workflow=wf").get_json()["events"]]
        assert of_wf == [ids[6], ids[4], ids[2], ids[0]]
        workflow_id = stocked["workflow"]["workflow_id"]
        assert [e["event_id"] for e in client.get(f"/e?workflow={workflow_id}").get_json()["events"]] == of_wf
        aborted = [e["event_id"] for e in client.get("/e?status=ABORTED").get_json()["events"]]
        assert aborted == [ids[4], ids[1]]
        running_wf = client.get("/e?workflow=wf&status=RUNNING&limit=1").get_json()
        assert [e["event_id"] for e in running_wf["events"]] == [ids[6]]
        rest = client.get(f"/e?workflow=wf&status=RUNNING&cursor={running_wf['next_cursor']}").get_json()
        assert [e["event_id"] for e in rest["events"]] == [ids[2], ids[0]]
        assert client.get("/e?status=SUCCEEDED").get_json() == {"events": [], "next_cursor": None}

    def test_wait_zero_answers_202_with_location(self, client: FlaskClient, stocked: dict[str, Any]) -> None:
        response = client.post("/e/wf?wait=0", json={"data": {"message": "x"}, "name": "my-event"})
        assert response.status_code == 202
        record = response.get_json()
        assert response.headers["Location"] == f"/e/{record['event_id']}"
        assert (record["status"], record["name"], record["workflow_version"]) == ("RUNNING", "my-event", 1)
        assert "output" not in record and record["finished_at"] is None
        assert client.get(response.headers["Location"]).get_json() == record


class TestTasks:
    @pytest.mark.parametrize("route", ["success", "failure", "heartbeat"])
    def test_token_is_required_and_must_be_known(
        self, client: FlaskClient, stocked: dict[str, Any], route: str
    ) -> None:
        with unchanged(client):
            for body in ({}, {"taskToken": 3}):
                response = client.post(f"/tasks/{route}", json=body)
                assert response.status_code == 400
                # Every field that is wrong is named (a success also needs its output).
                expected = ["output", "taskToken"] if route == "success" else ["taskToken"]
                assert sorted(fields_of(response.get_json())) == expected
            response = client.post(f"/tasks/{route}", json=[1])
            assert response.status_code == 400
            assert fields_of(response.get_json()) == ["(body)"]
            response = client.post(f"/tasks/{route}", json={"taskToken": "bogus", "output": 1})
            assert response.status_code == 404
            assert fields_of(response.get_json()) == ["taskToken"]

    def test_success_needs_output_and_failure_strings(
        self, client: FlaskClient, stocked: dict[str, Any]
    ) -> None:
        with unchanged(client):
            assert client.post("/tasks/success", json={"taskToken": "bogus"}).status_code == 400
            assert client.post("/tasks/failure", json={"taskToken": "bogus", "error": 1}).status_code == 400

    def test_failure_names_the_field_that_is_wrong(
        self, client: FlaskClient, stocked: dict[str, Any]
    ) -> None:
        # The hand-written check named `error` whatever was wrong; the schema names the field.
        with unchanged(client):
            response = client.post("/tasks/failure", json={"taskToken": "bogus", "cause": 7})
            assert response.status_code == 400
            assert fields_of(response.get_json()) == ["cause"]
            response = client.post("/tasks/failure", json={"taskToken": "bogus", "error": "e" * 257})
            assert fields_of(response.get_json()) == ["error"]


class TestMisc:
    def test_healthcheck(self, client: FlaskClient) -> None:
        response = client.get("/healthcheck")
        assert response.status_code == 204
        assert response.data == b""

    def test_unknown_routes_and_methods_answer_json(self, client: FlaskClient) -> None:
        missing = client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.get_json()["error"] == "not_found"
        wrong = client.patch("/s")
        assert wrong.status_code == 405
        assert wrong.get_json()["error"] == "method_not_allowed"


# events on a running worker ---------------------------------------------------------------------------------


@pytest.fixture
def text_client(live_client: FlaskClient, text_services: dict[str, str]) -> FlaskClient:
    register_text_services(live_client, text_services)
    register(
        live_client,
        "/w",
        {
            "name": "process-text",
            "services": ["upper", "reverse", "space-counter"],
            "inputs": MESSAGE_IN,
            "outputs": [{"name": "message", "type": "string"}, {"name": "space_count", "type": "int"}],
        },
    )
    return live_client


class TestEventRuns:
    def test_the_readme_example(self, text_client: FlaskClient) -> None:
        response = text_client.post("/e/process-text", json={"data": {"message": "The Sun will rise"}})
        assert response.status_code == 201, response.get_json()
        record = response.get_json()
        assert record["status"] == "SUCCEEDED"
        assert record["output"] == {"message": "ESIR LLIW NUS EHT", "space_count": 3}
        assert record["finished_at"] is not None
        assert "Location" not in response.headers

    def test_wait_zero_then_long_poll(self, text_client: FlaskClient) -> None:
        response = text_client.post("/e/process-text?wait=0", json={"message": "a b"})
        assert response.status_code == 202
        location = response.headers["Location"]
        record = text_client.get(f"{location}?wait=10").get_json()
        assert record["status"] == "SUCCEEDED"
        assert record["output"] == {"message": "B A", "space_count": 1}
        assert text_client.get(location).get_json() == record

    def test_history_pages_with_a_cursor_both_ways(self, text_client: FlaskClient) -> None:
        event = text_client.post("/e/process-text", json={"message": "x y"}).get_json()
        url = f"/e/{event['event_id']}/history"
        whole = text_client.get(url).get_json()
        assert whole["next_cursor"] is None
        everything = [e["id"] for e in whole["events"]]
        for reverse, expected in ((False, everything), (True, everything[::-1])):
            pages, after = [], None
            while True:
                query = f"?limit=4&reverse={str(reverse).lower()}" + (f"&after={after}" if after else "")
                body = text_client.get(url + query).get_json()
                pages.append([e["id"] for e in body["events"]])
                after = body["next_cursor"]
                if after is None:
                    break
                assert after == pages[-1][-1]
            assert [i for page in pages for i in page] == expected
            assert all(len(page) == 4 for page in pages[:-1]) and 0 < len(pages[-1]) <= 4
        tail = text_client.get(f"{url}?after={everything[-2]}").get_json()
        assert [e["type"] for e in tail["events"]] == ["ExecutionSucceeded"]
        assert tail["next_cursor"] is None

    @pytest.mark.parametrize(
        "query, field",
        [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("after=-1", "after"),
            ("after=" + "9" * 5000, "after"),
            ("after=\u00b2", "after"),
            ("reverse=maybe", "reverse"),
        ],
    )
    def test_bad_history_arguments_are_400(
        self, client: FlaskClient, stocked: dict[str, Any], query: str, field: str
    ) -> None:
        response = client.get(f"/e/{stocked['event']['event_id']}/history?{query}")
        assert response.status_code == 400
        assert fields_of(response.get_json()) == [field]

    def test_history_has_aws_shaped_events(self, text_client: FlaskClient) -> None:
        event = text_client.post("/e/process-text", json={"message": "x y"}).get_json()
        body = text_client.get(f"/e/{event['event_id']}/history").get_json()
        assert body["event_id"] == event["event_id"]
        events = body["events"]
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert [e["previousEventId"] for e in events] == list(range(len(events)))
        types = [e["type"] for e in events]
        assert types[0] == "ExecutionStarted"
        assert types[-1] == "ExecutionSucceeded"
        assert types.count("TaskScheduled") == types.count("TaskSucceeded") == 3
        started = events[0]["executionStartedEventDetails"]
        assert json.loads(started["input"]) == {"message": "x y"}
        scheduled = next(e for e in events if e["type"] == "TaskScheduled")["taskScheduledEventDetails"]
        assert scheduled["resource"] == "upper"
        assert json.loads(scheduled["parameters"]) == {"message": "x y"}
        succeeded = next(e for e in events if e["type"] == "TaskSucceeded")["taskSucceededEventDetails"]
        assert json.loads(succeeded["output"]) == {"message": "X Y"}
        final = events[-1]["executionSucceededEventDetails"]
        assert json.loads(final["output"]) == {"message": "Y X", "space_count": 1}
        entered = next(e for e in events if e["type"] == "TaskStateEntered")
        assert entered["stateEnteredEventDetails"]["name"] == "upper"
        assert all(e["timestamp"].endswith("Z") for e in events)

    def test_an_execution_pins_its_version(
        self, make_app: Callable[..., Flask], text_services: dict[str, str]
    ) -> None:
        app = make_app()  # no worker yet: the event waits while the workflow changes
        client = app.test_client()
        register_text_services(client, text_services)
        spec: dict[str, Any] = {"name": "pinned", "services": ["upper"], "inputs": MESSAGE_IN}
        register(client, "/w", spec)
        early = client.post("/e/pinned?wait=0", json={"message": "abc"}).get_json()
        changed = client.put("/w/pinned", json={**spec, "services": ["upper", "reverse"]})
        assert changed.get_json()["version"] == 2
        late = client.post("/e/pinned?wait=0", json={"message": "abc"}).get_json()
        assert (early["workflow_version"], late["workflow_version"]) == (1, 2)
        orchestrator_of(app).start()
        assert finished(client, early)["output"] == {"message": "ABC"}
        assert finished(client, late)["output"] == {"message": "CBA"}
        assert [v["version"] for v in client.get("/w/pinned/versions").get_json()["versions"]] == [1, 2]

    def test_operations_in_the_simple_form(self, text_client: FlaskClient) -> None:
        register(
            text_client,
            "/w",
            {
                "name": "ops",
                "services": ["upper"],
                "inputs": [{"name": "text", "type": "string"}, {"name": "junk", "type": "int"}],
                "operations": [
                    {"op": "copy", "from": "text", "to": "message", "before": "upper"},
                    {"op": "move", "from": "text", "to": "original", "after": "upper"},
                    {"op": "set", "field": "meta", "value": {"source": "test", "n": [1]}},
                    {"op": "delete", "field": "junk"},
                ],
            },
        )
        record = text_client.post("/e/ops", json={"text": "hi there", "junk": 1}).get_json()
        assert record["status"] == "SUCCEEDED", record
        assert record["output"] == {
            "message": "HI THERE",
            "original": "hi there",
            "meta": {"source": "test", "n": [1]},
        }

    def test_envelope_with_callback_delivers_a_signed_webhook(
        self, text_client: FlaskClient, loopback: Callable[[Callable[[Received], Reply]], Loopback]
    ) -> None:
        receiver = loopback(lambda request: (204, "text/plain", b""))
        response = text_client.post(
            "/e/process-text",
            json={"data": {"message": "a b c"}, "callback_url": f"{receiver.url}/hook", "name": "hooked"},
        )
        record = response.get_json()
        assert record["status"] == "SUCCEEDED"
        assert record["name"] == "hooked"
        assert record["output"] == {"message": "C B A", "space_count": 2}
        # the API's record says how the delivery goes; the delivered record is the rest of it
        assert record.pop("webhook")["status"] in ("pending", "delivered")
        delivery = receiver.next_request()
        assert (delivery.method, delivery.path) == ("POST", "/hook")
        assert delivery.json() == record
        assert delivery.headers["X-Machinery-Event-Id"] == record["event_id"]
        timestamp = delivery.headers["X-Machinery-Timestamp"]
        assert delivery.headers["X-Machinery-Signature"] == sign(delivery.body, WEBHOOK_SECRET, timestamp)
        assert delivery.headers["X-Machinery-Signature"] != sign(delivery.body, "wrong", timestamp)

    def test_webhook_is_retried_until_delivered(
        self, make_app: Callable[..., Flask], text_services: dict[str, str], loopback: Any
    ) -> None:
        client = make_app(START_WORKER=True, TIME_SCALE=0.0).test_client()
        register_text_services(client, text_services)
        register(client, "/w", {"name": "up", "services": ["upper"], "inputs": MESSAGE_IN})
        replies = iter([(503, "text/plain", b"busy"), (200, "application/json", b"{}")])
        receiver = loopback(lambda request: next(replies))
        client.post("/e/up", json={"data": {"message": "x"}, "callback_url": receiver.url})
        first, second = receiver.next_request(), receiver.next_request()
        assert first.body == second.body

    def test_express_workflow(self, text_client: FlaskClient) -> None:
        created = register(
            text_client, "/w", {"name": "quick", "services": ["upper"], "inputs": MESSAGE_IN, "express": True}
        )
        assert created["express"] is True
        response = text_client.post("/e/quick", json={"message": "fast"})
        assert response.status_code == 201
        record = response.get_json()
        assert (record["status"], record["express"], record["output"]) == (
            "SUCCEEDED",
            True,
            {"message": "FAST"},
        )
        assert text_client.get(f"/e/{record['event_id']}").get_json() == record
        types = [e["type"] for e in text_client.get(f"/e/{record['event_id']}/history").get_json()["events"]]
        assert types[0] == "ExecutionStarted"
        assert "TaskSucceeded" in types
        assert types[-1] == "ExecutionSucceeded"
        assert record["event_id"] in [
            e["event_id"] for e in text_client.get("/e?workflow=quick").get_json()["events"]
        ]

    def test_express_with_wait_zero(self, text_client: FlaskClient) -> None:
        register(
            text_client, "/w", {"name": "quick", "services": ["upper"], "inputs": MESSAGE_IN, "express": True}
        )
        response = text_client.post("/e/quick?wait=0", json={"message": "later"})
        assert response.status_code == 202
        assert finished(text_client, response.get_json())["output"] == {"message": "LATER"}


class TestTaskErrors:
    def run_against(self, client: FlaskClient, address: str, **settings: Any) -> dict[str, Any]:
        register(client, "/s", service_body("flaky", address, **settings))
        register(client, "/w", {"name": "flaky-wf", "services": ["flaky"], "inputs": MESSAGE_IN})
        response = client.post("/e/flaky-wf", json={"message": "x"})
        assert response.status_code == 201, response.get_json()
        record: dict[str, Any] = response.get_json()
        assert record["status"] == "FAILED"
        assert "output" not in record
        return record

    def test_json_error_reply_names_the_error(self, live_client: FlaskClient, loopback: Any) -> None:
        body = json.dumps({"error": "Text.TooLong", "cause": "the text is too long"}).encode()
        service = loopback(lambda request: (422, "application/json", body))
        record = self.run_against(live_client, service.url)
        assert (record["error"], record["cause"]) == ("Text.TooLong", "the text is too long")
        history = live_client.get(f"/e/{record['event_id']}/history").get_json()["events"]
        failed = next(e for e in history if e["type"] == "TaskFailed")["taskFailedEventDetails"]
        assert (failed["error"], failed["cause"]) == ("Text.TooLong", "the text is too long")
        assert history[-1]["type"] == "ExecutionFailed"
        assert history[-1]["executionFailedEventDetails"]["error"] == "Text.TooLong"

    def test_non_json_500(self, live_client: FlaskClient, loopback: Any) -> None:
        service = loopback(lambda request: (500, "text/plain", b"internal kaboom"))
        record = self.run_against(live_client, service.url)
        assert record["error"] == "States.Http.StatusCode.500"
        assert "internal kaboom" in record["cause"]

    def test_closed_port_is_a_socket_error(self, live_client: FlaskClient, closed_port: int) -> None:
        record = self.run_against(live_client, f"http://127.0.0.1:{closed_port}/event")
        assert record["error"] == "States.Http.Socket"

    def test_slow_service_times_out(
        self, live_client: FlaskClient, loopback: Any, release_blocked: Any
    ) -> None:
        def blocked(request: Received) -> Reply:
            release_blocked.wait(30)
            return 200, "application/json", b"{}"

        service = loopback(blocked)
        record = self.run_against(live_client, service.url, timeout_seconds=0.2)
        assert record["error"] == "States.Timeout"
        assert service.next_request().json() == {"message": "x"}

    def test_request_carries_identity_headers(self, live_client: FlaskClient, loopback: Any) -> None:
        service = loopback(lambda request: (200, "application/json", b'{"seen": true}'))
        register(live_client, "/s", service_body("echo", service.url, headers={"X-Api-Key": "k"}))
        register(live_client, "/w", {"name": "echo-wf", "services": ["echo"], "inputs": MESSAGE_IN})
        record = live_client.post("/e/echo-wf", json={"message": "x"}).get_json()
        assert record["output"] == {"message": "x", "seen": True}
        call = service.next_request()
        assert call.headers["X-Machinery-Execution-Id"] == record["event_id"]
        assert call.headers["X-Api-Key"] == "k"
        assert call.headers["Idempotency-Key"]
        assert call.headers["traceparent"].startswith("00-")


class TestRegressions:
    def test_express_webhook_is_delivered_once(self, text_client: FlaskClient, loopback: Any) -> None:
        register(
            text_client, "/w", {"name": "quick", "services": ["upper"], "inputs": MESSAGE_IN, "express": True}
        )
        receiver = loopback(lambda request: (200, "application/json", b"{}"))
        record = text_client.post(
            "/e/quick", json={"data": {"message": "a"}, "callback_url": receiver.url}
        ).get_json()
        record.pop("webhook")
        assert receiver.next_request().json() == record
        # a second (normal) event's webhook arrives after any duplicate of the first would have
        register(text_client, "/w", {"name": "slow", "services": ["upper"], "inputs": MESSAGE_IN})
        other = text_client.post(
            "/e/slow", json={"data": {"message": "b"}, "callback_url": receiver.url}
        ).get_json()
        assert receiver.next_request().json()["event_id"] == other["event_id"]
        assert receiver.received.empty()

    def test_deleting_a_workflow_does_not_strand_its_running_events(
        self, make_app: Callable[..., Flask], text_services: dict[str, str]
    ) -> None:
        app = make_app()
        client = app.test_client()
        register_text_services(client, text_services)
        register(client, "/w", {"name": "doomed", "services": ["upper"], "inputs": MESSAGE_IN})
        event = client.post("/e/doomed?wait=0", json={"message": "abc"}).get_json()
        with unchanged(client):
            refused = client.delete("/w/doomed")
        assert refused.status_code == 409
        assert "running" in refused.get_json()["message"]
        orchestrator_of(app).start()
        assert finished(client, event)["output"] == {"message": "ABC"}
        assert client.delete("/w/doomed").status_code == 204

    def test_stopping_a_running_express_event_stores_its_final_record(
        self, live_client: FlaskClient, loopback: Any, release_blocked: Any
    ) -> None:
        def blocked(request: Received) -> Reply:
            release_blocked.wait(30)
            return 200, "application/json", b"{}"

        service = loopback(blocked)
        receiver = loopback(lambda request: (200, "application/json", b"{}"))
        register(live_client, "/s", service_body("stuck", service.url))
        register(
            live_client, "/w", {"name": "quick", "services": ["stuck"], "inputs": MESSAGE_IN, "express": True}
        )
        event = live_client.post(
            "/e/quick?wait=0", json={"data": {"message": "x"}, "callback_url": receiver.url}
        ).get_json()
        service.next_request()  # the task call is in flight
        stopped = live_client.post(f"/e/{event['event_id']}/stop", json={"cause": "enough"})
        assert stopped.status_code == 200
        assert (stopped.get_json()["status"], stopped.get_json()["cause"]) == ("ABORTED", "enough")
        listed = live_client.get("/e?workflow=quick").get_json()["events"]
        assert [(e["event_id"], e["status"]) for e in listed] == [(event["event_id"], "ABORTED")]
        assert receiver.next_request().json()["status"] == "ABORTED"
        assert live_client.post(f"/e/{event['event_id']}/stop").status_code == 409


class TestHttpTask:
    """``arn:aws:states:::http:invoke``: the request the Parameters describe, the reply shaped as AWS does."""

    def run(self, client: FlaskClient, endpoint: str) -> dict[str, Any]:
        task = {
            "Type": "Task",
            "Resource": "arn:aws:states:::http:invoke",
            "Parameters": {
                "ApiEndpoint": endpoint,
                "Method": "PUT",
                "Headers": {"X-Api-Key": "secret"},
                "QueryParameters": {"q": "a b"},
                "RequestBody": {"item.$": "$.item"},
            },
            "End": True,
        }
        register(
            client, "/w", {"name": "http-task", "definition": {"StartAt": "Call", "States": {"Call": task}}}
        )
        response = client.post("/e/http-task", json={"item": 7})
        assert response.status_code == 201, response.get_json()
        record: dict[str, Any] = response.get_json()
        return record

    def test_request_and_result(self, live_client: FlaskClient, loopback: Any) -> None:
        service = loopback(lambda request: (201, "application/json", b'{"stored": true}'))
        record = self.run(live_client, f"{service.url}/things")
        assert record["output"] == {
            "ResponseBody": {"stored": True},
            "StatusCode": 201,
            "StatusText": "Created",
        }
        call = service.next_request()
        assert (call.method, call.path) == ("PUT", "/things?q=a+b")
        assert call.headers["X-Api-Key"] == "secret"
        assert call.json() == {"item": 7}

    def test_error_status_fails_the_state(self, live_client: FlaskClient, loopback: Any) -> None:
        service = loopback(lambda request: (404, "text/plain", b"no such thing"))
        record = self.run(live_client, f"{service.url}/things")
        assert (record["status"], record["error"]) == ("FAILED", "States.Http.StatusCode.404")
        assert record["cause"] == "no such thing"
