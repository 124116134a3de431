"""JSON Schemas of request bodies, and the translation of their errors into field issues."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from machinery.asl.simple import OPERATION_KINDS, TYPE_ALIASES
from machinery.control.names import NAME_SCHEMA, name_problem
from machinery.errors import FieldIssue

_NAME = {"type": "string", "minLength": 1, "maxLength": 80, "pattern": r"^[A-Za-z0-9_.:@-]+$"}
_FIELD = {
    "type": "object",
    "required": ["name", "type"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": sorted(TYPE_ALIASES)},
        "description": {"type": "string"},
        "required": {"type": "boolean"},
    },
    "additionalProperties": False,
}

SERVICE = {
    "type": "object",
    "required": ["name", "address"],
    "properties": {
        "name": _NAME,
        "address": {"type": "string", "pattern": r"^https?://[^\s/]+(/\S*)?$"},
        "description": {"type": "string"},
        "inputs": {"type": "array", "items": _FIELD},
        "outputs": {"type": "array", "items": _FIELD},
        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "GET", "DELETE"]},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
    },
    "additionalProperties": False,
}

_OPERATION = {
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

WORKFLOW = {
    "type": "object",
    "required": ["name"],
    "properties": {
        # A workflow is a state machine of the AWS API too: AWS's naming rule.
        "name": NAME_SCHEMA,
        "description": {"type": "string"},
        "services": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "definition": {"type": "object"},
        "inputs": {"type": "array", "items": _FIELD},
        "outputs": {"type": "array", "items": _FIELD},
        "operations": {"type": "array", "items": _OPERATION},
        "express": {"type": "boolean"},
    },
    "additionalProperties": False,
    "oneOf": [{"required": ["services"]}, {"required": ["definition"]}],
}

_VALIDATORS = {
    "service": Draft202012Validator(SERVICE),
    "workflow": Draft202012Validator(WORKFLOW),
}


def check_body(kind: str, body: Any) -> list[FieldIssue]:
    """Every schema violation of ``body``, one issue per field."""
    issues = []
    for error in sorted(_VALIDATORS[kind].iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path]):
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
    return issues


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
    if error.validator == "pattern" and error.absolute_path and error.absolute_path[-1] == "address":
        return "must be an http:// or https:// URL"
    if error.validator == "pattern" and error.schema is NAME_SCHEMA:
        return name_problem(error.instance) or str(error.message)
    return str(error.message)
