"""The spans of executions, states and task calls, read from what the interpreter did.

One trace per execution (:mod:`machinery.telemetry.traceparent`): the execution span, parented to the
``traceparent`` its ``POST /e`` carried; under it one span per visit of a state, read from the history
of each step (``...StateEntered`` to ``...StateExited``, or to the branch's failure); under a Task
state's span one span per call (recorded by the task invoker), whose id is the parent id of the
``traceparent`` the call sends. States of Parallel branches and Map iterations hang under their
Parallel or Map state's span, and a distributed Map's child executions under the Map state's span too:
each child branch carries that span in its ``trace_parent``.

Every function here returns at once when tracing is off, except :func:`call_parent` and
:func:`children_parent`, which the ``traceparent`` of task calls needs whenever an execution continues
an incoming trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from machinery.engine.context import epoch_of, iso_time
from machinery.engine.types import ACTIVE, FAILED, Branch, Step
from machinery.storage.base import ExecutionRecord, Storage
from machinery.telemetry import tracing
from machinery.telemetry.traceparent import (
    TraceParent,
    derived_trace_id,
    execution_trace,
    parse,
    span_id,
    state_span_id,
)


def _states_parent(execution_id: str, branch: Branch) -> TraceParent:
    """The span the states of ``branch`` hang under: its execution's, or its Parallel/Map state's."""
    if not branch.owns_execution:
        parent = parse(branch.trace_parent)
        if parent is not None:
            return parent
        return TraceParent(derived_trace_id(execution_id), span_id("execution", execution_id))
    return execution_trace(execution_id, branch.trace_parent)[0]


def _state_span(execution_id: str, branch: Branch, state: str, entered_time: str) -> TraceParent:
    parent = _states_parent(execution_id, branch)
    return parent.child(state_span_id(execution_id, branch.branch_id, state, entered_time))


def call_parent(execution_id: str, branch: Branch) -> TraceParent | None:
    """The span of the state whose task ``branch`` calls now (the parent of the call's span).

    None when tracing is off and the execution has a trace of its own: the call's ``traceparent`` is
    then derived from the execution id alone, at no cost.
    """
    if branch.trace_parent is None and not tracing.enabled():
        return None
    return _state_span(execution_id, branch, branch.state or "", branch.entered_time)


def children_parent(execution_id: str, branch: Branch) -> str | None:
    """The ``trace_parent`` of the children that ``branch``'s Parallel or Map state starts now."""
    parent = call_parent(execution_id, branch)
    return None if parent is None else parent.header()


def record_step(execution_id: str, before: Branch, step: Step) -> None:
    """The spans of the states ``step`` left (``before``: the branch as the step found it)."""
    if not tracing.enabled():
        return
    branch = step.branch
    open_state: _Visit | None = None
    if before.state is not None and before.entered_time:
        # Entered in an earlier step: only the history's millisecond timestamp is left of its entry.
        open_state = _Visit(before.state, "", before.entered_time, epoch_of(before.entered_time))
    for event in step.history:
        kind = event.type
        if kind.endswith("StateEntered"):
            name = str(event.details.get("name", ""))
            entered = iso_time(event.timestamp)
            open_state = _Visit(name, kind.removesuffix("StateEntered"), entered, event.timestamp)
        elif kind.endswith("StateExited") and open_state is not None:
            visit = replace(open_state, type=kind.removesuffix("StateExited"))
            _record_state(execution_id, branch, visit, event.timestamp, None)
            open_state = None
    if open_state is not None and branch.status != ACTIVE:
        end = step.history[-1].timestamp if step.history else open_state.started
        error = (branch.error or "States.Failed") if branch.status == FAILED else None
        _record_state(execution_id, branch, open_state, end, error)


@dataclass(frozen=True)
class _Visit:
    """A state entered and not left yet: name, type, entry time as the branch keeps it and in seconds."""

    name: str
    type: str
    entered_time: str
    started: float


def _record_state(execution_id: str, branch: Branch, visit: _Visit, end: float, error: str | None) -> None:
    attributes: dict[str, Any] = {
        "machinery.execution.id": execution_id,
        "machinery.branch.id": branch.branch_id,
        "machinery.state.name": visit.name,
    }
    if visit.type:
        attributes["machinery.state.type"] = visit.type
    span = _state_span(execution_id, branch, visit.name, visit.entered_time)
    parent = _states_parent(execution_id, branch)
    record = tracing.SpanRecord(
        f"state {visit.name}", span, parent.span_id, visit.started, end, attributes, error
    )
    tracing.record_span(record)


def record_execution(
    execution_id: str,
    workflow: str,
    trace_parent: str | None,
    started_at: float,
    finished_at: float,
    status: str,
    error: str | None = None,
) -> None:
    """The execution's span, once it has ended (``trace_parent``: its root branch's)."""
    if not tracing.enabled():
        return
    span, parent = execution_trace(execution_id, trace_parent)
    # The history's timestamps (which the state spans start from) have milliseconds.
    started_at = math.floor(started_at * 1000) / 1000
    attributes = {
        "machinery.execution.id": execution_id,
        "machinery.workflow.name": workflow,
        "machinery.execution.status": status,
    }
    failed = None if status == "SUCCEEDED" else (error or status)
    tracing.record_span(
        tracing.SpanRecord(
            f"execution {workflow}",
            span,
            None if parent is None else parent.span_id,
            started_at,
            finished_at,
            attributes,
            failed,
        )
    )


def record_ended(storage: Storage, record: ExecutionRecord, now: float) -> None:
    """The span of an execution ended from outside its branches (timed out, stopped)."""
    if not tracing.enabled():
        return
    root = storage.get_branch(record.execution_id)
    trace_parent = None if root is None else root.trace_parent
    record_execution(
        record.execution_id,
        record.workflow_name,
        trace_parent,
        record.started_at,
        now,
        record.status,
        record.error,
    )


def record_call(
    parent: TraceParent | None,
    call: TraceParent,
    resource: str,
    attributes: dict[str, Any],
    started_at: float,
    finished_at: float,
    error: str | None,
) -> None:
    """A task call's span (``call``: the ids its ``traceparent`` sent; ``parent``: its state's span)."""
    if not tracing.enabled() or parent is None:
        return
    tracing.record_span(
        tracing.SpanRecord(
            f"task {resource}",
            call,
            parent.span_id,
            started_at,
            finished_at,
            attributes,
            error,
            tracing.CLIENT,
        )
    )
