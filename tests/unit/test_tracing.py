"""Traces: a real app with its worker and real loopback services, spans exported to an in-memory exporter.

The spans must form the tree docs/observability.md describes (execution → states → task calls, Parallel
branches under their state), continue the ``traceparent`` of ``POST /e``, and carry the ids that the
task calls' own ``traceparent`` headers sent to the services.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from flask import Flask
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from machinery.telemetry import tracing
from machinery.telemetry.traceparent import derived_trace_id
from tests.unit.conftest import Loopback, Received

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Spans(InMemorySpanExporter):
    """An in-memory exporter that can be awaited: ``wait_for(name)`` returns once such a span is in."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = threading.Condition()

    def export(self, spans: Any) -> Any:
        result = super().export(spans)
        with self._arrived:
            self._arrived.notify_all()
        return result

    def wait_for(self, name: str, timeout: float = 10.0) -> list[ReadableSpan]:
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: any(span.name == name for span in self.get_finished_spans()), timeout
            )
        assert found, f"no span {name!r} in {[span.name for span in self.get_finished_spans()]}"
        return list(self.get_finished_spans())


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = Spans()
    tracing.install([SimpleSpanProcessor(exporter)])
    try:
        yield exporter
    finally:
        tracing.uninstall()


def _hex_span(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.span_id, "016x")


def _hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _parent(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def _by_name(found: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in found:
        named.setdefault(span.name, []).append(span)
    return named


def _echo(request: Received) -> tuple[int, str, bytes]:
    body = json.loads(request.body or b"null")
    return 200, "application/json", json.dumps({"seen": body}).encode()


def _definition(service: str) -> dict[str, Any]:
    """Prepare (Pass) → Call (Task) → Both (Parallel: Left, Right Tasks) → Done (Succeed)."""
    task = {"Type": "Task", "Resource": service, "End": True}
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"n": 1}, "Next": "Call"},
            "Call": {"Type": "Task", "Resource": service, "ResultPath": "$.call", "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Left", "States": {"Left": task}},
                    {"StartAt": "Right", "States": {"Right": task}},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def _run(app: Flask, service: Loopback, workflow: str, headers: dict[str, str], express: bool = False) -> str:
    client = app.test_client()
    assert client.post("/s", json={"name": "echo", "address": service.url}).status_code == 201
    body: dict[str, Any] = {"name": workflow, "definition": _definition("echo")}
    if express:
        body["express"] = True
    assert client.post("/w", json=body).status_code == 201, client.post("/w", json=body).get_json()
    reply = client.post(f"/e/{workflow}", json={"go": True}, headers=headers)
    record = reply.get_json()
    assert record["status"] == "SUCCEEDED", record
    return str(record["event_id"])


@pytest.mark.parametrize("express", [False, True], ids=["durable", "express"])
def test_an_execution_traces_its_states_and_task_calls_under_the_incoming_trace(
    make_app: Callable[..., Flask],
    loopback: Callable[[Callable[[Received], tuple[int, str, bytes]]], Loopback],
    spans: Spans,
    express: bool,
) -> None:
    service = loopback(_echo)
    app = make_app(START_WORKER=True)
    workflow = "traced-express" if express else "traced"
    event_id = _run(app, service, workflow, {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}, express)
    named = _by_name(spans.wait_for(f"execution {workflow}"))

    # One trace: the caller's.
    assert {_hex_trace(span) for spans_ in named.values() for span in spans_} == {TRACE}
    (execution,) = named[f"execution {workflow}"]
    assert _parent(execution) == CALLER_SPAN
    assert execution.attributes is not None
    assert execution.attributes["machinery.execution.id"] == event_id
    assert execution.attributes["machinery.execution.status"] == "SUCCEEDED"

    states = {
        name.removeprefix("state "): found[0] for name, found in named.items() if name.startswith("state ")
    }
    assert set(states) == {"Prepare", "Call", "Both", "Left", "Right", "Done"}
    for top in ("Prepare", "Call", "Both", "Done"):
        assert _parent(states[top]) == _hex_span(execution), top
    for inner in ("Left", "Right"):
        assert _parent(states[inner]) == _hex_span(states["Both"]), inner
    assert (
        states["Call"].attributes is not None and states["Call"].attributes["machinery.state.type"] == "Task"
    )
    # A state's span lasts from its entry to its exit, and holds its children.
    both = states["Both"]
    assert both.start_time is not None and both.end_time is not None
    for inner in ("Left", "Right"):
        child = states[inner]
        assert child.start_time is not None and child.end_time is not None
        assert both.start_time <= child.start_time <= child.end_time <= both.end_time
    assert execution.start_time is not None and execution.end_time is not None
    assert (
        execution.start_time <= states["Prepare"].start_time <= states["Done"].end_time <= execution.end_time
    )  # type: ignore[operator]

    calls = named["task echo"]
    assert len(calls) == 3
    parents = sorted(str(_parent(call)) for call in calls)
    assert parents == sorted(_hex_span(states[name]) for name in ("Call", "Left", "Right"))
    assert all(call.kind == SpanKind.CLIENT for call in calls)
    # Each service saw, as its parent, the span machinery recorded for that call.
    sent = sorted(service.next_request().headers["traceparent"] for _ in range(3))
    assert sent == sorted(f"00-{TRACE}-{_hex_span(call)}-01" for call in calls)


def test_an_execution_without_an_incoming_trace_has_the_trace_its_calls_already_sent(
    make_app: Callable[..., Flask],
    loopback: Callable[[Callable[[Received], tuple[int, str, bytes]]], Loopback],
    spans: Spans,
) -> None:
    service = loopback(_echo)
    app = make_app(START_WORKER=True)
    event_id = _run(app, service, "own-trace", {"traceparent": "not a trace context"})
    named = _by_name(spans.wait_for("execution own-trace"))
    (execution,) = named["execution own-trace"]
    assert _parent(execution) is None
    assert _hex_trace(execution) == derived_trace_id(event_id)
    sent = {service.next_request().headers["traceparent"] for _ in range(3)}
    assert sent == {f"00-{derived_trace_id(event_id)}-{_hex_span(call)}-01" for call in named["task echo"]}


def test_a_failed_task_marks_its_state_and_the_execution_as_errors(
    make_app: Callable[..., Flask],
    loopback: Callable[[Callable[[Received], tuple[int, str, bytes]]], Loopback],
    spans: Spans,
) -> None:
    service = loopback(lambda _request: (503, "application/json", b'{"busy": true}'))
    app = make_app(START_WORKER=True)
    client = app.test_client()
    assert client.post("/s", json={"name": "busy", "address": service.url}).status_code == 201
    definition = {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "busy", "End": True}}}
    assert client.post("/w", json={"name": "fails", "definition": definition}).status_code == 201
    assert client.post("/e/fails", json={}).get_json()["status"] == "FAILED"
    named = _by_name(spans.wait_for("execution fails"))
    for name in ("execution fails", "state Call", "task busy"):
        (span,) = named[name]
        assert span.status.status_code == StatusCode.ERROR, name
        assert span.status.description == "States.Http.StatusCode.503", name
    (call,) = named["task busy"]
    assert call.attributes is not None and call.attributes["machinery.task.outcome"] == "http_5xx"
