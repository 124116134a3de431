"""The AWS JSON 1.0 protocol on ``POST /`` through Flask's test client: targets, bodies, errors, SigV4
scopes, and every answer checked against botocore's output shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from machinery.aws.model import service_model
from machinery.aws.protocol import ACTIONS
from tests.aws_shapes import check_output

HEADERS = {"Content-Type": "application/x-amz-json-1.0"}
ROLE = "arn:aws:iam::123456789012:role/test"
PASS = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})


def call(client: FlaskClient, action: str, body: Any = None, **headers: str) -> tuple[int, dict[str, Any]]:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    response = client.post(
        "/", data=raw, headers={**HEADERS, "X-Amz-Target": f"AWSStepFunctions.{action}", **headers}
    )
    assert response.content_type == "application/x-amz-json-1.0"
    assert response.headers["x-amzn-RequestId"]
    answer = json.loads(response.data)
    if response.status_code == 200 and action in ACTIONS:
        check_output(action, answer)
    return response.status_code, answer


def test_unknown_actions_answer_400_unknown_operation(client: FlaskClient) -> None:
    for target in ("AWSStepFunctions.NoSuchThing", "Other.CreateStateMachine", ""):
        response = client.post("/", data=b"{}", headers={**HEADERS, "X-Amz-Target": target})
        assert response.status_code == 400
        assert response.get_json(force=True)["__type"] == "UnknownOperationException"
        assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


@pytest.mark.parametrize("raw", [b"{", b"[1]", b"\xff", b'"text"'])
def test_bodies_that_are_not_json_objects(client: FlaskClient, raw: bytes) -> None:
    status, answer = call(client, "ListStateMachines", raw)
    assert status == 400 and answer["__type"] == "SerializationException"


HOSTILE_JSON = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "nan": b'{"a": NaN}',
    "huge number": b'{"a": 1e999}',
    "unsafe integer": b'{"a": 12345678901234567890}',
    "lone surrogate": b'"\\ud800"',
}


@pytest.mark.parametrize("raw", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_hostile_bodies_are_refused_as_serialization_errors(client: FlaskClient, raw: bytes) -> None:
    # A JSON body nested 100,000 deep was a 500 (RecursionError); NaN and 1e999 were accepted.
    status, answer = call(client, "ListStateMachines", raw.replace(b'"a"', b'"nextToken"'))
    assert status == 400 and answer["__type"] == "SerializationException", answer


@pytest.mark.parametrize("raw", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_hostile_json_inside_string_members_is_refused(client: FlaskClient, raw: bytes) -> None:
    text = raw.decode()
    status, answer = call(client, "CreateStateMachine", {"name": "m", "definition": text, "roleArn": ROLE})
    assert status == 400 and answer["__type"] == "InvalidDefinition", answer
    status, created = call(client, "CreateStateMachine", {"name": "m", "definition": PASS, "roleArn": ROLE})
    assert status == 200
    arn = created["stateMachineArn"]
    status, answer = call(client, "StartExecution", {"stateMachineArn": arn, "input": text})
    assert status == 400 and answer["__type"] == "InvalidExecutionInput", answer
    status, listed = call(client, "ListExecutions", {"stateMachineArn": arn})
    assert status == 200 and listed["executions"] == []  # nothing was started
    status, answer = call(client, "TestState", {"definition": PASS, "roleArn": ROLE, "input": text})
    assert status == 400 and answer["__type"] == "InvalidExecutionInput", answer
    status, answer = call(client, "SendTaskSuccess", {"taskToken": "t", "output": text})
    assert status == 400 and answer["__type"] == "InvalidOutput", answer


def test_validation_exception_names_every_constraint(client: FlaskClient) -> None:
    status, answer = call(client, "CreateStateMachine", {"name": "", "definition": PASS, "type": "OTHER"})
    assert status == 400 and answer["__type"] == "ValidationException"
    assert answer["message"].startswith("3 validation errors detected: ")
    assert (
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null" in answer["message"]
    )
    assert "Member must satisfy enum value set: [STANDARD, EXPRESS]" in answer["message"]
    status, answer = call(client, "ListStateMachines", {"maxResults": 1001})
    assert answer["message"] == (
        "1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000"
    )
    assert call(client, "ListStateMachines", {})[1] == {"stateMachines": []}


def test_region_and_account_come_from_the_credential_scope(client: FlaskClient) -> None:
    signed = (
        "AWS4-HMAC-SHA256 Credential={key}/20260101/{region}/states/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    body = {"name": "scoped", "definition": PASS, "roleArn": ROLE}
    status, answer = call(
        client,
        "CreateStateMachine",
        body,
        Authorization=signed.format(key="210987654321", region="eu-west-3"),
    )
    assert status == 200
    assert answer["stateMachineArn"] == "arn:aws:states:eu-west-3:210987654321:stateMachine:scoped"
    # A key that is not an account id: the configured default account; no header: the defaults.
    status, answer = call(
        client, "ListStateMachines", {}, Authorization=signed.format(key="AKIDEXAMPLE", region="ap-south-1")
    )
    assert (
        answer["stateMachines"][0]["stateMachineArn"]
        == "arn:aws:states:ap-south-1:000000000000:stateMachine:scoped"
    )
    status, answer = call(client, "ListStateMachines", {})
    assert (
        answer["stateMachines"][0]["stateMachineArn"]
        == "arn:aws:states:us-east-1:000000000000:stateMachine:scoped"
    )


def test_what_either_api_creates_the_other_lists(client: FlaskClient) -> None:
    native = {
        "name": "native",
        "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    assert client.post("/w", json=native).status_code == 201
    status, _answer = call(
        client, "CreateStateMachine", {"name": "viaaws", "definition": PASS, "roleArn": ROLE}
    )
    assert status == 200
    names = [m["name"] for m in call(client, "ListStateMachines", {})[1]["stateMachines"]]
    assert names == ["native", "viaaws"]
    assert sorted(w["name"] for w in client.get("/w").get_json()["workflows"]) == ["native", "viaaws"]
    status, described = call(
        client,
        "DescribeStateMachine",
        {"stateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:native"},
    )
    assert status == 200 and json.loads(described["definition"]) == native["definition"]
    assert described["roleArn"] == "arn:aws:iam::000000000000:role/machinery"


def test_every_registered_action_is_in_the_model() -> None:
    assert set(ACTIONS) <= set(service_model().operation_names)


def test_an_unexpected_error_is_answered_in_aws_shape(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setitem(ACTIONS, "ListStateMachines", broken)
    status, answer = call(client, "ListStateMachines", {})
    assert status == 500 and answer["__type"] == "InternalFailure"
    assert "a bug" not in answer["message"]  # no internals on the wire
