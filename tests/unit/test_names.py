"""AWS's naming rule (1-80 characters, no white space, brackets, wildcards, special or control
characters) holds for workflows and executions on the native API too."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from machinery.control.names import name_problem

VALID = ["a", "x" * 80, "order-processing_v2.1", "café", "a@b", "日本語"]
INVALID = [
    "",
    "x" * 81,
    "a b",
    "a\tb",
    "a:b",
    "a/b",
    "a<b",
    "a{b",
    "a[b",
    "a?b",
    "a*b",
    'a"b',
    "a#b",
    "a%b",
    "a\\b",
    "a^b",
    "a|b",
    "a~b",
    "a`b",
    "a$b",
    "a&b",
    "a,b",
    "a;b",
    "a\x00b",
    "a\x1fb",
    "a\x7fb",
    "a\x9fb",
    "a\u3000b",
]


@pytest.mark.parametrize("name", VALID)
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", INVALID)
def test_invalid_names(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None and ("must not contain" in problem or "1 to 80" in problem)


def test_non_string() -> None:
    assert name_problem(12) == "must be a string"


ASL = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize("name", ["a:b", "a b", "x" * 81, "a/b"])
def test_native_workflow_names_follow_the_rule(client: FlaskClient, name: str) -> None:
    response = client.post("/w", json={"name": name, "definition": ASL})
    assert response.status_code == 409
    issue = response.get_json()["errors"][0]
    assert issue["field"] == "name"
    assert "must not contain" in issue["message"] or "80" in issue["message"]
    assert client.get("/w").get_json()["workflows"] == []


def test_native_event_names_follow_the_rule(client: FlaskClient) -> None:
    assert client.post("/w", json={"name": "wf", "definition": ASL}).status_code == 201
    response = client.post("/e/wf", json={"data": {}, "name": "bad name"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"field": "name", "message": name_problem("bad name")}]
    assert client.post("/e/wf?wait=0", json={"data": {}, "name": "good-name"}).status_code == 202
