"""The request shapes of the native API: JSON Schemas of every body and query argument, and the
translation of their violations into field issues.

These are the schemas that validate requests and that the OpenAPI document publishes
(:mod:`machinery.api.openapi`): there is no second copy. Response shapes live in :mod:`machinery.shapes`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from machinery.asl.simple import OPERATION_KINDS
from machinery.control.names import NAME_SCHEMA, name_problem
from machinery.errors import BadRequest, FieldIssue
from machinery.limits import MAX_SAFE_INTEGER
from machinery.runtime.publish import BROKER_SCHEMES
from machinery.shapes import FIELD
from machinery.status import ExecutionStatus

Schema = dict[str, Any]

# Service names are used in Task resources ("Resource": "upper"), so they stay within URL-safe characters.
_SERVICE_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"^[A-Za-z0-9_.:@-]+$"}
# Text stored in PostgreSQL's JSONB (a service's body) cannot hold U+0000.
_TEXT: Schema = {"type": "string", "pattern": "^[^\\u0000]*$"}
#: An ``http://`` or ``https://`` URL (a service's address, an event's ``callback_url``).
_URL: Schema = {"type": "string", "pattern": r"^https?://[^\s/]+(/\S*)?$", "maxLength": 2048}

SERVICE: Schema = {
    "type": "object",
    "description": "A service to register: registering a name again updates it.",
    "required": ["name", "address"],
    "properties": {
        "name": _SERVICE_NAME,
        "address": _URL,
        "description": _TEXT,
        "inputs": {"type": "array", "items": FIELD},
        "outputs": {"type": "array", "items": FIELD},
        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "GET", "DELETE"]},
        "headers": {"type": "object", "additionalProperties": _TEXT},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
    },
    "additionalProperties": False,
}

_OPERATION: Schema = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"type": "string", "enum": list(OPERATION_KINDS)},
        "field": {"type": "string", "minLength": 1},
        "from": {"type": "string", "minLength": 1},
        "to": {"type": "string", "minLength": 1},
        "value": {},
        "before": {"type": "string"},
        "after": {"type": "string"},
    },
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"op": {"enum": ["set", "delete"]}}}, "then": {"required": ["field"]}},
        {"if": {"properties": {"op": {"enum": ["copy", "move"]}}}, "then": {"required": ["from", "to"]}},
        {"not": {"required": ["before", "after"]}},
    ],
}

WORKFLOW: Schema = {
    "type": "object",
    "description": "A workflow in either form: the simple form (`services`, run one after the other) or "
    "Amazon States Language (`definition`). Every change creates a new version.",
    "required": ["name"],
    "properties": {
        # A workflow is a state machine of the AWS API too: AWS's naming rule.
        "name": NAME_SCHEMA,
        "description": {"type": "string"},
        "services": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "definition": {"type": "object", "description": "an Amazon States Language state machine"},
        "inputs": {"type": "array", "items": FIELD},
        "outputs": {"type": "array", "items": FIELD},
        "operations": {"type": "array", "items": _OPERATION},
        "express": {"type": "boolean"},
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["services"]}, {"required": ["definition"]}],
}

# An http(s) URL as for services, or a broker's URL (machinery.runtime.publish checks the rest).
_CALLBACK_PATTERN = rf"(?:{_URL['pattern']})|^(?:{'|'.join(sorted(BROKER_SCHEMES))})://\S+$"

#: The seed's envelope around event data: ``{"data": ..., "callback_url"?, "name"?}``.
EVENT_ENVELOPE: Schema = {
    "type": "object",
    "description": "The seed's envelope: an object whose keys are `data` and some of the options below is "
    "unwrapped, and `data` is the event data.",
    "required": ["data"],
    "properties": {
        "data": {"description": "the event data (any JSON)"},
        "callback_url": {
            "type": "string",
            "maxLength": 2048,
            "pattern": _CALLBACK_PATTERN,
            "description": "receives the final record when the event ends: POSTed to an http(s) URL, or "
            "published to a broker (amqp, nats, redis URL)",
        },
        "name": {**NAME_SCHEMA, "description": "the execution's name (default: its id)"},
    },
    "additionalProperties": False,
}

#: What ``POST /e/<workflow>`` takes: any JSON is the event data, unless it is the envelope.
EVENT_BODY: Schema = {
    "description": "The event data: any JSON (an object with the workflow's inputs when it declares "
    "some), or the seed's envelope around it.",
    "anyOf": [EVENT_ENVELOPE, {"description": "the event data itself"}],
}

_ERROR_NAME: Schema = {"type": "string", "maxLength": 256}
_CAUSE: Schema = {"type": "string", "maxLength": 32768}

STOP: Schema = {
    "type": "object",
    "description": "Why the event is stopped (both optional; an empty body or `null` gives no reason).",
    "properties": {"error": _ERROR_NAME, "cause": _CAUSE},
}

REDRIVE: Schema = {
    "type": "object",
    "description": "Optional: without `input`, the state that runs again gets the input it had.",
    "properties": {"input": {"description": "the new input of the state that runs again (any JSON)"}},
    "additionalProperties": False,
}

_TASK_TOKEN: Schema = {"type": "string", "minLength": 1, "maxLength": 2048}

TASK_SUCCESS: Schema = {
    "type": "object",
    "required": ["taskToken", "output"],
    "properties": {"taskToken": _TASK_TOKEN, "output": {"description": "the task's result (any JSON)"}},
}

TASK_FAILURE: Schema = {
    "type": "object",
    "required": ["taskToken"],
    "properties": {
        "taskToken": _TASK_TOKEN,
        "error": {**_ERROR_NAME, "default": "States.TaskFailed"},
        "cause": {**_CAUSE, "default": ""},
    },
}

TASK_HEARTBEAT: Schema = {
    "type": "object",
    "required": ["taskToken"],
    "properties": {"taskToken": _TASK_TOKEN},
}

#: ``POST /tokens``: a new API token (its name's rule is checked by machinery.auth.tokens).
TOKEN: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "description": "1 to 80 letters, digits, spaces or ._@-"},
        "scope": {"type": "string", "enum": ["read", "write", "admin"], "default": "read"},
    },
    "additionalProperties": False,
}

# Query arguments: each operation's, by name. Every value arrives as text and is read by its schema's type.

_WAIT: Schema = {
    "type": "number",
    "minimum": 0,
    "maximum": 3600,
    "description": "seconds to wait for the event to end before answering (long poll)",
}

#: ``POST /e/<workflow>``: ``wait`` defaults to ``MACHINERY_SYNC_WAIT``.
START_EVENT_QUERY: dict[str, Schema] = {"wait": _WAIT}
GET_EVENT_QUERY: dict[str, Schema] = {"wait": {**_WAIT, "default": 0}}
LIST_EVENTS_QUERY: dict[str, Schema] = {
    "workflow": {"type": "string", "description": "only this workflow's events (id or name)"},
    "status": {"type": "string", "enum": [status.value for status in ExecutionStatus]},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
    "cursor": {"type": "string", "description": "the previous page's `next_cursor`"},
    "parent": {"type": "string", "description": "list this event's child executions instead"},
}
HISTORY_QUERY: dict[str, Schema] = {
    "after": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_SAFE_INTEGER,
        "description": "the previous page's `next_cursor`: the page starts past this event id",
    },
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
        "description": "events per page (default: the whole rest of the history)",
    },
    "reverse": {"type": "boolean", "default": False, "description": "newest first"},
}
GET_WORKFLOW_QUERY: dict[str, Schema] = {
    "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "description": "that version"},
}

_VALIDATORS: dict[int, Draft202012Validator] = {}


def check_body(schema: Schema, body: Any) -> list[FieldIssue]:
    """Every violation of ``schema`` by ``body``, one issue per field."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    issues = []
    for error in sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "required" and isinstance(error.instance, dict):
            # One issue per missing field: a body lacking both name and address names both.
            prefix = "".join(f"{part}/" for part in error.absolute_path)
            required = error.validator_value if isinstance(error.validator_value, list) else []
            for name in required:
                if name not in error.instance:
                    issues.append(
                        FieldIssue(f"{prefix}{name}", f"is required ('{name}' is a required property)")
                    )
            continue
        issues.append(FieldIssue(_field_of(error), _message_of(error)))
    # jsonschema reports each missing property of a "required" once per property; report each once.
    return list(dict.fromkeys(issues))


def _field_of(error: ValidationError) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [name for name in required if name not in error.instance]
        if missing:
            path.append(missing[0])
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        if extra:
            path.append(extra[0])
    return "/".join(path) or "(body)"


def _message_of(error: ValidationError) -> str:
    if error.validator == "oneOf" and not error.absolute_path:
        return "give either 'services' (the simple form) or 'definition' (Amazon States Language), not both"
    if error.validator == "required":
        return f"is required ({error.message})"
    if error.validator == "additionalProperties":
        return f"is not a known field ({error.message})"
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] in _URL_FIELDS:
        return "must be an http:// or https:// URL"
    if error.validator == "pattern" and error.validator_value == _CALLBACK_PATTERN:
        return "must be an http:// or https:// URL, or a broker's (amqp, nats, redis)"
    if error.validator == "pattern" and error.validator_value == _TEXT["pattern"]:
        return "must not contain U+0000"
    if error.validator == "pattern" and error.validator_value == NAME_SCHEMA["pattern"]:
        return name_problem(error.instance) or str(error.message)
    return str(error.message)


_URL_FIELDS = frozenset({"address"})
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][-+]?[0-9]{1,3})?")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def parse_query(params: Mapping[str, Schema], args: Mapping[str, str]) -> dict[str, Any]:
    """The query arguments ``params`` describes, read from their text and checked by their schemas.

    Arguments missing from ``args`` take their schema's ``default`` (or ``None``); arguments ``params``
    does not name are ignored.

    :raises BadRequest: naming every argument that does not fit.
    """
    values: dict[str, Any] = {}
    issues: list[FieldIssue] = []
    for name, schema in params.items():
        # Asked first: werkzeug's get() raises (and builds) a BadRequestKeyError for a missing key.
        raw = args.get(name) if name in args else None
        if raw is None:
            values[name] = schema.get("default")
            continue
        value = _read_argument(raw, schema)
        if value is _UNREADABLE or check_body(schema, value):
            issues.append(FieldIssue(name, describe_argument(schema)))
        else:
            values[name] = value
    if issues:
        names = ", ".join(f"'{issue.field}'" for issue in issues)
        raise BadRequest(f"invalid query argument {names}", issues=issues)
    return values


def describe_argument(schema: Schema) -> str:
    """What a query argument must be, in words."""
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "integer":
        return f"must be a whole number from {low} to {high}"
    if kind == "number":
        return f"must be a number from {low:g} to {high:g}"
    if kind == "boolean":
        return "must be true or false"
    if "enum" in schema:
        return f"must be one of {', '.join(schema['enum'])}"
    return "must be a string"


_UNREADABLE = object()


def _read_argument(raw: str, schema: Schema) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(raw) if _INTEGER.fullmatch(raw) else _UNREADABLE
    if kind == "number":
        if not _NUMBER.fullmatch(raw):
            return _UNREADABLE
        number = float(raw)
        return number if math.isfinite(number) else _UNREADABLE
    if kind == "boolean":
        return _BOOLEANS.get(raw.lower(), _UNREADABLE)
    return raw
