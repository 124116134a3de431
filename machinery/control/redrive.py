"""Redrive: a FAILED, TIMED_OUT or ABORTED execution runs again from what did not finish.

The execution keeps its id, its name and its history; ``ExecutionRedriven`` is appended and each branch
that did not succeed goes on: a branch that failed (or was cancelled) in a state enters that state again
with the input it had; a Map or Parallel state whose children failed reopens its join, and only the
children (iterations, branches) that did not succeed run again, recursively; a distributed Map's failed
or aborted child executions are redriven with it (``MapRunRedriven``). Children that succeeded keep
their results. With ``MaxConcurrency`` the rerun children are admitted in index order as before: the
first ones start at once, the others (and the succeeded children between them, which are counted again
without running) as earlier ones finish.

A redrive is allowed for ``MACHINERY_REDRIVE_DAYS`` (14, as on AWS) after the execution ended, for
durable executions that are not children of a distributed Map (those are redriven with their parent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from machinery.asl.model import CompiledMachine
from machinery.engine.interpreter import map_run_arn
from machinery.engine.types import (
    ACTIVE,
    PHASE_CHILDREN,
    PHASE_START,
    SUCCEEDED,
    Branch,
    ExecutionContext,
    HistoryEvent,
)
from machinery.errors import Conflict
from machinery.runtime.commits import execution_context
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    WORK_START,
    WORK_TIMEOUT,
    ExecutionRecord,
    JoinState,
    RedrivePlan,
    Storage,
    WorkItem,
)

REDRIVABLE = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED})
DEFAULT_REDRIVE_DAYS = 14.0


class NotRedrivable(Conflict):
    """The execution cannot be redriven now (AWS: ``ExecutionNotRedrivable``); ``reason`` says why."""

    code = "not_redrivable"
    title = "Not redrivable"


def redrive_status(record: ExecutionRecord, days: float, now: float | None = None) -> tuple[str, str]:
    """AWS's ``redriveStatus`` of an execution and, when it is not redrivable, the reason."""
    reason = not_redrivable_reason(record, days, time.time() if now is None else now)
    if reason is None:
        return "REDRIVABLE", ""
    return "NOT_REDRIVABLE", reason


def not_redrivable_reason(record: ExecutionRecord, days: float, now: float) -> str | None:
    """Why ``record`` cannot be redriven (AWS's wording), or None when it can."""
    if record.status == ExecutionStatus.RUNNING:
        return "Execution is RUNNING and cannot be redriven"
    if record.status == ExecutionStatus.SUCCEEDED:
        return "Execution is SUCCEEDED and cannot be redriven"
    if record.express:
        return "Express executions cannot be redriven"
    if record.parent_execution_id is not None:
        return "A child execution of a Distributed Map is redriven by redriving its parent"
    if record.finished_at is not None and now > record.finished_at + days * 86400:
        return "Execution redrivable period exceeded"
    return None


@dataclass
class _Planner:
    """Walks the branches of a finished execution and writes down what reopening them means."""

    storage: Storage
    machine: CompiledMachine
    context: ExecutionContext
    now: float
    redrive_count: int
    plan: RedrivePlan = field(default_factory=lambda: RedrivePlan(executions=[]))
    #: How many states enter again (a task, a wait ...); an edited input needs exactly one.
    reruns: list[Branch] = field(default_factory=list)

    def reopen(self, branch: Branch, join_id: str | None, admitted: bool) -> None:
        """Make ``branch`` active again; with ``admitted`` it also gets the work that runs it."""
        join = self._join_to_reopen(branch)
        reopened = replace(branch, status=ACTIVE, error=None, cause=None, output=None, pending=None)
        if branch.execution_root:
            # Its execution's history grew by ExecutionRedriven: the event ids it knew are off now.
            reopened.event_cursor = None
        if join is not None:
            reopened.phase = PHASE_CHILDREN
            self.plan.branches.append((reopened, join_id))
            self._reopen_join(join, branch)
            return
        if reopened.state is None:
            reopened.phase = PHASE_START
        else:
            self.reruns.append(reopened)
        self.plan.branches.append((reopened, join_id))
        if admitted:
            self.plan.work.append(WorkItem(branch.execution_id, branch.branch_id, WORK_START, self.now))

    def _join_to_reopen(self, branch: Branch) -> JoinState | None:
        """The join of the Map or Parallel state ``branch`` failed in, when some of its children failed."""
        if branch.state is None:
            return None
        state = self.machine.state(branch.container, branch.state)
        if state.type not in ("Map", "Parallel"):
            return None
        join = self.storage.get_join(f"{branch.branch_id}@{branch.attempt}")
        if join is None or join.spec.parent_id != branch.branch_id:
            return None
        children = self.storage.child_results(join.spec.join_id)
        if len(children) < join.spec.total or all(child.status == SUCCEEDED for child in children):
            return None
        return join

    def _reopen_join(self, join: JoinState, parent: Branch) -> None:
        children = self.storage.child_results(join.spec.join_id)
        rerun = [child for child in children if child.status != SUCCEEDED]
        limit = join.spec.max_concurrency
        if limit <= 0 or len(rerun) <= limit:
            admitted, next_index = rerun, join.spec.total
        else:
            admitted, next_index = rerun[:limit], rerun[limit - 1].index + 1
        admitted_ids = {child.branch_id for child in admitted}
        succeeded = sum(1 for c in children if c.status == SUCCEEDED and c.index < next_index)
        self.plan.joins.append(replace(join, started=next_index, succeeded=succeeded, failed=0, closed=False))
        if any(child.execution_root for child in children):
            assert parent.state is not None
            state = self.machine.state(parent.container, parent.state)
            arn = map_run_arn(self.context, state.label or state.name, join.spec.join_id)
            self.plan.history.setdefault(parent.execution_id, []).append(
                HistoryEvent(
                    "MapRunRedriven", {"mapRunArn": arn, "redriveCount": self.redrive_count}, self.now
                )
            )
        for child in rerun:
            if child.execution_root:
                record = self.storage.get_execution(child.execution_id)
                if record is None or record.status not in REDRIVABLE:
                    continue
                self.plan.executions.append((record.execution_id, record.status))
                self.plan.history.setdefault(record.execution_id, []).append(
                    HistoryEvent("ExecutionRedriven", {"redriveCount": record.redrive_count + 1}, self.now)
                )
            self.reopen(child, join.spec.join_id, child.branch_id in admitted_ids)


#: ``new_input`` of :func:`plan_redrive` when the rerun state keeps its input.
KEEP_INPUT: Any = object()


def plan_redrive(
    storage: Storage,
    machine: CompiledMachine,
    record: ExecutionRecord,
    now: float,
    days: float,
    new_input: Any = KEEP_INPUT,
    time_scale: float = 1.0,
) -> RedrivePlan:
    """What redriving ``record`` writes.

    :param new_input: beyond AWS: the input the state that runs again gets instead of the one it had
        (only when exactly one state runs again).
    :raises NotRedrivable: the execution cannot be redriven (see :func:`not_redrivable_reason`).
    """
    reason = not_redrivable_reason(record, days, now)
    if reason is not None:
        raise NotRedrivable(reason, reason=reason)
    root = storage.get_branch(record.execution_id)
    if root is None or root.status == SUCCEEDED:
        raise NotRedrivable("the execution has nothing left to run", reason="nothing to run")
    planner = _Planner(storage, machine, execution_context(record), now, record.redrive_count + 1)
    planner.plan.executions.append((record.execution_id, record.status))
    redriven = HistoryEvent("ExecutionRedriven", {"redriveCount": record.redrive_count + 1}, now)
    planner.plan.history[record.execution_id] = [redriven]
    planner.reopen(root, None, True)
    if new_input is not KEEP_INPUT:
        if len(planner.reruns) != 1:
            raise Conflict(
                "an edited input needs exactly one state to run again; "
                f"this redrive reruns {len(planner.reruns)}"
            )
        planner.reruns[0].state_input = new_input
    _continue_event_ids(storage, planner, record)
    timeout = machine.root.timeout_seconds
    if record.status == ExecutionStatus.TIMED_OUT and timeout:
        due = now + float(timeout) * time_scale
        planner.plan.work.append(WorkItem(record.execution_id, record.execution_id, WORK_TIMEOUT, due))
    return planner.plan


def _continue_event_ids(storage: Storage, planner: _Planner, record: ExecutionRecord) -> None:
    """The root branch knows the history's event ids again after a redrive: they go on from the last."""
    for branch, _join in planner.plan.branches:
        if branch.branch_id == record.execution_id and branch.phase != PHASE_CHILDREN:
            last = storage.get_history(record.execution_id, None, 1, True)
            appended = len(planner.plan.history.get(record.execution_id, []))
            branch.event_cursor = (last[0].event_id if last else 0) + appended
