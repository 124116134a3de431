"""The seed's simple workflow form, compiled into Amazon States Language.

``services: [a, b, c]`` calls a, then b, then c. Each service receives the current document and its JSON
reply is merged over it: one JSONata Task state per service whose ``Output`` is
``$merge([$states.input, $states.result])``. ``operations`` become JSONPath Pass states (``QueryLanguage``
is per state), so the history shows one state per service and one per operation, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from machinery.errors import FieldIssue

#: The declared type names the seed uses, mapped to one canonical name each.
TYPE_ALIASES = {
    "string": "string",
    "str": "string",
    "int": "integer",
    "integer": "integer",
    "number": "number",
    "float": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "object": "object",
    "dict": "object",
    "array": "array",
    "list": "array",
    "any": "any",
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
OPERATION_KINDS = ("set", "copy", "move", "delete")
#: A service's reply merged over the document it received (the seed's behaviour).
MERGE_REPLY = "{% $merge([$states.input, $states.result]) %}"


def canonical_type(name: str) -> str | None:
    return TYPE_ALIASES.get(name.lower())


def type_accepts(required: str, provided: str) -> bool:
    """Whether a value declared ``provided`` may feed an input declared ``required``."""
    if "any" in (required, provided):
        return True
    return required == provided or (required == "number" and provided == "integer")


def value_matches(value: Any, declared: str) -> bool:
    """Run-time check of one event field against its declared (canonical) type."""
    if declared == "any":
        return True
    if declared == "string":
        return isinstance(value, str)
    if declared == "integer":
        is_int = isinstance(value, int) and not isinstance(value, bool)
        return is_int or (isinstance(value, float) and value.is_integer())
    if declared == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if declared == "boolean":
        return isinstance(value, bool)
    if declared == "object":
        return isinstance(value, dict)
    if declared == "array":
        return isinstance(value, list)
    return False


def field_path(field: str) -> str:
    """``a.b`` → ``$.a.b`` (bracket notation for names that need it)."""
    parts = []
    for part in field.split("."):
        if _IDENTIFIER.match(part):
            parts.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "$" + "".join(parts)


@dataclass(frozen=True)
class ServiceSignature:
    """What a registered service declares: canonical input and output types by field name."""

    name: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]


def check_simple_workflow(
    spec: Mapping[str, Any],
    services: Mapping[str, ServiceSignature],
    incoming: list[dict[str, str]] | None = None,
) -> list[FieldIssue]:
    """Does something provide every input each service needs, with a compatible type?

    ``incoming``, when given, receives the fields (and their types) that reach each service, in order.
    """
    issues: list[FieldIssue] = []
    available: dict[str, str] = {
        item["name"]: canonical_type(item["type"]) or "any" for item in spec.get("inputs", [])
    }
    operations = list(spec.get("operations", []))
    names: Sequence[str] = spec["services"]

    def apply_operations(position: str, service: str | None) -> None:
        for operation in operations:
            if operation.get(position) != service and not (
                service is None
                and position == "after"
                and "before" not in operation
                and "after" not in operation
            ):
                continue
            kind = operation["op"]
            if kind == "set":
                available[operation["field"]] = "any"
            elif kind in ("copy", "move"):
                source = operation["from"]
                available[operation["to"]] = available.get(source, "any")
                if kind == "move":
                    available.pop(source, None)
            elif kind == "delete":
                available.pop(operation["field"], None)

    for index, name in enumerate(names):
        apply_operations("before", name)
        if incoming is not None:
            incoming.append(dict(available))
        signature = services.get(name)
        if signature is None:
            issues.append(FieldIssue(f"services/{index}", f"service '{name}' is not registered"))
            continue
        for field, required in signature.inputs.items():
            provided = available.get(field)
            if provided is None:
                issues.append(
                    FieldIssue(
                        f"services/{index}",
                        f"service '{name}' needs input '{field}' ({required}) but neither the workflow's "
                        f"inputs nor an earlier service's outputs provide it",
                    )
                )
            elif not type_accepts(required, provided):
                issues.append(
                    FieldIssue(
                        f"services/{index}",
                        f"service '{name}' needs input '{field}' of type {required} but it is provided as "
                        f"{provided}",
                    )
                )
        available.update(signature.outputs)
        apply_operations("after", name)
    return issues


def compile_simple(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ASL definition of a simple workflow (assumed checked)."""
    services: Sequence[str] = spec["services"]
    operations: list[Mapping[str, Any]] = list(spec.get("operations", []))
    order: list[tuple[str, dict[str, Any]]] = []
    used: set[str] = set()

    def unique(name: str) -> str:
        candidate, counter = name, 2
        while candidate in used:
            candidate = f"{name} #{counter}"
            counter += 1
        used.add(candidate)
        return candidate

    def add_operations(position: str, service: str | None) -> None:
        for index, operation in enumerate(operations):
            anchored = operation.get("before") or operation.get("after")
            if service is None:
                if anchored:
                    continue
            elif operation.get(position) != service:
                continue
            order.append((unique(f"{operation['op']} {index}"), _operation_state(operation)))

    for service in services:
        add_operations("before", service)
        order.append(
            (
                unique(service),
                {
                    "Type": "Task",
                    "QueryLanguage": "JSONata",
                    "Resource": service,
                    "Output": MERGE_REPLY,
                },
            )
        )
        add_operations("after", service)
    add_operations("after", None)
    states: dict[str, Any] = {}
    for position, (name, state) in enumerate(order):
        if position + 1 < len(order):
            state["Next"] = order[position + 1][0]
        else:
            state["End"] = True
        states[name] = state
    return {
        "Comment": f"Compiled from the simple workflow '{spec.get('name', '')}'",
        "StartAt": order[0][0],
        "States": states,
    }


def _operation_state(operation: Mapping[str, Any]) -> dict[str, Any]:
    kind = operation["op"]
    if kind == "set":
        return {
            "Type": "Pass",
            "Result": operation.get("value"),
            "ResultPath": field_path(operation["field"]),
        }
    if kind == "copy":
        return {
            "Type": "Pass",
            "InputPath": field_path(operation["from"]),
            "ResultPath": field_path(operation["to"]),
        }
    if kind == "move":
        return {
            "Type": "Pass",
            "InputPath": field_path(operation["from"]),
            "ResultPath": field_path(operation["to"]),
            "Machinery.Unset": [field_path(operation["from"])],
        }
    return {"Type": "Pass", "Machinery.Unset": [field_path(operation["field"])]}
