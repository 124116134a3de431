"""Reading request bodies and query arguments with the seed's status codes."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from machinery.errors import BadRequest, FieldIssue, UnsupportedMediaType


def json_body(allow_null: bool = False) -> Any:
    """The request's JSON body: 415 when it is not JSON, 400 when it is malformed or ``null``."""
    if not request.is_json:
        raise UnsupportedMediaType(
            "the body must be JSON (Content-Type: application/json)",
            issues=[FieldIssue("Content-Type", f"got {request.content_type or 'none'}")],
        )
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the body is not valid JSON", issues=[FieldIssue("(body)", str(exc))]) from exc
    if body is None and not allow_null:
        raise BadRequest("the body must not be JSON null", issues=[FieldIssue("(body)", "is null")])
    return body


def number_arg(name: str, default: float, minimum: float = 0, maximum: float = 3600) -> float:
    """The query argument ``name`` as a number from ``minimum`` to ``maximum`` (400 otherwise)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not minimum <= value <= maximum:
        raise BadRequest(
            f"invalid query argument '{name}'",
            issues=[FieldIssue(name, f"must be a number from {minimum:g} to {maximum:g}")],
        )
    return value


def int_arg(name: str, default: int | None, minimum: int = 0, maximum: int = 1_000_000) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    # ASCII digits only, and few of them: int() refuses other digits and very long numbers with errors.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 20) or not minimum <= int(raw) <= maximum:
        raise BadRequest(
            f"invalid query argument '{name}'",
            issues=[FieldIssue(name, f"must be a whole number from {minimum} to {maximum}")],
        )
    return int(raw)


def bool_arg(name: str, default: bool) -> bool:
    """A ``true``/``false`` query argument (also ``1``/``0``)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise BadRequest(f"invalid query argument '{name}'", issues=[FieldIssue(name, "must be true or false")])
