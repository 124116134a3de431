"""The public JSON shapes: each defined once, as a JSON Schema and the function that renders it.

A service, a workflow, an event record, a history event and a problem look the same wherever they
appear: API responses, webhook deliveries, the client and the console. The schemas are the ones the
OpenAPI document publishes (:mod:`machinery.api.openapi`); the renderers are the only code that builds
these shapes. This module sits below the runtime (the webhook sender renders event records) and above
storage (it renders storage's records).
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import quote

from machinery.asl.simple import TYPE_ALIASES
from machinery.engine.context import iso_time
from machinery.errors import MachineryError
from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord, ServiceRecord, StoredEvent, WorkflowRecord

Schema = dict[str, Any]

_TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "description": "UTC, milliseconds, as Step Functions prints timestamps",
    "examples": ["2024-05-01T12:00:00.000Z"],
}

#: A declared input or output of a service or a simple workflow (the seed's ``{name, type, description}``).
FIELD: Schema = {
    "type": "object",
    "required": ["name", "type"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": sorted(TYPE_ALIASES)},
        "description": {"type": "string"},
        "required": {"type": "boolean", "description": "events must carry it (default true)"},
    },
    "additionalProperties": False,
}

SERVICE: Schema = {
    "type": "object",
    "description": "A registered HTTP service, as stored.",
    "required": ["service_id", "name", "address", "inputs", "outputs", "created_at", "updated_at"],
    "properties": {
        "service_id": {"type": "string"},
        "name": {"type": "string"},
        "address": {"type": "string"},
        "inputs": {"type": "array", "items": FIELD},
        "outputs": {"type": "array", "items": FIELD},
        "method": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout_seconds": {"type": "number"},
        "description": {"type": "string"},
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
    },
}

_WORKFLOW_PROPERTIES: Schema = {
    "workflow_id": {"type": "string"},
    "name": {"type": "string"},
    "version": {"type": "integer", "minimum": 1},
    "form": {"type": "string", "enum": ["simple", "asl"]},
    "express": {"type": "boolean"},
    "services": {"type": "array", "items": {"type": "string"}, "description": "services it calls"},
    "inputs": {"type": "array", "items": FIELD},
    "outputs": {"type": "array", "items": FIELD},
    "operations": {"type": "array", "items": {"type": "object"}, "description": "simple form only"},
    "created_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
}
_WORKFLOW_REQUIRED = [
    "workflow_id", "name", "version", "form", "express", "services", "inputs", "outputs", "created_at",
    "updated_at",
]  # fmt: skip

#: A workflow at one version, with the Amazon States Language definition it runs.
WORKFLOW: Schema = {
    "type": "object",
    "description": "A workflow at one version, with the Amazon States Language definition it runs "
    "(compiled from the simple form when it was posted in that form).",
    "required": [*_WORKFLOW_REQUIRED, "definition"],
    "properties": {**_WORKFLOW_PROPERTIES, "definition": {"type": "object"}},
}

#: A workflow as listings show it: without its definition.
WORKFLOW_SUMMARY: Schema = {
    "type": "object",
    "description": "A workflow's latest version, without its definition.",
    "required": _WORKFLOW_REQUIRED,
    "properties": _WORKFLOW_PROPERTIES,
}

#: Where the delivery of an event's final record to its ``callback_url`` stands.
WEBHOOK_STATUS: Schema = {
    "type": "object",
    "description": "The delivery of the final record to the event's `callback_url`.",
    "required": ["status", "attempts", "last_error"],
    "properties": {
        "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
        "attempts": {"type": ["integer", "null"], "minimum": 0},
        "last_error": {"type": ["string", "null"]},
        "next_attempt_at": {**_TIMESTAMP, "description": "when the next attempt is due, after a failed one"},
    },
}

_EVENT_REQUIRED = [
    "event_id", "workflow_id", "workflow_name", "workflow_version", "name", "status", "express",
    "parent_event_id", "acknowledged_at", "finished_at", "redrive_count", "redriven_at",
]  # fmt: skip

EVENT_RECORD: Schema = {
    "type": "object",
    "description": "An event (one execution of a workflow): `output` once it succeeded, `error` and "
    "`cause` once it failed, timed out or was stopped. Webhooks deliver the same record.",
    "required": _EVENT_REQUIRED,
    "properties": {
        "event_id": {"type": "string"},
        "workflow_id": {"type": "string"},
        "workflow_name": {"type": "string"},
        "workflow_version": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": [status.value for status in ExecutionStatus]},
        "express": {"type": "boolean"},
        "parent_event_id": {
            "type": ["string", "null"],
            "description": "the event whose distributed Map started this one",
        },
        "acknowledged_at": _TIMESTAMP,
        "finished_at": {**_TIMESTAMP, "type": ["string", "null"]},
        "redrive_count": {"type": "integer", "minimum": 0, "description": "times it was redriven"},
        "redriven_at": {**_TIMESTAMP, "type": ["string", "null"], "description": "when it last was"},
        "output": {"description": "the execution's output (any JSON)"},
        "error": {"type": ["string", "null"]},
        "cause": {"type": ["string", "null"]},
        "webhook": WEBHOOK_STATUS,
    },
}

HISTORY_EVENT: Schema = {
    "type": "object",
    "description": "One entry of an execution's history, in Step Functions' vocabulary: its details are "
    "under `<type>EventDetails` (`stateEnteredEventDetails` for every `...StateEntered`).",
    "required": ["id", "previousEventId", "timestamp", "type"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "previousEventId": {"type": "integer", "minimum": 0},
        "timestamp": _TIMESTAMP,
        "type": {"type": "string", "examples": ["ExecutionStarted", "TaskSucceeded"]},
    },
    "patternProperties": {"EventDetails$": {"type": "object"}},
}

SERVICE_LIST: Schema = {
    "type": "object",
    "required": ["services"],
    "properties": {"services": {"type": "array", "items": SERVICE}},
}
WORKFLOW_LIST: Schema = {
    "type": "object",
    "required": ["workflows"],
    "properties": {"workflows": {"type": "array", "items": WORKFLOW_SUMMARY}},
}
VERSION_LIST: Schema = {
    "type": "object",
    "required": ["workflow_id", "versions"],
    "properties": {"workflow_id": {"type": "string"}, "versions": {"type": "array", "items": WORKFLOW}},
}
EVENT_LIST: Schema = {
    "type": "object",
    "description": "One page of events, newest first.",
    "required": ["events", "next_cursor"],
    "properties": {
        "events": {"type": "array", "items": EVENT_RECORD},
        "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
    },
}
HISTORY_PAGE: Schema = {
    "type": "object",
    "description": "One page of an execution's history.",
    "required": ["event_id", "events", "next_cursor"],
    "properties": {
        "event_id": {"type": "string"},
        "events": {"type": "array", "items": HISTORY_EVENT},
        "next_cursor": {"type": ["integer", "null"], "description": "pass as `after` for the next page"},
    },
}
TASK_ACCEPTED: Schema = {
    "type": "object",
    "required": ["accepted"],
    "properties": {"accepted": {"const": True}},
}

TOKEN: Schema = {
    "type": "object",
    "description": "An API token, as listed: never its secret (rendered by machinery.auth.tokens).",
    "required": ["token_id", "name", "scope", "access_key_id", "created_at"],
    "properties": {
        "token_id": {"type": "string"},
        "name": {"type": "string"},
        "scope": {"type": "string", "enum": ["read", "write", "admin"]},
        "access_key_id": {"type": "string", "description": "its AWS access key id (SigV4)"},
        "created_at": _TIMESTAMP,
    },
}
ISSUED_TOKEN: Schema = {
    "type": "object",
    "description": "A token just made, with its secrets: shown this once.",
    "required": [*TOKEN["required"], "token", "secret_access_key"],
    "properties": {
        **TOKEN["properties"],
        "token": {"type": "string", "description": "send as Authorization: Bearer <token>"},
        "secret_access_key": {"type": "string", "description": "its AWS secret access key (SigV4)"},
    },
}
TOKEN_LIST: Schema = {
    "type": "object",
    "required": ["tokens"],
    "properties": {"tokens": {"type": "array", "items": TOKEN}},
}

FIELD_ISSUE: Schema = {
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {"type": "string", "description": "where: a path into the body, a query argument"},
        "message": {"type": "string", "description": "what was wrong"},
    },
}

#: Where the page describing a problem type lives (a relative reference: resolved against the API's URL).
PROBLEM_TYPE_PATH = "/problems/"

PROBLEM: Schema = {
    "type": "object",
    "description": "An error, as RFC 9457 problem details (`application/problem+json`). `error`, "
    "`message` and `errors` are the members machinery answered with before, kept for existing clients.",
    "required": ["type", "title", "status", "detail", "error", "message"],
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": "the problem type: `/problems/<error>` (a page that explains it), or "
            "`about:blank` for a plain HTTP error (unknown route, method not allowed)",
        },
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "format": "uri-reference", "description": "the request's path"},
        "error": {"type": "string", "description": "the problem's code (`not_found`, `conflict`, ...)"},
        "message": {"type": "string", "description": "the same as `detail`"},
        "errors": {"type": "array", "items": FIELD_ISSUE},
        "limit": {"type": "string", "description": "the limit a request went past"},
        "limit_value": {"type": "integer", "description": "that limit's value"},
        "setting": {"type": "string", "description": "the setting that changes it (`MACHINERY_...`)"},
    },
}


def service_json(service: ServiceRecord) -> dict[str, Any]:
    """A service as :data:`SERVICE` describes it."""
    return {
        "service_id": service.service_id,
        "name": service.name,
        "address": service.address,
        "inputs": service.inputs,
        "outputs": service.outputs,
        **service.settings,
        "created_at": iso_time(service.created_at),
        "updated_at": iso_time(service.updated_at),
    }


def workflow_json(workflow: WorkflowRecord, with_definition: bool = True) -> dict[str, Any]:
    """A workflow as :data:`WORKFLOW` describes it (:data:`WORKFLOW_SUMMARY` without the definition)."""
    simple = "services" in workflow.spec
    body: dict[str, Any] = {
        "workflow_id": workflow.workflow_id,
        "name": workflow.name,
        "version": workflow.version,
        "form": "simple" if simple else "asl",
        "express": workflow.express,
        "services": workflow.services,
        "inputs": workflow.spec.get("inputs", []),
        "outputs": workflow.spec.get("outputs", []),
        "created_at": iso_time(workflow.created_at),
        "updated_at": iso_time(workflow.updated_at),
    }
    if simple:
        body["operations"] = workflow.spec.get("operations", [])
    if with_definition:
        body["definition"] = workflow.definition
    return body


def event_record(execution: ExecutionRecord, webhook: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event (execution) as :data:`EVENT_RECORD` describes it: the API's and the webhooks' record.

    :param webhook: the delivery status of its ``callback_url`` (:data:`WEBHOOK_STATUS`), if it has one.
    """
    record: dict[str, Any] = {
        "event_id": execution.execution_id,
        "workflow_id": execution.workflow_id,
        "workflow_name": execution.workflow_name,
        "workflow_version": execution.workflow_version,
        "name": execution.name,
        "status": execution.status,
        "express": execution.express,
        "parent_event_id": execution.parent_execution_id,
        "acknowledged_at": iso_time(execution.started_at),
        "finished_at": None if execution.finished_at is None else iso_time(execution.finished_at),
        "redrive_count": execution.redrive_count,
        "redriven_at": None if execution.redrive_date is None else iso_time(execution.redrive_date),
    }
    if execution.status == ExecutionStatus.SUCCEEDED:
        record["output"] = execution.output
    elif execution.status != ExecutionStatus.RUNNING:
        record["error"] = execution.error
        record["cause"] = execution.cause
    if webhook is not None:
        record["webhook"] = webhook
    return record


def history_events_json(events: list[StoredEvent]) -> list[dict[str, Any]]:
    """History entries as :data:`HISTORY_EVENT` describes them.

    Whole histories run to tens of thousands of events, most sharing a few types and, within a step,
    one timestamp: each timestamp is formatted once (the console reads a 10,000-item Map's 40,000 events).
    """
    stamps: dict[float, str] = {}
    rendered: list[dict[str, Any]] = []
    for event in events:
        stamp = stamps.get(event.timestamp)
        if stamp is None:
            stamp = stamps[event.timestamp] = iso_time(event.timestamp)
        rendered.append(
            {
                "id": event.event_id,
                "previousEventId": event.event_id - 1,
                "timestamp": stamp,
                "type": event.type,
                details_key(event.type): event.details,
            }
        )
    return rendered


@cache
def details_key(event_type: str) -> str:
    """Step Functions names each event's details after its type.

    ``TaskSucceeded`` → ``taskSucceededEventDetails``; every ``...StateEntered`` →
    ``stateEnteredEventDetails`` (and ``...StateExited`` alike).
    """
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"


def problem_json(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    *,
    type_uri: str | None = None,
    members: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem as :data:`PROBLEM` describes it.

    :param type_uri: ``None`` for machinery's own problem types (``/problems/<code>``).
    :param members: further members (``errors``, ``limit``, ...); they never replace the standard ones.
    """
    body: dict[str, Any] = {
        "type": type_uri if type_uri is not None else PROBLEM_TYPE_PATH + code,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(error=code, message=detail)
    for key, value in (members or {}).items():
        body.setdefault(key, value)
    return body


def problem_instance(path: str, encoding: str = "utf-8") -> str:
    """A request path as a problem's ``instance``: a URI reference, so percent-encoded as it was sent.

    :param encoding: how ``path`` was decoded from the bytes sent (``latin-1`` for WSGI's raw paths).
    """
    return quote(path, safe="/:@!$&'()*+,;=~-._", encoding=encoding, errors="surrogateescape")


def error_problem(error: MachineryError, instance: str | None = None) -> dict[str, Any]:
    """The problem details of one of machinery's own errors."""
    members = error.to_json()
    code = str(members.get("error", error.code))
    return problem_json(error.status, code, error.title, error.message, instance, members=members)
