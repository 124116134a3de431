"""The console's server side through Flask's test client: the shell, the browser redirect of ``GET /``,
the graph and workflows views, and the data-flow replay."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from machinery import web

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def post(client: FlaskClient, path: str, body: Any) -> Any:
    response = client.post(path, json=body)
    assert response.status_code in (200, 201, 202), response.get_json()
    return response.get_json()


def flow_definition(call: str) -> dict[str, Any]:
    return {
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "InputPath": "$.in",
                "Parameters": {"v.$": "$.a", "twice.$": "States.MathAdd($.a, $.a)"},
                "ResultPath": "$.shaped",
                "OutputPath": "$.shaped",
                "Next": "Call",
            },
            "Call": {
                "Type": "Task",
                "Resource": call,
                "ResultSelector": {"got.$": "$.value"},
                "ResultPath": "$.call",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


@pytest.fixture
def asl(client: FlaskClient) -> dict[str, Any]:
    return post(client, "/w", {"name": "flow", "definition": flow_definition("http://127.0.0.1:9/x")})


def test_a_browser_at_the_root_is_sent_to_the_console(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert (response.status_code, response.headers["Location"]) == (302, "/ui/")


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5"])
def test_api_clients_at_the_root_still_get_the_json_404(client: FlaskClient, accept: str | None) -> None:
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("path", ["/ui/", "/ui/workflows/x", "/ui/executions/abc?state=S"])
def test_every_console_path_is_the_shell(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    built = (web.DIST / "console.js").exists()
    assert response.status_code == (200 if built else 503)
    assert response.mimetype == "text/html"
    assert "data-console-root" in response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    if built:
        assert "/ui/static/dist/console.js?v=" in response.get_data(as_text=True)
    else:
        assert "make setup" in response.get_data(as_text=True)


def test_an_unknown_console_view_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/ui/api/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_static_files_are_served_and_nothing_outside_them(client: FlaskClient) -> None:
    response = client.get("/ui/static/favicon.svg")
    response.close()
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert client.get("/ui/static/../__init__.py").status_code == 404
    assert client.get("/ui/static/%2e%2e/__init__.py").status_code == 404


def test_workflows_summary_counts_executions_by_status(client: FlaskClient, asl: dict[str, Any]) -> None:
    post(
        client,
        "/w",
        {"name": "quiet", "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}},
    )
    first = post(client, "/e/flow?wait=0", {"in": {"a": 1}})
    second = post(client, "/e/flow?wait=0", {"in": {"a": 2}})
    post(client, f"/e/{first['event_id']}/stop", {})
    listed = {w["name"]: w for w in client.get("/ui/api/workflows").get_json()["workflows"]}
    assert listed["flow"]["counts"] == {"ABORTED": 1, "RUNNING": 1}
    assert listed["flow"]["last_event"]["event_id"] == second["event_id"]
    assert (listed["flow"]["form"], listed["flow"]["version"]) == ("asl", 1)
    assert "definition" not in listed["flow"]
    assert listed["quiet"]["counts"] == {} and listed["quiet"]["last_event"] is None


def test_the_graph_of_a_workflow_version(client: FlaskClient, asl: dict[str, Any]) -> None:
    graph = client.get("/ui/api/workflows/flow/graph").get_json()
    assert (graph["workflow"], graph["version"]) == ("flow", 1)
    assert [n["name"] for n in graph["nodes"]] == ["Shape", "Call", "Done"]
    assert [(e["from"], e["to"], e["kind"]) for e in graph["edges"]] == [
        ("Shape", "Call", "next"),
        ("Call", "Done", "next"),
        ("Call", "Done", "catch"),
    ]
    assert client.get("/ui/api/workflows/nope/graph").status_code == 404
    for bad in ("0", "x", "1.5", "99999999999"):
        response = client.get(f"/ui/api/workflows/flow/graph?version={bad}")
        assert response.status_code in (400, 404)
    assert client.get("/ui/api/workflows/flow/graph?version=2").status_code == 404


def test_a_simple_workflows_graph_carries_fields_and_the_type_check(client: FlaskClient) -> None:
    typed = {"name": "message", "type": "string"}
    post(
        client,
        "/s",
        {"name": "upper", "address": "http://127.0.0.1:9/u", "inputs": [typed], "outputs": [typed]},
    )
    post(client, "/w", {"name": "simple", "services": ["upper"], "inputs": [typed]})
    graph = client.get("/ui/api/workflows/simple/graph").get_json()
    (node,) = graph["nodes"]
    assert node["inputs"] == [{"name": "message", "type": "string", "issue": None}]
    assert graph["issues"] == []
    # The service changes under the workflow: the check is run again against what is registered now.
    post(
        client,
        "/s",
        {"name": "upper", "address": "http://127.0.0.1:9/u", "inputs": [{"name": "n", "type": "int"}]},
    )
    graph = client.get("/ui/api/workflows/simple/graph").get_json()
    assert graph["nodes"][0]["inputs"][0]["issue"] is not None
    assert len(graph["issues"]) == 1


@pytest.fixture
def replayed(live_client: FlaskClient, loopback: Any) -> tuple[FlaskClient, str, dict[str, int]]:
    """A finished execution of the flow: its id and the ids of the events the replay reads."""
    service = loopback(lambda _request: (200, "application/json", b'{"value": 7, "x": 0}'))
    post(live_client, "/w", {"name": "flow", "definition": flow_definition(f"{service.url}/call")})
    event = post(live_client, "/e/flow?wait=10", {"in": {"a": 2}})
    assert event["status"] == "SUCCEEDED", event
    history = live_client.get(f"/e/{event['event_id']}/history").get_json()["events"]
    ids = {}
    for item in history:
        details = next((v for k, v in item.items() if k.endswith("EventDetails")), {})
        if item["type"].endswith("StateEntered"):
            ids[details["name"]] = item["id"]
        if item["type"] == "TaskSucceeded":
            ids["result"] = item["id"]
    return live_client, event["event_id"], ids


def test_dataflow_replays_each_jsonpath_step(replayed: tuple[FlaskClient, str, dict[str, int]]) -> None:
    client, event_id, ids = replayed
    url = f"/ui/api/executions/{event_id}/dataflow"

    def steps(query: str) -> list[tuple[str, Any]]:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, response.get_json()
        return [(s["step"], s.get("value", s.get("error"))) for s in response.get_json()["steps"]]

    assert steps(f"state=Shape&entered={ids['Shape']}") == [
        ("InputPath", {"a": 2}),
        ("Parameters", {"v": 2, "twice": 4}),
        ("ResultPath", {"in": {"a": 2}, "shaped": {"v": 2, "twice": 4}}),
        ("OutputPath", {"v": 2, "twice": 4}),
    ]
    assert steps(f"state=Call&entered={ids['Call']}&result={ids['result']}") == [
        ("InputPath", {"v": 2, "twice": 4}),
        ("ResultSelector", {"got": 7}),
        ("ResultPath", {"v": 2, "twice": 4, "call": {"got": 7}}),
        ("OutputPath", {"v": 2, "twice": 4, "call": {"got": 7}}),
    ]
    # Without a result (the task failed or runs), the steps stop before it.
    assert steps(f"state=Call&entered={ids['Call']}") == [("InputPath", {"v": 2, "twice": 4})]


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "state"),
        ("state=Shape", "entered"),
        ("state=Nope&entered=2", "state"),
        ("state=Shape&entered=x", "entered"),
        ("state=Shape&entered=999", "entered"),
        ("state=Call&entered={Shape}", "entered"),
        ("state=Call&entered={Call}&result={Shape}", "result"),
    ],
)
def test_dataflow_refuses_bad_requests(
    replayed: tuple[FlaskClient, str, dict[str, int]], query: str, field: str
) -> None:
    client, event_id, ids = replayed
    response = client.get(f"/ui/api/executions/{event_id}/dataflow?{query.format(**ids)}")
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["errors"]] == [field]
    assert client.get("/ui/api/executions/nope/dataflow?state=Shape&entered=1").status_code == 404


def test_with_tokens_the_console_views_need_a_session_with_csrf(
    client: FlaskClient, asl: dict[str, Any]
) -> None:
    assert client.get("/ui/api/session").get_json() == {
        "signed_in": False, "name": None, "scope": None, "required": False
    }  # fmt: skip
    issued = post(client, "/tokens", {"name": "viewer", "scope": "read"})
    assert client.get("/ui/api/workflows").status_code == 401
    assert client.get("/ui/api/workflows/flow/graph").status_code == 401
    assert client.get("/ui/api/session").get_json()["required"] is True
    assert client.get("/ui/").status_code in (200, 503)  # the pages themselves hold no data
    assert client.post("/ui/api/session", json={"token": "wrong"}).status_code == 401
    assert client.post("/ui/api/session", json={}).status_code == 400
    signed = client.post("/ui/api/session", json={"token": issued["token"]})
    assert signed.status_code == 204
    assert {c.split("=", 1)[0] for c in signed.headers.getlist("Set-Cookie")} == {
        "machinery_session",
        "machinery_csrf",
    }
    assert client.get("/ui/api/session").get_json() == {
        "signed_in": True, "name": "viewer", "scope": "read", "required": False
    }  # fmt: skip
    assert client.get("/ui/api/workflows").status_code == 200
    event = client.post("/e/flow?wait=0", json={"in": {"a": 1}})
    assert event.status_code == 403  # a read token's session cannot start executions (and sent no CSRF)
    csrf = client.get_cookie("machinery_csrf")
    assert csrf is not None and csrf.value != issued["token"]
    assert client.delete("/ui/api/session", headers={"X-CSRF-Token": csrf.value}).status_code == 204
    assert client.get("/ui/api/workflows").status_code == 401
