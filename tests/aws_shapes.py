"""Answers of the AWS API checked against botocore's output shapes: required members present, no member
the model does not know, values of the member's type (used by the unit tests and by every boto3 call
of the acceptance tests)."""

from __future__ import annotations

import json
from typing import Any

from botocore.model import Shape

from machinery.aws.model import service_model


def check_raw_output(action: str, body: bytes) -> None:
    """:func:`check_output` of a response body (the JSON text the server sent)."""
    check_output(action, json.loads(body or b"{}"))


def check_output(action: str, answer: dict[str, Any]) -> None:
    shape = service_model().operation_model(action).output_shape
    assert shape is not None
    problems: list[str] = []
    _conforms(shape, answer, action, problems)
    assert not problems, problems


def _conforms(shape: Shape, value: Any, at: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{at}: not an object")
            return
        members = shape.members  # type: ignore[attr-defined]
        for name in shape.required_members:  # type: ignore[attr-defined]
            if name not in value:
                problems.append(f"{at}.{name}: required, missing")
        for name, item in value.items():
            if name not in members:
                problems.append(f"{at}.{name}: not in the model")
            else:
                _conforms(members[name], item, f"{at}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{at}: not a list")
            return
        for index, item in enumerate(value):
            _conforms(shape.member, item, f"{at}[{index}]", problems)  # type: ignore[attr-defined]
    elif kind == "string":
        enum = getattr(shape, "enum", None)
        if not isinstance(value, str) or (enum and value not in enum):
            problems.append(f"{at}: {value!r} is not a {shape.name}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{at}: {value!r} is not an integer")
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{at}: {value!r} is not a number")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{at}: {value!r} is not a boolean")
    elif kind == "timestamp" and (isinstance(value, bool) or not isinstance(value, int | float)):
        problems.append(f"{at}: {value!r} is not epoch seconds")
