"""Limits at the door: what a request body may hold, and the one JSON reader that enforces them.

Every front door reads JSON through :func:`load_json`, which accepts only what JSON peers accept
(RFC 8259 as I-JSON, RFC 7493, narrows it): no ``NaN`` or ``Infinity``, no number beyond a double's
range, no integer beyond what a double holds exactly (``±(2**53 - 1)``), no lone surrogate
(``"\\ud800"``), and no nesting deeper than :attr:`InputLimits.max_json_depth`. Each refusal is a
:class:`~machinery.errors.BadRequest` that names the limit and the setting that changes it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from machinery.errors import BadRequest, FieldIssue, PayloadTooLarge

#: The largest integer every JSON peer holds exactly (JavaScript's ``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER = 2**53 - 1

#: What each limit is called among the ``MACHINERY_*`` settings.
SETTING_NAMES = {
    "max_body_bytes": "MACHINERY_MAX_BODY_BYTES",
    "max_json_depth": "MACHINERY_MAX_JSON_DEPTH",
    "data_limit": "MACHINERY_DATA_LIMIT",
    "max_definition_bytes": "MACHINERY_MAX_DEFINITION_BYTES",
    "max_states": "MACHINERY_MAX_STATES",
}


@dataclass(frozen=True)
class InputLimits:
    """How much a request may carry; each field is a ``MACHINERY_*`` setting (:data:`SETTING_NAMES`).

    :param max_body_bytes: bytes of a request body; more is a 413 before the body is read.
    :param max_json_depth: nesting of arrays and objects in a body; deeper is a 400.
    :param data_limit: bytes of an event's data as compact UTF-8 JSON (Step Functions' 256 KiB); more is
        a 413 before anything is stored. The same limit applies to every state's input and output.
    :param max_definition_bytes: bytes of a workflow's definition as compact UTF-8 JSON (AWS's 1 MiB hard
        quota); more is a 409.
    :param max_states: states of a definition, nested ones included; more is a 409.
    """

    max_body_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 128
    data_limit: int = 256 * 1024
    max_definition_bytes: int = 1024 * 1024
    max_states: int = 10_000

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InputLimits:
        """The limits of an app's configuration (keys without the ``MACHINERY_`` prefix)."""
        return cls(
            max_body_bytes=int(config["MAX_BODY_BYTES"]),
            max_json_depth=int(config["MAX_JSON_DEPTH"]),
            data_limit=int(config["DATA_LIMIT"]),
            max_definition_bytes=int(config["MAX_DEFINITION_BYTES"]),
            max_states=int(config["MAX_STATES"]),
        )


def limit_data(name: str, value: int) -> dict[str, Any]:
    """The members a refusal carries so that a client can tell which limit it hit and how to raise it."""
    return {"limit": name, "limit_value": value, "setting": SETTING_NAMES[name]}


def body_too_large(limit: int, declared: int | None = None) -> PayloadTooLarge:
    """The 413 answer of a body beyond ``MACHINERY_MAX_BODY_BYTES`` (``declared``: its Content-Length)."""
    size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
    return PayloadTooLarge(
        f"the body has {size}, more than the limit of {limit} (MACHINERY_MAX_BODY_BYTES)",
        issues=[FieldIssue("(body)", f"has {size} (limit {limit})")],
        **limit_data("max_body_bytes", limit),
    )


class JsonRefused(ValueError):
    """The body is not JSON a peer accepts; carries the issue to report (a ``ValueError``, as the framework
    expects of a JSON loader)."""

    def __init__(self, message: str, *, syntax: bool = False, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        #: True when the text is not JSON at all (else: JSON that machinery does not accept).
        self.syntax = syntax
        self.data = data


# A backslash-u escape of a surrogate: the only way a lone surrogate gets into JSON text, since UTF-8 has
# no encoding for one. Escaped backslashes before it are rare; the check below decides.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def load_json(raw: bytes | str, limits: InputLimits) -> Any:
    """Parse ``raw`` as JSON within ``limits``.

    :raises JsonRefused: the text is not JSON, or holds what JSON peers refuse, or nests too deep.
    """
    text = raw.encode() if isinstance(raw, str) else raw
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_int=_safe_int, parse_float=_finite_float
        )
    except RecursionError:
        raise _too_deep(limits) from None
    except JsonRefused:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonRefused(str(exc), syntax=True) from None
    # Counting brackets is C-speed and bounds the depth from above: most bodies need no walk at all.
    if text.count(b"[") + text.count(b"{") > limits.max_json_depth and _depth(value) > limits.max_json_depth:
        raise _too_deep(limits)
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value)
    return value


def bad_request_of(refused: JsonRefused) -> BadRequest:
    """The 400 answer of a refused body."""
    return BadRequest(
        f"the body is not valid JSON: {refused.message}"
        if refused.syntax
        else f"the body is refused: {refused.message}",
        issues=[FieldIssue("(body)", refused.message)],
        **refused.data,
    )


def _too_deep(limits: InputLimits) -> JsonRefused:
    return JsonRefused(
        f"arrays and objects nest deeper than {limits.max_json_depth} levels "
        f"({SETTING_NAMES['max_json_depth']})",
        **limit_data("max_json_depth", limits.max_json_depth),
    )


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _safe_int(text: str) -> int:
    # Compare digits before converting: int() of a 100,000-digit string is slow, and refused anyway.
    digits = len(text) - (text[0] == "-")
    value = int(text) if digits <= 16 else None
    if value is None or abs(value) > MAX_SAFE_INTEGER:
        shown = text if len(text) <= 40 else f"{text[:20]}…({digits} digits)"
        raise JsonRefused(
            f"the integer {shown} is beyond ±{MAX_SAFE_INTEGER}, what every JSON peer holds exactly; "
            "send it as a string"
        )
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else f"{text[:40]}…"
        raise JsonRefused(f"the number {shown} is beyond the range of a double")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _refuse_lone_surrogates(value: Any) -> None:
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict):
            for key, child in node.items():
                _check_text(key)
                stack.append(child)
        elif isinstance(node, list):
            stack.extend(node)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        raise JsonRefused(
            f"a string holds the lone surrogate \\u{code:04x}, which is not Unicode text "
            "(a surrogate must be half of a pair)"
        ) from None
