"""``/openapi.json`` is valid OpenAPI 3.1, describes every route the app registers, and is built from the
very schemas that validate requests; errors are RFC 9457 problem details whose types have pages."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from machinery import shapes
from machinery.api import openapi
from machinery.api.spec import Reply, operation, undocumented
from machinery.control import schemas
from machinery.errors import PROBLEM_TYPES


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_is_described_or_excluded_with_a_reason(app: Flask, spec: dict[str, Any]) -> None:
    assert openapi.undescribed_routes(app) == []
    described = {(method.lower(), path) for path, item in spec["paths"].items() for method in item}
    registered = {
        (method.lower(), openapi.openapi_path(rule)) for rule, method, _ in openapi.described_routes(app)
    }
    assert described == registered
    # The seed's contract is there, each with its documented status codes.
    assert {"201", "409", "415", "400"} <= set(spec["paths"]["/s"]["post"]["responses"])
    assert {"201", "202", "404", "413", "422"} <= set(spec["paths"]["/e/{ref}"]["post"]["responses"])
    assert "204" in spec["paths"]["/healthcheck"]["get"]["responses"]


def test_a_new_route_without_a_description_is_caught(make_app: Any) -> None:
    app: Flask = make_app()
    extra = Blueprint("extra", __name__)

    @extra.get("/new-thing")
    def new_thing() -> str:
        return "x"

    @extra.get("/page")
    @undocumented("a page for people")
    def page() -> str:
        return "x"

    @extra.get("/described/<name>")
    @operation(
        "Described", tag="extra", path={"name": "a name"}, replies=(Reply(200, "ok", {"type": "object"}),)
    )
    def described(name: str) -> dict[str, str]:
        return {"name": name}

    app.register_blueprint(extra)
    assert openapi.undescribed_routes(app) == ["GET /new-thing"]
    assert "/described/{name}" in openapi.document(app)["paths"]


def test_shapes_are_the_validating_schemas(spec: dict[str, Any]) -> None:
    components = spec["components"]["schemas"]
    # One copy: the published component is the validating schema, named parts replaced by references.
    for name, schema in openapi.COMPONENTS.items():
        assert components[name] == openapi._refer(schema, root=name)
    assert components["ServiceBody"]["properties"]["inputs"]["items"] == {
        "$ref": "#/components/schemas/Field"
    }
    body = spec["paths"]["/w"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/WorkflowBody"}
    limit = next(p for p in spec["paths"]["/e"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == schemas.LIST_EVENTS_QUERY["limit"]


def test_links_lead_from_a_workflow_to_its_events(spec: dict[str, Any]) -> None:
    created = spec["paths"]["/w"]["post"]["responses"]["201"]["links"]["StartEvent"]
    assert created["operationId"] == "createEvent"
    operation_ids = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    for item in spec["paths"].values():
        for op in item.values():
            for reply in op["responses"].values():
                for link in reply.get("links", {}).values():
                    assert link["operationId"] in operation_ids


def test_responses_match_their_shapes(client: FlaskClient, spec: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    service = {"name": "up", "address": "http://127.0.0.1:9/x", "inputs": [], "outputs": []}
    created = client.post("/s", json=service).get_json()
    Draft202012Validator(shapes.SERVICE).validate(created)
    workflow = client.post("/w", json={"name": "wf", "services": ["up"]}).get_json()
    Draft202012Validator(shapes.WORKFLOW).validate(workflow)
    event = client.post("/e/wf?wait=0", json={}).get_json()
    Draft202012Validator(shapes.EVENT_RECORD).validate(event)
    Draft202012Validator(shapes.HISTORY_PAGE).validate(
        client.get(f"/e/{event['event_id']}/history").get_json()
    )
    problem = client.get("/s/nope").get_json()
    Draft202012Validator(shapes.PROBLEM).validate(problem)


class TestProblems:
    def test_errors_are_problem_details_with_the_old_members(self, client: FlaskClient) -> None:
        response = client.post("/s", json={"name": "bad name!"})
        assert response.status_code == 409
        assert response.content_type == "application/problem+json"
        body = response.get_json()
        assert body["type"] == "/problems/conflict"
        assert (body["status"], body["title"], body["instance"]) == (409, "Conflict", "/s")
        assert body["detail"] == body["message"]
        assert body["error"] == "conflict"
        assert {issue["field"] for issue in body["errors"]} == {"name", "address"}

    def test_every_type_has_a_page(self, client: FlaskClient) -> None:
        index = client.get("/problems")
        assert index.status_code == 200
        for code, problem in PROBLEM_TYPES.items():
            assert f'href="/problems/{code}"' in index.get_data(as_text=True)
            page = client.get(f"/problems/{code}")
            assert page.status_code == 200
            assert problem.title in page.get_data(as_text=True)
        assert client.get("/problems/no_such_problem").status_code == 404

    def test_a_problem_type_resolves_to_its_page(self, client: FlaskClient) -> None:
        problem = client.get("/e/nope").get_json()
        page = client.get(problem["type"])
        assert page.status_code == 200
        assert page.content_type.startswith("text/html")
        assert "not_found" in page.get_data(as_text=True)

    def test_plain_http_errors_are_about_blank_and_keep_their_headers(self, client: FlaskClient) -> None:
        response = client.patch("/s")
        assert response.status_code == 405
        assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
        body = response.get_json()
        assert (body["type"], body["title"], body["error"]) == (
            "about:blank",
            "Method Not Allowed",
            "method_not_allowed",
        )
        unknown = client.get("/nowhere").get_json()
        assert (unknown["type"], unknown["status"], unknown["instance"]) == ("about:blank", 404, "/nowhere")

    def test_a_new_error_class_gets_a_page(self, client: FlaskClient) -> None:
        from machinery.errors import MachineryError

        class Teapot(MachineryError):
            """Short and stout."""

            status = 418
            code = "teapot_for_test"
            title = "I am a teapot"

        try:
            page = client.get("/problems/teapot_for_test")
            assert page.status_code == 200
            assert "Short and stout." in page.get_data(as_text=True)
        finally:
            del PROBLEM_TYPES["teapot_for_test"]


class TestDocsPage:
    def test_docs_page_is_served_offline(self, client: FlaskClient) -> None:
        page = client.get("/docs")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert "http://" not in text and "https://" not in text  # nothing from another host
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for asset in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
            assert f"/docs/assets/{asset}" in text
            served = client.get(f"/docs/assets/{asset}")
            try:
                assert served.status_code == 200 and len(served.data) > 10_000
            finally:
                served.close()  # a file response: close it as a server does
        assert "/openapi.json" in client.get("/docs/assets/init.js").get_data(as_text=True)

    def test_only_swagger_ui_files_are_served(self, client: FlaskClient) -> None:
        assert client.get("/docs/assets/../../errors.py").status_code == 404
        assert client.get("/docs/assets/index.html").status_code == 404
