"""The console's graph of a state machine, derived from the compiled model (``machinery.asl.graph``).

Over every definition of ``../shared/asl-conformance`` (when present) and the examples: no exception, one
node per state (nested included), one edge per transition, Catch and Choice edges labelled.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.workflows import CONSOLE_TOUR
from machinery.asl.compiler import compile_machine
from machinery.asl.graph import describe_rule, machine_graph, simple_signatures
from machinery.asl.simple import ServiceSignature, compile_simple
from machinery.asl.validation import validate_definition
from tests.shared import SHARED, require_shared

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "definitions"
CONFORMANCE = SHARED / "asl-conformance"


def conformance_definitions() -> list[dict[str, Any]]:
    found = []
    for name in ("cases.pure.json", "cases.lambda.json"):
        for case in json.loads(require_shared(CONFORMANCE / name).read_text("utf-8")):
            definition = case["definition"]
            found.append(json.loads(definition) if isinstance(definition, str) else definition)
    return found


def example_definitions() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLES.glob("workflow-*.json")):
        spec = json.loads(path.read_text("utf-8"))
        found.append(spec["definition"] if "definition" in spec else compile_simple(spec))
    return found


def states_of(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every state of a definition, nested ones included, straight from its JSON."""
    for state in container["States"].values():
        yield state
        for branch in state.get("Branches", []):
            yield from states_of(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from states_of(processor)


def transitions_of(definition: dict[str, Any]) -> int:
    count = 0
    for state in states_of(definition):
        count += "Next" in state and state["Type"] != "Choice"
        count += len(state.get("Choices", [])) + ("Default" in state) + len(state.get("Catch", []))
    return count


def check_graph(definition: dict[str, Any]) -> None:
    graph = machine_graph(compile_machine(definition))
    states = list(states_of(definition))
    assert len(graph.nodes) == len(states)
    assert len({node.id for node in graph.nodes}) == len(states)
    assert len(graph.edges) == transitions_of(definition)
    ids = {node.id for node in graph.nodes}
    for edge in graph.edges:
        assert edge.from_id in ids and edge.to_id in ids
        if edge.kind in ("catch", "choice", "default"):
            assert edge.label
    groups = {group.id for node in graph.nodes for group in node.groups}
    assert {node.group for node in graph.nodes} - {None} <= groups
    assert sum(node.start for node in graph.nodes) == 1 + len(groups)
    json.dumps(graph.to_json())


def test_every_conformance_definition() -> None:
    definitions = conformance_definitions()
    assert len(definitions) > 400
    checked = 0
    for definition in definitions:
        if validate_definition(definition):
            continue  # an invalid definition is refused before anything draws it
        check_graph(definition)
        checked += 1
    assert checked > 400


@pytest.mark.parametrize("definition", example_definitions(), ids=lambda d: d.get("Comment", "")[:40])
def test_every_example(definition: dict[str, Any]) -> None:
    check_graph(definition)


def test_nested_containers_and_labels() -> None:
    check_graph(CONSOLE_TOUR)
    graph = machine_graph(compile_machine(CONSOLE_TOUR))
    nodes = {node.id: node for node in graph.nodes}
    assert set(nodes) == {
        "Route",
        "Single",
        "Fan",
        "Broken",
        "Done",
        "Fan/0/Each",
        "Fan/1/Pause",
        "Fan/0/Each/items/Work",
    }
    assert [g.label for g in nodes["Fan"].groups] == ["Branch 1", "Branch 2"]
    assert nodes["Fan/0/Each"].group == "Fan/0" and nodes["Fan/0/Each/items/Work"].group == "Fan/0/Each/items"
    assert nodes["Fan/0/Each/items/Work"].name == "Work"
    assert [(r.errors, r.max_attempts) for r in nodes["Fan"].retry] == [(("States.ALL",), 2)]
    assert nodes["Broken"].end and nodes["Done"].end and nodes["Route"].start and nodes["Fan/1/Pause"].start
    edges = [(e.from_id, e.to_id, e.kind, e.label) for e in graph.edges]
    assert edges == [
        ("Route", "Fan", "choice", '$.kind == "fan"'),
        ("Route", "Done", "choice", '$.kind == "done" and not ($.items is present)'),
        ("Route", "Single", "default", "Default"),
        ("Single", "Done", "next", None),
        ("Fan", "Done", "next", None),
        ("Fan", "Broken", "catch", "States.Timeout, Custom"),
    ]


@pytest.mark.parametrize(
    "rule, text",
    [
        ({"Variable": "$.a", "StringLessThanEqualsPath": "$.b"}, "$.a <= $.b"),
        ({"Variable": "$.a", "BooleanEquals": False}, "$.a == false"),
        ({"Variable": "$.a", "IsNull": False}, "$.a is not null"),
        ({"Variable": "$.a", "StringMatches": "x*"}, '$.a matches "x*"'),
        (
            {"Or": [{"Variable": "$.a", "NumericEquals": 1}, {"Variable": "$.a", "NumericEquals": 2}]},
            "$.a == 1 or $.a == 2",
        ),
        ({"Condition": "{% $states.input.n > 1 %}"}, "$states.input.n > 1"),
    ],
)
def test_rules_read_as_conditions(rule: dict[str, Any], text: str) -> None:
    assert describe_rule(rule) == text


def test_simple_workflow_fields_and_type_check() -> None:
    spec = {
        "name": "p",
        "inputs": [{"name": "message", "type": "string"}],
        "services": ["upper", "count"],
    }
    definition = compile_simple(spec)
    services = {
        "upper": ServiceSignature("upper", {"message": "string"}, {"message": "string"}),
        "count": ServiceSignature("count", {"message": "string", "limit": "integer"}, {"n": "integer"}),
    }
    signatures, issues = simple_signatures(spec, definition, services)
    graph = machine_graph(compile_machine(definition), signatures)
    nodes = {node.name: node for node in graph.nodes}
    assert [(f.name, f.type, f.issue) for f in nodes["upper"].inputs] == [("message", "string", None)]
    assert [(f.name, f.type) for f in nodes["count"].outputs] == [("n", "integer")]
    limit = next(f for f in nodes["count"].inputs if f.name == "limit")
    assert limit.issue is not None and "limit" in limit.issue
    assert len(issues) == 1
    (edge,) = graph.edges
    assert (edge.from_id, edge.to_id) == ("upper", "count")
    assert [(f.name, f.type) for f in edge.fields] == [("message", "string")]
