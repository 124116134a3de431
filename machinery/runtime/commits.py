"""What a step of the interpreter commits: the work its effects schedule, the children it starts and how
it ends its execution (:class:`~machinery.storage.base.Commit`).

Pure functions of the step and the clock. The worker adds what needs storage or its own state: the
workflow version a distributed Map's child executions are pinned to, the Map Run resource, and the
claim of the branch's next step (:meth:`machinery.runtime.worker.Worker._build_commit`).
"""

from __future__ import annotations

import uuid
from typing import Any

from machinery.engine.interpreter import iso_time
from machinery.engine.types import (
    FAILED,
    SUCCEEDED,
    Branch,
    ExecutionContext,
    InvokeTask,
    ReadItems,
    ResumeEvent,
    StartChildren,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
)
from machinery.runtime import spans
from machinery.runtime.notify import Finish
from machinery.runtime.tasks import TaskOutcome
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    WORK_READ,
    WORK_TASK,
    WORK_TIMER,
    Commit,
    ExecutionRecord,
    JoinSpec,
    WorkItem,
)


def step_commit(
    item: WorkItem, execution: ExecutionContext, step: Step, now: float, time_scale: float
) -> Commit:
    """The commit of ``step`` (which consumes ``item``), with the work of its tasks, timers and item
    reads, and the execution's end if its root branch ended; its children are :func:`add_children`'s."""
    branch = step.branch
    execution_id = execution.execution_id
    commit = Commit(execution_id=execution_id, consumed=item, branch=branch, history=step.history)
    for effect in step.effects:
        if isinstance(effect, InvokeTask):
            commit.work.append(
                WorkItem(execution_id, branch.branch_id, WORK_TASK, now, effect_payload(effect))
            )
        elif isinstance(effect, StartTimer):
            due = scaled(effect.due, now, time_scale)
            commit.work.append(WorkItem(execution_id, branch.branch_id, WORK_TIMER, due))
        elif isinstance(effect, ReadItems):
            commit.work.append(WorkItem(execution_id, branch.branch_id, WORK_READ, now, read_payload(effect)))
    finish = ending(branch, now)
    if finish is not None:
        commit.execution_update = {
            "status": finish.status,
            "output": finish.output,
            "error": finish.error,
            "cause": finish.cause,
        }
    return commit


def add_children(
    commit: Commit,
    parent: Branch,
    effect: StartChildren,
    execution: ExecutionContext,
    now: float,
    pinned: tuple[str, int] | None,
) -> str:
    """Add the join and the children ``effect`` starts to ``commit``; the join's id.

    :param pinned: the workflow id and version that a distributed Map's children run as child
        executions of (``None``: the children are branches of this execution).
    """
    commit.join = join_spec(parent, effect)
    join_id = commit.join.join_id
    as_executions = pinned is not None
    trace_parent = spans.children_parent(execution.execution_id, parent)
    for index, child in enumerate(effect.children):
        branch_id = f"{join_id}/{index}"
        child_execution_id = parent.execution_id
        if pinned is not None:
            child_execution_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"machinery:{branch_id}"))
            workflow_id, version = pinned
            commit.child_executions.append(
                ExecutionRecord(
                    execution_id=child_execution_id,
                    workflow_id=workflow_id,
                    workflow_name=execution.state_machine_name,
                    workflow_version=version,
                    name=f"{execution.name}/{effect.label}/{index}",
                    status=ExecutionStatus.RUNNING,
                    input=child.input,
                    started_at=now,
                    parent_execution_id=execution.execution_id,
                )
            )
        commit.children.append(
            Branch(
                branch_id=branch_id,
                execution_id=child_execution_id,
                container=child.container,
                parent_id=parent.branch_id,
                index=index,
                state_input=child.input,
                map_item=child.map_item,
                # A child execution does not see its parent's variables (as in Step Functions).
                variables={} if as_executions else dict(parent.variables),
                execution_root=as_executions,
                trace_parent=trace_parent,
            )
        )
    return join_id


def join_spec(parent: Branch, effect: StartChildren) -> JoinSpec:
    """The join of the children ``effect`` starts from ``parent`` (its id names this attempt of it)."""
    return JoinSpec(
        join_id=f"{parent.branch_id}@{parent.attempt}",
        parent_id=parent.branch_id,
        kind=effect.kind,
        total=len(effect.children),
        max_concurrency=effect.max_concurrency,
        tolerated_failure_count=effect.tolerated_failure_count,
        tolerated_failure_percentage=effect.tolerated_failure_percentage,
    )


def scaled(due: float, now: float, time_scale: float) -> float:
    """A due time with the wait before it scaled by ``time_scale`` (``MACHINERY_TIME_SCALE``)."""
    if time_scale == 1.0:
        return due
    return now + max(0.0, due - now) * time_scale


def execution_context(record: ExecutionRecord) -> ExecutionContext:
    """What the ``$$`` context object needs of an execution (it never changes while it runs)."""
    return ExecutionContext(
        execution_id=record.execution_id,
        name=record.name,
        input=record.input,
        start_time=iso_time(record.started_at),
        state_machine_id=record.workflow_id,
        state_machine_name=record.workflow_name,
    )


def effect_payload(effect: InvokeTask) -> dict[str, Any]:
    return {
        "state_name": effect.state_name,
        "resource": effect.resource,
        "payload": effect.payload,
        "attempt": effect.attempt,
        "timeout_seconds": effect.timeout_seconds,
        "heartbeat_seconds": effect.heartbeat_seconds,
        "task_token": effect.task_token,
        "wait_for_token": effect.wait_for_token,
    }


def read_payload(effect: ReadItems) -> dict[str, Any]:
    return {
        "state_name": effect.state_name,
        "resource": effect.resource,
        "parameters": effect.parameters,
        "reader_config": effect.reader_config,
    }


def outcome_event(outcome: TaskOutcome) -> ResumeEvent:
    if outcome.error is not None:
        return TaskFailed(outcome.error, outcome.cause)
    return TaskSucceeded(outcome.output)


def ending(branch: Branch, now: float) -> Finish | None:
    """How the execution ends when ``branch`` is its root and has ended (SUCCEEDED or FAILED), else None."""
    if not (branch.owns_execution and branch.status in (SUCCEEDED, FAILED)):
        return None
    return Finish(
        ExecutionStatus(branch.status),
        branch.output if branch.status == SUCCEEDED else None,
        branch.error,
        branch.cause,
        now,
    )
