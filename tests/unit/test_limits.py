"""Limits at the door: each of issue 8's findings answers a 4xx that names the limit and its setting, and
a refused request stores nothing.

Each test here failed on the code before the limits: deep nesting was a 500 (RecursionError), NaN and
1e999 were accepted as event data, a lone surrogate was a 500 at the storage layer, a 50 MB event was
accepted and stored, ``limit=²`` was a 500, and nothing bounded a definition's size or state count.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from machinery.api import orchestrator_of
from machinery.limits import MAX_SAFE_INTEGER, InputLimits, JsonRefused, load_json
from tests.unit.test_api import unchanged

PASS = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}


@pytest.fixture
def stocked(client: FlaskClient) -> FlaskClient:
    assert client.post("/w", json={"name": "wf", "definition": PASS}).status_code == 201
    return client


def post_raw(client: FlaskClient, url: str, raw: bytes) -> Any:
    return client.post(url, data=raw, content_type="application/json")


def assert_names_the_limit(body: dict[str, Any], limit: str, setting: str) -> None:
    assert body["limit"] == limit
    assert body["setting"] == setting
    assert setting in body["detail"]
    assert isinstance(body["limit_value"], int)


DEEP = b"[" * 100_000 + b"]" * 100_000


class TestNesting:
    def test_deep_event_is_400_not_500(self, stocked: FlaskClient) -> None:
        with unchanged(stocked):
            response = post_raw(stocked, "/e/wf?wait=0", DEEP)
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.content_type == "application/problem+json"
        assert_names_the_limit(response.get_json(), "max_json_depth", "MACHINERY_MAX_JSON_DEPTH")

    def test_deep_definition_is_400_not_500(self, stocked: FlaskClient) -> None:
        raw = b'{"name": "deep", "definition": {"StartAt": "A", "States": {"A": {"Type": "Pass", ' + (
            b'"Result": ' + DEEP + b', "End": true}}}}'
        )
        with unchanged(stocked):
            response = post_raw(stocked, "/w", raw)
        assert response.status_code == 400
        assert_names_the_limit(response.get_json(), "max_json_depth", "MACHINERY_MAX_JSON_DEPTH")

    def test_the_limit_is_exact_and_a_setting(self, make_app: Callable[..., Flask]) -> None:
        client = make_app(MAX_JSON_DEPTH=4).test_client()
        assert client.post("/w", json={"name": "wf", "definition": PASS}).status_code == 201
        assert post_raw(client, "/e/wf?wait=0", b"[[[[1]]]]").status_code == 202
        refused = post_raw(client, "/e/wf?wait=0", b"[[[[[1]]]]]")
        assert refused.status_code == 400
        assert refused.get_json()["limit_value"] == 4


class TestNotJson:
    @pytest.mark.parametrize(
        "raw",
        [
            b"NaN",
            b'{"a": Infinity}',
            b"[-Infinity]",
            b"1e999",
            b'{"x": -1E400}',
            b"9007199254740992",
            b"-" + b"9" * 5000,
        ],
    )
    def test_values_json_peers_refuse_are_400(self, stocked: FlaskClient, raw: bytes) -> None:
        with unchanged(stocked):
            response = post_raw(stocked, "/e/wf?wait=0", raw)
        assert response.status_code == 400, raw
        body = response.get_json()
        assert body["error"] == "bad_request"
        assert [issue["field"] for issue in body["errors"]] == ["(body)"]

    def test_the_largest_exact_integer_passes(self, stocked: FlaskClient) -> None:
        response = post_raw(
            stocked, "/e/wf?wait=0", json.dumps([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER]).encode()
        )
        assert response.status_code == 202
        assert json.loads(json.dumps(response.get_json())) is not None

    @pytest.mark.parametrize("raw", [b'"\\ud800"', b'{"\\udfff": 1}', b'["ok", "a\\ud83d"]'])
    def test_lone_surrogates_are_400(self, stocked: FlaskClient, raw: bytes) -> None:
        with unchanged(stocked):
            response = post_raw(stocked, "/e/wf?wait=0", raw)
        assert response.status_code == 400
        assert "surrogate" in response.get_json()["errors"][0]["message"]

    def test_a_surrogate_pair_is_text(self, stocked: FlaskClient) -> None:
        response = post_raw(stocked, "/e/wf?wait=0", b'{"smile": "\\ud83d\\ude00", "ok": "\\\\ud800"}')
        assert response.status_code == 202
        assert orchestrator_of(stocked.application).get_event(response.get_json()["event_id"]).input == {
            "smile": "\U0001f600",
            "ok": "\\ud800",
        }


class TestBodySize:
    def test_a_declared_oversize_body_is_refused_before_it_is_read(
        self, make_app: Callable[..., Flask]
    ) -> None:
        client = make_app(MAX_BODY_BYTES=1000).test_client()
        assert client.post("/w", json={"name": "wf", "definition": PASS}).status_code == 201

        class Unreadable(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                raise AssertionError("the body was read")

            readline = read  # type: ignore[assignment]

        with unchanged(client):
            response = client.post(
                "/e/wf",
                input_stream=Unreadable(),
                content_type="application/json",
                # What the client declares; the test client would otherwise measure the stream.
                environ_overrides={"CONTENT_LENGTH": str(50 * 1024 * 1024)},
            )
        assert response.status_code == 413
        body = response.get_json()
        assert body["error"] == "payload_too_large"
        assert_names_the_limit(body, "max_body_bytes", "MACHINERY_MAX_BODY_BYTES")

    def test_the_default_has_room_for_a_1_mib_definition(self, client: FlaskClient) -> None:
        padding = "x" * (1024 * 1024 - 200)
        definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": padding, "End": True}}}
        raw = json.dumps({"name": "big", "definition": definition}, indent=2).encode()
        assert len(raw) > 1024 * 1024 - 150
        assert post_raw(client, "/w", raw).status_code == 201


class TestDataLimit:
    def test_event_data_beyond_the_limit_is_413_and_nothing_is_stored(
        self, make_app: Callable[..., Flask], tmp_path: Any
    ) -> None:
        client = make_app(DATA_LIMIT=1000).test_client()
        assert client.post("/w", json={"name": "wf", "definition": PASS}).status_code == 201
        with unchanged(client):
            response = client.post("/e/wf?wait=0", json={"data": {"text": "x" * 2000}, "name": "big"})
        assert response.status_code == 413
        body = response.get_json()
        assert_names_the_limit(body, "data_limit", "MACHINERY_DATA_LIMIT")
        assert [issue["field"] for issue in body["errors"]] == ["(data)"]
        assert client.post("/e/wf?wait=0", json={"text": "x" * 900}).status_code == 202

    def test_task_output_beyond_the_limit_is_413(self, make_app: Callable[..., Flask]) -> None:
        client = make_app(DATA_LIMIT=100).test_client()
        response = client.post("/tasks/success", json={"taskToken": "bogus", "output": "x" * 200})
        assert response.status_code == 413
        assert_names_the_limit(response.get_json(), "data_limit", "MACHINERY_DATA_LIMIT")


class TestDefinitionLimits:
    def test_a_definition_beyond_the_size_limit_is_409(self, make_app: Callable[..., Flask]) -> None:
        client = make_app(MAX_DEFINITION_BYTES=500).test_client()
        definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "x" * 600, "End": True}}}
        with unchanged(client):
            response = client.post("/w", json={"name": "big", "definition": definition})
        assert response.status_code == 409
        body = response.get_json()
        assert body["error"] == "invalid_definition"
        assert_names_the_limit(body, "max_definition_bytes", "MACHINERY_MAX_DEFINITION_BYTES")

    def test_the_default_size_limit_is_aws_1_mib(self, client: FlaskClient) -> None:
        definition = {
            "StartAt": "A",
            "States": {"A": {"Type": "Pass", "Result": "x" * (1024 * 1024), "End": True}},
        }
        response = client.post("/w", json={"name": "big", "definition": definition})
        assert response.status_code == 409
        assert response.get_json()["limit_value"] == 1024 * 1024

    def test_states_beyond_the_count_limit_are_409_nested_ones_included(
        self, make_app: Callable[..., Flask]
    ) -> None:
        client = make_app(MAX_STATES=3).test_client()

        def branch(name: str) -> dict[str, Any]:
            return {"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}}

        parallel = {"Type": "Parallel", "Branches": [branch("P1"), branch("P2")], "End": True}
        three = {"StartAt": "Par", "States": {"Par": parallel}}
        assert client.post("/w", json={"name": "three", "definition": three}).status_code == 201
        branches = [branch("P1"), branch("P2"), branch("P3")]
        four = {"StartAt": "Par", "States": {"Par": {**parallel, "Branches": branches}}}
        with unchanged(client):
            response = client.post("/w", json={"name": "four", "definition": four})
        assert response.status_code == 409
        assert_names_the_limit(response.get_json(), "max_states", "MACHINERY_MAX_STATES")

    def test_a_simple_workflow_is_measured_as_compiled(self, make_app: Callable[..., Flask]) -> None:
        client = make_app(MAX_STATES=1).test_client()
        service = {"name": "up", "address": "http://127.0.0.1:9/x", "inputs": [], "outputs": []}
        assert client.post("/s", json=service).status_code == 201
        assert client.post("/w", json={"name": "one", "services": ["up"]}).status_code == 201
        response = client.post("/w", json={"name": "two", "services": ["up", "up"]})
        assert response.status_code == 409
        assert response.get_json()["limit"] == "max_states"


class TestQueryArguments:
    @pytest.mark.parametrize("query", ["limit=\u00b2", "limit=" + "9" * 5000, "limit=1.5", "limit=%00"])
    def test_odd_digits_are_400_not_500(self, stocked: FlaskClient, query: str) -> None:
        response = stocked.get(f"/e?{query}")
        assert response.status_code == 400
        assert [issue["field"] for issue in response.get_json()["errors"]] == ["limit"]

    @pytest.mark.parametrize("query", ["version=\u0661", "version=0", "version=x"])
    def test_workflow_version_goes_through_its_schema(self, stocked: FlaskClient, query: str) -> None:
        response = stocked.get(f"/w/wf?{query}")
        assert response.status_code == 400
        assert response.get_json()["errors"] == [
            {"field": "version", "message": "must be a whole number from 1 to 2147483647"}
        ]

    def test_unknown_arguments_are_ignored(self, stocked: FlaskClient) -> None:
        assert stocked.get("/e?whatever=1").status_code == 200


class TestLoader:
    def test_the_bracket_count_is_only_a_bound(self) -> None:
        limits = InputLimits(max_json_depth=2)
        # Brackets inside strings count towards the bound, not the depth.
        assert load_json(b'{"a": "[[[[{{{{"}', limits) == {"a": "[[[[{{{{"}
        with pytest.raises(JsonRefused):
            load_json(b'{"a": {"b": [1]}}', limits)

    def test_text_and_bytes_read_alike(self) -> None:
        assert load_json('{"a": 1.5}', InputLimits()) == load_json(b'{"a": 1.5}', InputLimits()) == {"a": 1.5}
