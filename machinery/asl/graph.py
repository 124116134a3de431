"""The graph of a state machine, as the console draws it, derived from the compiled model.

One :class:`Node` per state (nested states included: a Parallel's branches and a Map's item processor are
:class:`Group` s inside their state's node, to any depth) and one :class:`Edge` per transition: ``Next``,
``Default``, each Choice rule (labelled with a readable condition) and each Catcher (labelled with its
error names). Retriers are a badge on their node. This reads the same :class:`CompiledMachine` the engine
runs, never the definition's JSON a second time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from machinery.asl.model import CompiledMachine, ContainerKey, State, StateMachine
from machinery.asl.simple import ServiceSignature, check_simple_workflow

#: Comparison operators of JSONPath Choice rules, by the suffix of their field name.
_OPERATORS = {
    "Equals": "==",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}
_TYPE_TESTS = {
    "IsNull": "null",
    "IsPresent": "present",
    "IsNumeric": "numeric",
    "IsString": "a string",
    "IsBoolean": "a boolean",
    "IsTimestamp": "a timestamp",
}
#: Longer labels are cut: a label is a reminder, the definition beside the graph has the whole rule.
LABEL_LIMIT = 80


@dataclass(frozen=True)
class Field:
    """A declared field of a simple workflow: its name, canonical type and, for inputs, the type check."""

    name: str
    type: str
    issue: str | None = None


@dataclass(frozen=True)
class RetryBadge:
    errors: tuple[str, ...]
    max_attempts: int
    interval_seconds: float
    backoff_rate: float


@dataclass(frozen=True)
class Group:
    """A states container inside a Parallel (one per branch) or a Map (its item processor)."""

    id: str
    label: str
    start: str


@dataclass(frozen=True)
class Node:
    """One state. ``id`` is unique in the graph (the container path and the name); ``name`` is the state's."""

    id: str
    name: str
    type: str
    group: str | None
    start: bool = False
    end: bool = False
    resource: str | None = None
    comment: str | None = None
    retry: tuple[RetryBadge, ...] = ()
    groups: tuple[Group, ...] = ()
    mode: str | None = None
    inputs: tuple[Field, ...] = ()
    outputs: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Edge:
    """A transition from one state to another, both in the same container (``from_id``/``to_id``)."""

    from_id: str
    to_id: str
    kind: str  # next | default | choice | catch
    label: str | None = None
    fields: tuple[Field, ...] = ()


@dataclass
class Graph:
    """A machine's states as nodes and its transitions as edges, for the console to draw."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    #: The definition-time type check of a simple workflow (empty: every input is provided).
    issues: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The graph as the console reads it (``from``/``to`` for edges)."""
        edges = []
        for edge in self.edges:
            data = asdict(edge)
            data["from"], data["to"] = data.pop("from_id"), data.pop("to_id")
            edges.append(data)
        return {"nodes": [asdict(node) for node in self.nodes], "edges": edges, "issues": self.issues}


@dataclass(frozen=True)
class SimpleSignature:
    """What the graph shows of a simple workflow's service: declared fields, and those flowing in."""

    inputs: Sequence[Field]
    outputs: Sequence[Field]
    incoming: Sequence[Field]


def machine_graph(machine: CompiledMachine, simple: Mapping[str, SimpleSignature] | None = None) -> Graph:
    """The graph of ``machine``; ``simple`` adds a simple workflow's fields by (Task) state name."""
    graph = Graph()
    _add_container(graph, machine, machine.root, None, simple or {})
    return graph


def node_id(key: ContainerKey, name: str) -> str:
    """A state's id in the graph: its container path and name, ``/``-separated (the root's are bare)."""
    return "/".join((*key, name))


def _add_container(
    graph: Graph,
    machine: CompiledMachine,
    container: StateMachine,
    group: str | None,
    simple: Mapping[str, SimpleSignature],
) -> None:
    key = container.key
    for state in container.states.values():
        groups = tuple(_groups(machine, state))
        signature = simple.get(state.name) if state.type == "Task" else None
        graph.nodes.append(
            Node(
                id=node_id(key, state.name),
                name=state.name,
                type=state.type,
                group=group,
                start=state.name == container.start_at,
                end=state.end or state.type in ("Succeed", "Fail"),
                resource=state.resource,
                comment=state.comment,
                retry=tuple(
                    RetryBadge(r.error_equals, r.max_attempts, r.interval_seconds, r.backoff_rate)
                    for r in state.retry
                ),
                groups=groups,
                mode=state.processor_mode if state.type == "Map" else None,
                inputs=tuple(signature.inputs) if signature else (),
                outputs=tuple(signature.outputs) if signature else (),
            )
        )
        for edge in _edges(key, state):
            target = simple.get(_name_of(edge.to_id))
            graph.edges.append(Edge(**{**asdict(edge), "fields": tuple(target.incoming)}) if target else edge)
        for child in groups:
            _add_container(graph, machine, machine.container(_key_of(child.id)), child.id, simple)


def _groups(machine: CompiledMachine, state: State) -> list[Group]:
    if state.type == "Parallel":
        keys = list(state.branches)
        labels = [f"Branch {index + 1}" for index in range(len(keys))]
    elif state.type == "Map" and state.processor is not None:
        keys = [state.processor]
        labels = ["Item processor" if state.processor_mode != "DISTRIBUTED" else "Child executions"]
    else:
        return []
    return [
        Group("/".join(key), label, node_id(key, machine.container(key).start_at))
        for key, label in zip(keys, labels, strict=True)
    ]


def _key_of(group_id: str) -> ContainerKey:
    return tuple(group_id.split("/"))


def _name_of(state_id: str) -> str:
    return state_id.rsplit("/", 1)[-1]


def _edges(key: ContainerKey, state: State) -> list[Edge]:
    source = node_id(key, state.name)
    edges = []
    if state.next is not None and state.type != "Choice":
        edges.append(Edge(source, node_id(key, state.next), "next"))
    for branch in state.choices:
        edges.append(Edge(source, node_id(key, branch.next), "choice", _cut(describe_rule(branch.rule))))
    if state.default is not None:
        edges.append(Edge(source, node_id(key, state.default), "default", "Default"))
    for catcher in state.catch:
        edges.append(Edge(source, node_id(key, catcher.next), "catch", _cut(", ".join(catcher.error_equals))))
    return edges


def describe_rule(rule: Mapping[str, Any]) -> str:
    """A Choice rule as a short readable condition: ``$.n > 3``, ``not ($.a == "x")``, a JSONata body."""
    condition = rule.get("Condition")
    if isinstance(condition, str):
        return condition.removeprefix("{%").removesuffix("%}").strip()
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        if combinator in rule:
            parts = [describe_rule(part) for part in rule[combinator]]
            return joiner.join(f"({part})" if " and " in part or " or " in part else part for part in parts)
    if "Not" in rule:
        return f"not ({describe_rule(rule['Not'])})"
    variable = str(rule.get("Variable", "?"))
    for name, value in rule.items():
        if name in ("Variable", "Next", "Assign", "Output", "Comment"):
            continue
        return _comparison(variable, name, value)
    return variable


def _comparison(variable: str, name: str, value: Any) -> str:
    if name in _TYPE_TESTS:
        return f"{variable} is {'' if value else 'not '}{_TYPE_TESTS[name]}"
    path = name.endswith("Path")
    operator_name = name.removesuffix("Path")
    for suffix, operator in sorted(_OPERATORS.items(), key=lambda item: -len(item[0])):
        if operator_name.endswith(suffix):
            shown = str(value) if path else json.dumps(value, ensure_ascii=False)
            return f"{variable} {operator} {shown}"
    return f"{variable} {name} {json.dumps(value, ensure_ascii=False)}"


def _cut(label: str) -> str:
    return label if len(label) <= LABEL_LIMIT else label[: LABEL_LIMIT - 1] + "…"


def simple_signatures(
    spec: Mapping[str, Any], definition: Mapping[str, Any], services: Mapping[str, ServiceSignature]
) -> tuple[dict[str, SimpleSignature], list[str]]:
    """Each service state of a simple workflow: declared fields, fields flowing in, the type check.

    The check is :func:`check_simple_workflow` run against the services as registered now; its issues
    are returned too, and each input it finds wanting carries its message.
    """
    incoming: list[dict[str, str]] = []
    issues = check_simple_workflow(spec, services, incoming)
    by_index: dict[int, list[str]] = {}
    for issue in issues:
        where = issue.field.removeprefix("services/")
        if where.isdigit():
            by_index.setdefault(int(where), []).append(issue.message)
    task_states = [name for name, state in definition["States"].items() if state.get("Type") == "Task"]
    found: dict[str, SimpleSignature] = {}
    flows = zip(task_states, spec["services"], incoming, strict=False)
    for position, (state_name, service, fields_in) in enumerate(flows):
        signature = services.get(service)
        if signature is None:
            continue
        problems = by_index.get(position, [])
        inputs = [
            Field(name, kind, next((p for p in problems if f"'{name}'" in p), None))
            for name, kind in signature.inputs.items()
        ]
        outputs = [Field(name, kind) for name, kind in signature.outputs.items()]
        found[state_name] = SimpleSignature(inputs, outputs, [Field(n, t) for n, t in fields_in.items()])
    return found, [issue.message for issue in issues]
