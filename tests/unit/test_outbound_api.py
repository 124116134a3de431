"""Outbound control through the API: refused addresses and bad headers in definitions are 409s (422 for
an event's callback_url), and at run time an HTTP task fails naming the header or the refused target."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

HTTP_TASK = "arn:aws:states:::http:invoke"


def _http_workflow(name: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "definition": {
            "StartAt": "Call",
            "States": {"Call": {"Type": "Task", "Resource": HTTP_TASK, "Parameters": params, "End": True}},
        },
    }


def _problem(response: Any) -> str:
    return json.dumps(response.get_json())


class TestDefinitions:
    def test_a_service_header_with_cr_lf_is_a_409_naming_the_header(self, client: FlaskClient) -> None:
        body = {"name": "svc", "address": "http://127.0.0.1:9/x", "headers": {"X-Api-Key": "k\r\nEvil: 1"}}
        response = client.post("/s", json=body)
        assert response.status_code == 409
        assert "headers/X-Api-Key" in _problem(response) and "CR, LF" in _problem(response)
        assert client.get("/s/svc").status_code == 404

    def test_a_service_header_name_with_a_newline_or_nul_is_a_409(self, client: FlaskClient) -> None:
        for name in ("X-A\nB", "X-Nul\u0000"):
            response = client.post(
                "/s", json={"name": "svc", "address": "http://127.0.0.1:9/", "headers": {name: "v"}}
            )
            assert response.status_code == 409, name
            assert "is not a valid HTTP token" in _problem(response)

    def test_a_service_at_the_metadata_address_is_a_409(self, client: FlaskClient) -> None:
        response = client.post("/s", json={"name": "meta", "address": "http://169.254.169.254/latest/"})
        assert response.status_code == 409
        assert "address" in _problem(response) and "MACHINERY_DENIED_TARGETS" in _problem(response)

    def test_static_targets_and_headers_of_an_asl_definition_are_checked(self, client: FlaskClient) -> None:
        cases = [
            {"ApiEndpoint": "http://[fd00:ec2::254]/", "Method": "GET"},
            {"ApiEndpoint": "http://127.0.0.1:9/", "Method": "GET", "Headers": {"X-Bad\r\n": "1"}},
            {"ApiEndpoint": "http://127.0.0.1:9/", "Method": "GET", "Headers": {"X-Bad": "a\nb"}},
        ]
        for params in cases:
            response = client.post("/w", json=_http_workflow("refused", params))
            assert response.status_code == 409, params
            assert "definition/States/Call/Parameters" in _problem(response)
        url_resource = {
            "name": "url",
            "definition": {
                "StartAt": "A",
                "States": {"A": {"Type": "Task", "Resource": "http://169.254.169.254/x", "End": True}},
            },
        }
        response = client.post("/w", json=url_resource)
        assert response.status_code == 409 and "definition/States/A/Resource" in _problem(response)
        # computed values are checked when the call is made
        computed = {"ApiEndpoint.$": "$.url", "Method": "GET", "Headers": {"X-Test.$": "$.h"}}
        assert client.post("/w", json=_http_workflow("computed", computed)).status_code == 201

    def test_the_allow_list_applies_to_definitions(self, make_app: Callable[..., Flask]) -> None:
        client = make_app(ALLOWED_TARGETS="10.0.0.0/8,services.internal").test_client()
        response = client.post("/s", json={"name": "local", "address": "http://127.0.0.1:9/"})
        assert response.status_code == 409 and "MACHINERY_ALLOWED_TARGETS" in _problem(response)
        assert (
            client.post("/s", json={"name": "ok", "address": "http://services.internal/x"}).status_code == 201
        )

    def test_a_refused_callback_url_is_the_invalid_event_options_status(self, client: FlaskClient) -> None:
        client.post("/w", json=_http_workflow("wf", {"ApiEndpoint": "http://127.0.0.1:9/", "Method": "GET"}))
        response = client.post(
            "/e/wf", json={"data": {}, "callback_url": "http://169.254.169.254/latest/meta-data/"}
        )
        assert response.status_code == 422
        assert "callback_url" in _problem(response) and "MACHINERY_DENIED_TARGETS" in _problem(response)


class TestRunTime:
    def test_the_issue_repro_fails_the_state_naming_the_header(
        self, live_client: FlaskClient, loopback: Any
    ) -> None:
        receiver = loopback(lambda request: (200, "application/json", b"{}"))
        params = {"ApiEndpoint": f"{receiver.url}/x", "Method": "POST", "Headers": {"X-Test.$": "$.h"}}
        assert live_client.post("/w", json=_http_workflow("inject", params)).status_code == 201
        record = live_client.post("/e/inject", json={"h": "a\r\nInjected: yes"}).get_json()
        assert record["status"] == "FAILED"
        assert record["error"] == "States.Runtime"
        assert "X-Test" in record["cause"] and "CR, LF" in record["cause"]

    def test_a_refused_target_fails_the_state_with_states_permissions(
        self, make_app: Callable[..., Flask]
    ) -> None:
        client = make_app(START_WORKER=True, DENIED_TARGETS="127.0.0.0/8,::1").test_client()
        params = {"ApiEndpoint.$": "$.url", "Method": "GET"}
        assert client.post("/w", json=_http_workflow("ssrf", params)).status_code == 201
        record = client.post("/e/ssrf", json={"url": "http://localhost:9/admin"}).get_json()
        assert (record["status"], record["error"]) == ("FAILED", "States.Permissions")
        assert "localhost" in record["cause"] and "MACHINERY_DENIED_TARGETS (127.0.0.0/8)" in record["cause"]
