"""Building a new execution: what ``POST /e``, schedules and event sources share.

:func:`new_execution` makes the record, the root branch and the first work of an execution of a
workflow's latest version; :func:`check_event_data` checks data against the workflow's declared inputs.
Triggers derive the execution's id from their tick or message (:func:`derived_id`) so that a start
repeated after a crash or a redelivery finds the id taken and creates nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from machinery.asl.simple import canonical_type, value_matches
from machinery.engine.types import Branch
from machinery.errors import FieldIssue, InvalidEventData
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    WORK_START,
    WORK_TIMEOUT,
    ExecutionRecord,
    NewExecution,
    WorkflowRecord,
    WorkItem,
    new_id,
)

#: The namespace of derived execution ids (UUID version 5).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "machinery:trigger")


def derived_id(*parts: str) -> str:
    """A UUID that the same parts always give (a trigger's execution id: its dedup key)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def named_execution_id(workflow_id: str, name: str) -> str:
    """The id of a named execution (AWS's StartExecution with a ``name``): one per workflow and name."""
    return derived_id("named", workflow_id, name)


def check_event_data(workflow: WorkflowRecord, data: Any) -> None:
    """The data must match the workflow's declared inputs, when it declares any.

    :raises InvalidEventData: with one issue per missing or ill-typed input.
    """
    declared = workflow.spec.get("inputs") or []
    if not declared:
        return
    if not isinstance(data, dict):
        raise InvalidEventData(
            "event data must be a JSON object with the workflow's inputs",
            issues=[FieldIssue("(data)", f"expected an object, got {type(data).__name__}")],
        )
    issues = []
    for item in declared:
        expected = canonical_type(item["type"]) or "any"
        if item["name"] not in data:
            if item.get("required", True):
                issues.append(FieldIssue(item["name"], f"is required ({expected})"))
        elif not value_matches(data[item["name"]], expected):
            got = type(data[item["name"]]).__name__
            issues.append(FieldIssue(item["name"], f"must be of type {expected}, got {got}"))
    if issues:
        raise InvalidEventData("event data does not match the workflow's inputs", issues=issues)


def new_execution(
    workflow: WorkflowRecord,
    data: Any,
    now: float,
    *,
    time_scale: float = 1.0,
    execution_id: str | None = None,
    name: str | None = None,
    callback_url: str | None = None,
    trace_parent: str | None = None,
) -> NewExecution:
    """A new RUNNING execution of ``workflow`` with ``data`` as its input: record, root branch, work.

    The work is the root branch's start and, when the definition has ``TimeoutSeconds``, the execution's
    own timeout (scaled by ``time_scale``). ``trace_parent``: the W3C trace the execution continues.
    """
    execution_id = execution_id or new_id()
    record = ExecutionRecord(
        execution_id=execution_id,
        workflow_id=workflow.workflow_id,
        workflow_name=workflow.name,
        workflow_version=workflow.version,
        name=name or execution_id,
        status=ExecutionStatus.RUNNING,
        input=data,
        started_at=now,
        callback_url=callback_url,
        express=workflow.express,
    )
    root = Branch(
        branch_id=execution_id,
        execution_id=execution_id,
        container=(),
        state_input=data,
        trace_parent=trace_parent,
    )
    work = [WorkItem(execution_id, execution_id, WORK_START, now)]
    # Reading the definition's own field spares compiling it (or dumping it canonically) per event.
    timeout = workflow.definition.get("TimeoutSeconds")
    if timeout:
        work.append(WorkItem(execution_id, execution_id, WORK_TIMEOUT, now + float(timeout) * time_scale))
    return NewExecution(record, root, work)
