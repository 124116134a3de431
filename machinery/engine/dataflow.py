"""JSONPath data flow of a state: InputPath, Parameters, ResultSelector, ResultPath, OutputPath.

Thin, typed wrappers over :mod:`machinery.asl.jsonpath` and :mod:`machinery.asl.payload` that turn a
missing path into the ``States.Runtime`` error AWS raises, so the interpreter reads as the spec does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from machinery.asl.errors import StatesError
from machinery.asl.jsonpath import PathNotFound, compile_path, set_path
from machinery.asl.payload import apply_template

#: Step Functions' default limit for a state's input or output.
DEFAULT_DATA_LIMIT = 256 * 1024


def to_json_text(value: Any) -> str:
    """Compact JSON as Step Functions prints it in history and error causes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def select(
    path: str | None,
    data: Any,
    context: Any,
    variables: Mapping[str, Any] | None,
    field: str,
) -> Any:
    """Apply ``InputPath``/``OutputPath``/``ItemsPath``: ``None`` (JSON null) gives ``{}``."""
    if path is None:
        return {}
    if path == "$":
        return data
    compiled = compile_path(path)
    try:
        return compiled.evaluate(data, context, variables)
    except PathNotFound as exc:
        document = context if compiled.is_context else data
        raise StatesError(
            "States.Runtime", f"Invalid path '{path}' : {_missing_part(compiled.keys, document, path)}"
        ) from exc


def _missing_part(keys: tuple[Any, ...] | None, document: Any, path: str) -> str:
    """Where a reference path stops matching, worded as Step Functions (Jayway JsonPath) words it."""
    if keys is None:
        return f"No results for path: {path}"
    walked = "$"
    node = document
    for position, key in enumerate(keys):
        walked += f"[{key}]" if isinstance(key, int) else f"['{key}']"
        found = isinstance(key, str) and isinstance(node, dict) and key in node
        found = found or (isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node))
        if not found:
            if position < len(keys) - 1:
                return f"Missing property in path {walked}"
            break
        node = node[key]
    return f"No results for path: {walked}"


def render(
    template: Any,
    data: Any,
    context: Any,
    variables: Mapping[str, Any] | None,
    field: str,
) -> Any:
    """Evaluate a payload template (``Parameters``, ``ResultSelector``, ``ItemSelector``)."""
    return apply_template(template, data, context, variables, field_name=field)


def merge_result(state_input: Any, result_path: str | None, result: Any) -> Any:
    """Apply ``ResultPath``: ``None`` (JSON null) discards the result and keeps the input."""
    if result_path is None:
        return state_input
    if result_path == "$":
        return result
    return set_path(state_input, result_path, result)


def remove_path(data: Any, path: str) -> Any:
    """A copy of ``data`` without the value at the reference path ``path`` (absent: unchanged)."""
    keys = compile_path(path).keys
    if not keys:
        return data
    if not isinstance(data, dict):
        return data
    root = dict(data)
    node: Any = root
    for key in keys[:-1]:
        child = node.get(key) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return root
        child = dict(child)
        node[key] = child
        node = child
    if isinstance(node, dict):
        node.pop(keys[-1], None)
    return root


def check_size(value: Any, limit: int, state_name: str) -> None:
    """Raise ``States.DataLimitExceeded`` when ``value`` serialises to more than ``limit`` bytes."""
    if limit <= 0:
        return
    size = len(to_json_text(value).encode())
    if size > limit:
        raise StatesError(
            "States.DataLimitExceeded",
            f"The state/task '{state_name}' returned a result with a size exceeding the maximum number of "
            "bytes service limit.",
        )
