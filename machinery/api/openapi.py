"""``/openapi.json``: the OpenAPI 3.1 document, built from the routes' :class:`~machinery.api.spec.Operation`.

Nothing here is a second copy of a shape: request schemas come from :mod:`machinery.control.schemas`,
response shapes from :mod:`machinery.shapes`, and each named shape becomes one component that every use
refers to. A route is either described (``@operation``) or excluded with a reason (``@undocumented``);
:func:`undescribed_routes` lists those that are neither, and a test keeps that list empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

import machinery
from machinery import shapes
from machinery.api.spec import OPERATION_ATTRIBUTE, Body, Link, Operation, Reply, undocumented_reason
from machinery.auth.access import Access, route_access
from machinery.control import schemas
from machinery.errors import PROBLEM_TYPES

Schema = dict[str, Any]

#: Named shapes: each becomes ``#/components/schemas/<name>`` and every use of the object refers to it.
COMPONENTS: dict[str, Schema] = {
    "Field": shapes.FIELD,
    "Service": shapes.SERVICE,
    "ServiceList": shapes.SERVICE_LIST,
    "Workflow": shapes.WORKFLOW,
    "WorkflowSummary": shapes.WORKFLOW_SUMMARY,
    "WorkflowList": shapes.WORKFLOW_LIST,
    "VersionList": shapes.VERSION_LIST,
    "EventRecord": shapes.EVENT_RECORD,
    "WebhookStatus": shapes.WEBHOOK_STATUS,
    "EventList": shapes.EVENT_LIST,
    "HistoryEvent": shapes.HISTORY_EVENT,
    "HistoryPage": shapes.HISTORY_PAGE,
    "TaskAccepted": shapes.TASK_ACCEPTED,
    "Token": shapes.TOKEN,
    "IssuedToken": shapes.ISSUED_TOKEN,
    "TokenList": shapes.TOKEN_LIST,
    "TokenBody": schemas.TOKEN,
    "FieldIssue": shapes.FIELD_ISSUE,
    "Problem": shapes.PROBLEM,
    "ServiceBody": schemas.SERVICE,
    "WorkflowBody": schemas.WORKFLOW,
    "EventBody": schemas.EVENT_BODY,
    "EventEnvelope": schemas.EVENT_ENVELOPE,
    "StopBody": schemas.STOP,
    "RedriveBody": schemas.REDRIVE,
    "TaskSuccessBody": schemas.TASK_SUCCESS,
    "TaskFailureBody": schemas.TASK_FAILURE,
    "TaskHeartbeatBody": schemas.TASK_HEARTBEAT,
}

#: When each error status is answered (the ``description`` of its response).
PROBLEM_DESCRIPTIONS = {
    400: "the request cannot be read: malformed JSON, JSON a peer would refuse (NaN, a number beyond a "
    "double, a lone surrogate), nesting beyond `MACHINERY_MAX_JSON_DEPTH`, or an invalid query argument or "
    "body (`errors` names each field)",
    401: "an API token is needed and missing or not valid (`Authorization: Bearer <token>`; without any "
    "token the server admits loopback callers only)",
    403: "the token's scope does not cover the operation",
    404: "no such id or name",
    409: "the body is readable but invalid (`errors` has one entry per field), or conflicts with what is "
    "stored",
    413: "the body is larger than `MACHINERY_MAX_BODY_BYTES`, or the data larger than "
    "`MACHINERY_DATA_LIMIT` (the answer names the limit and its setting)",
    415: "the body is not JSON (`Content-Type: application/json`)",
    422: "the event data does not match the workflow's declared inputs, or an event option is invalid",
    503: "storage is unavailable; try again",
    507: "the database's disk is full: nothing was written; try again when there is room",
}

_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_TEMPLATE = re.compile(r"\{[^}]+\}")


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI 3.1 document (cached per app: routes do not change once it serves)."""
    cached: dict[str, Any] | None = app.extensions.get("machinery.openapi")
    if cached is None:
        cached = app.extensions["machinery.openapi"] = _build(app)
    return cached


def described_routes(app: Flask) -> Iterator[tuple[Rule, str, Operation]]:
    """Every (rule, method, operation) the document describes."""
    for rule in app.url_map.iter_rules():
        found: Operation | None = getattr(app.view_functions[rule.endpoint], OPERATION_ATTRIBUTE, None)
        if found is not None:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield rule, method, found


def undescribed_routes(app: Flask) -> list[str]:
    """Routes that are neither described nor excluded with a reason (``METHOD /path``)."""
    missing = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, OPERATION_ATTRIBUTE, None) or undocumented_reason(rule.endpoint, view):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            missing.append(f"{method} {rule.rule}")
    return missing


def openapi_path(rule: Rule) -> str:
    """``/e/<ref>`` → ``/e/{ref}``."""
    return _CONVERTER.sub(r"{\1}", rule.rule)


def _build(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, None] = {}
    templates: dict[str, str] = {}
    for rule, method, described in described_routes(app):
        missing = set(rule.arguments) ^ set(described.path)
        if missing:
            raise ValueError(f"{rule.rule}: path parameters {sorted(missing)} are not described")
        path = openapi_path(rule)
        # OpenAPI: /e/{a} and /e/{b} are one path; routes sharing a template must share the names.
        template = _TEMPLATE.sub("{}", path)
        if templates.setdefault(template, path) != path:
            raise ValueError(f"{path} and {templates[template]} are one path: name their parameters alike")
        paths.setdefault(path, {})[method.lower()] = _operation(rule, method, described)
        tags[described.tag] = None
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "machinery",
            "version": machinery.__version__,
            "summary": "A self-hosted, durable workflow orchestrator for HTTP services.",
            "description": "The native API. Errors are RFC 9457 problem details "
            "(`application/problem+json`); each problem type is explained at `/problems/<error>`. "
            "Interactive documentation: `/docs`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token (`machinery tokens create --name NAME --scope write`)",
                }
            },
            "schemas": {name: _refer(schema, root=name) for name, schema in COMPONENTS.items()},
            "responses": {
                _problem_response_name(status): _problem_response(status)
                for status in sorted(PROBLEM_DESCRIPTIONS)
            },
        },
    }


def _operation(rule: Rule, method: str, described: Operation) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    for name, param in described.path.items():
        found_param = {"name": name, "in": "path", "required": True, "description": param.description}
        found_param["schema"] = {"type": "string"}
        if param.example is not None:
            found_param["example"] = param.example
        parameters.append(found_param)
    for name, schema in described.query.items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": _refer(schema)}
        if "description" in schema:
            parameter["description"] = schema["description"]
        parameters.append(parameter)
    found: dict[str, Any] = {
        "operationId": described.operation_id,
        "summary": described.summary,
        "tags": [described.tag],
    }
    if described.description:
        found["description"] = described.description
    if parameters:
        found["parameters"] = parameters
    if described.body is not None:
        found["requestBody"] = _request_body(described.body)
    statuses = set(described.problem_statuses())
    if method != "GET":
        statuses.add(507)
    # No access rule: the route is closed (403) until machinery/auth/access.py decides (a test says so).
    access = route_access(method, rule.rule) or Access.ADMIN
    if access.scope is not None:
        found["security"] = [{"bearer": []}]
        found["description"] = (
            f"{described.description} Needs an API token with scope `{access.scope.value}` (or above)."
        ).strip()
        statuses.update((401, 403))
    else:
        found["security"] = []  # open: public, or the task token in the body is the credential
    responses: dict[str, Any] = {str(reply.status): _reply(reply) for reply in described.replies}
    for status in sorted(statuses):
        if status not in PROBLEM_DESCRIPTIONS:
            raise ValueError(f"{rule.rule}: no description of status {status} (PROBLEM_DESCRIPTIONS)")
        responses[str(status)] = {"$ref": f"#/components/responses/{_problem_response_name(status)}"}
    found["responses"] = responses
    return found


def _request_body(body: Body) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": _refer(body.schema)}
    if body.examples:
        media["examples"] = {name: {"value": value} for name, value in body.examples.items()}
    return {
        "required": body.required,
        "description": body.description,
        "content": {"application/json": media},
    }


def _reply(reply: Reply) -> dict[str, Any]:
    found: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        found["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in reply.headers.items()
        }
    if reply.schema is not None:
        found["content"] = {"application/json": {"schema": _refer(reply.schema)}}
    if reply.links:
        found["links"] = {name: _link(link) for name, link in reply.links.items()}
    return found


def _link(link: Link) -> dict[str, Any]:
    found: dict[str, Any] = {"operationId": link.operation_id, "description": link.description}
    if link.parameters:
        found["parameters"] = dict(link.parameters)
    if link.request_body is not None:
        found["requestBody"] = link.request_body
        # Tell schemathesis (the contract test) that the body is the whole body, not fields to merge.
        found["x-schemathesis"] = {"merge_body": False}
    return found


def _problem_response_name(status: int) -> str:
    return f"Problem{status}"


def _problem_response(status: int) -> dict[str, Any]:
    types = sorted(code for code, problem in PROBLEM_TYPES.items() if problem.status == status)
    described = PROBLEM_DESCRIPTIONS[status]
    if types:
        described += f" (problem types: {', '.join(f'`{code}`' for code in types)})"
    return {
        "description": described,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


_NAMES = {id(schema): name for name, schema in COMPONENTS.items()}


def _refer(schema: Any, root: str | None = None) -> Any:
    """A copy of ``schema`` in which every named shape (but ``root`` itself) is a ``$ref``."""
    if isinstance(schema, dict):
        name = _NAMES.get(id(schema))
        if name is not None and name != root:
            return {"$ref": f"#/components/schemas/{name}"}
        return {key: _refer(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_refer(item) for item in schema]
    return schema
