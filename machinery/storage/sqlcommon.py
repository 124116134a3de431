"""What the SQL backends (SQLite, PostgreSQL) share beyond their SQL: how a transition is applied, how
an execution is ended from outside, and how a finished child is counted into its join — written once
over :class:`SqlTransaction`, the few primitives each dialect implements for an open transaction.

Both dialects' ``queries.sql`` define the same query names used here.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from machinery.engine.types import ACTIVE, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    WORK_CHILDREN,
    WORK_START,
    WORK_WEBHOOK,
    Commit,
    CommitResult,
    ExecutionRecord,
    JoinSpec,
    JoinState,
    RedrivePlan,
    WorkItem,
    admitted_after_limit_change,
    decide_join,
)


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


def join_of(branch: Branch) -> str | None:
    """Child branch ids are ``<join id>/<index>``; the root branch has none."""
    if branch.parent_id is None:
        return None
    return branch.branch_id.rsplit("/", 1)[0]


def start_item(branch: Branch, now: float) -> WorkItem:
    return WorkItem(branch.execution_id, branch.branch_id, WORK_START, now)


def webhook_item(execution_id: str, now: float) -> WorkItem:
    return WorkItem(execution_id, execution_id, WORK_WEBHOOK, now, {"attempt": 0})


def join_state(join_id: str, row: Mapping[str, Any]) -> JoinState:
    """A ``joins`` row as the state :func:`decide_join` works on."""
    return JoinState(
        spec=JoinSpec(
            join_id=join_id,
            parent_id=row["parent_id"],
            kind=row["kind"],
            total=row["total"],
            max_concurrency=row["max_concurrency"],
            tolerated_failure_count=row["tolerated_count"],
            tolerated_failure_percentage=row["tolerated_pct"],
        ),
        started=row["started"],
        succeeded=row["succeeded"],
        failed=row["failed"],
        closed=bool(row["closed"]),
    )


def account_child(tx: SqlTransaction, child: Branch, join_id: str, now: float) -> list[WorkItem]:
    """Count a finished child into its join; the work that follows (queued children, the parent's
    resumption) and, when the join failed, its running siblings cancelled."""
    row = tx.execute(tx.join_query, {"join_id": join_id}).fetchone()
    if row is None:
        return []
    join = join_state(join_id, row)
    decision = decide_join(join, child.status == SUCCEEDED, child.error, child.cause)
    tx.execute(
        "join_update",
        {
            "join_id": join_id,
            "started": join.started,
            "succeeded": join.succeeded,
            "failed": join.failed,
            "closed": tx.closed_value(join.closed),
        },
    )
    work: list[WorkItem] = []
    for index in decision.start_indexes:
        # A queued child runs in its own execution when it is a child execution.
        queued = f"{join_id}/{index}"
        found = tx.execute("branch_execution", {"branch_id": queued}).fetchone()
        work.append(WorkItem(found["execution_id"] if found else child.execution_id, queued, WORK_START, now))
    if decision.close:
        payload: dict[str, Any] = {"join_id": join_id}
        if decision.error is not None:
            payload.update(error=decision.error, cause=decision.cause)
            params = {"join_id": join_id, "execution_id": row["execution_id"]}
            for running in tx.execute("executions_active_in_join", params).fetchall():
                end_execution(tx, running["execution_id"], ExecutionStatus.ABORTED, now, None, None)
            tx.execute("work_delete_join_children", {"join_id": join_id})
            tx.execute("branches_cancel_join", {"join_id": join_id})
        work.append(WorkItem(row["execution_id"], join.spec.parent_id, WORK_CHILDREN, now, payload))
    return work


#: ``(owner, lease_until, now)``: insert the work due by ``now`` already claimed by ``owner``.
Claim = tuple[str, float, float]


class SqlTransaction(abc.ABC):
    """One open transaction of a SQL backend: the primitives :func:`apply_commit` and
    :func:`end_execution` are written in."""

    #: The query that reads the join row (PostgreSQL also locks it).
    join_query = "join_get"

    @abc.abstractmethod
    def execute(self, query: str, params: dict[str, Any]) -> Rows:
        """Run a named query of the dialect's ``queries.sql``."""

    @abc.abstractmethod
    def json(self, value: Any) -> Any:
        """A user document as the dialect stores it (``None`` stays SQL NULL)."""

    @abc.abstractmethod
    def closed_value(self, closed: bool) -> object:
        """The dialect's value for a join's ``closed`` column."""

    @abc.abstractmethod
    def consume(self, item: WorkItem) -> bool:
        """Delete a claimed work item if its fence and owner still match."""

    @abc.abstractmethod
    def put_branches(self, branches: Sequence[Branch], join_id: str | None) -> None: ...

    @abc.abstractmethod
    def append_history(self, execution_id: str, history: Sequence[HistoryEvent]) -> None: ...

    @abc.abstractmethod
    def insert_execution(self, record: ExecutionRecord) -> None: ...

    @abc.abstractmethod
    def insert_work(self, work: Sequence[WorkItem], claim: Claim | None = None) -> list[WorkItem]:
        """Insert work (claimed by ``claim``'s owner when due by its time); the claimed items."""

    def before_commit(self, commit: Commit) -> None:  # noqa: B027 - optional hook
        """Called first (PostgreSQL locks the execution's row here)."""

    def finish(
        self, execution_id: str, status: ExecutionStatus, now: float, **fields: Any
    ) -> Mapping[str, Any] | None:
        """Set a RUNNING execution's final status; its ``callback_url`` row, or None if it had ended."""
        row: Mapping[str, Any] | None = self.execute(
            "execution_finish",
            {
                "execution_id": execution_id,
                "status": status,
                "output": self.json(fields.get("output")),
                "error": fields.get("error"),
                "cause": fields.get("cause"),
                "now": now,
            },
        ).fetchone()
        return row


def apply_commit(tx: SqlTransaction, commit: Commit, now: float) -> CommitResult:
    """Write one transition (see :class:`machinery.storage.base.Commit`) in ``tx``."""
    tx.before_commit(commit)
    consumed = commit.consumed
    if consumed is not None and not tx.consume(consumed):
        raise LeaseLost(
            "work item was claimed by another worker or cancelled", execution_id=commit.execution_id
        )
    branch = commit.branch
    join_id = join_of(branch)
    tx.put_branches([branch], join_id)
    tx.append_history(commit.execution_id, commit.history)
    work = list(commit.work)
    for record in commit.child_executions:
        tx.insert_execution(record)
    if commit.join is not None:
        spec = commit.join
        started = spec.total if spec.max_concurrency <= 0 else min(spec.total, spec.max_concurrency)
        tx.execute(
            "join_insert",
            {
                "join_id": spec.join_id,
                "execution_id": commit.execution_id,
                "parent_id": spec.parent_id,
                "kind": spec.kind,
                "total": spec.total,
                "started": started,
                "max_concurrency": spec.max_concurrency,
                "tolerated_count": spec.tolerated_failure_count,
                "tolerated_pct": spec.tolerated_failure_percentage,
            },
        )
        tx.put_branches(commit.children, spec.join_id)
        work.extend(start_item(child, now) for child in commit.children[:started])
    if branch.status != ACTIVE and join_id is not None:
        work.extend(account_child(tx, branch, join_id, now))
    finished = False
    if commit.execution_update is not None:
        update = commit.execution_update
        row = tx.finish(
            commit.execution_id,
            update["status"],
            now,
            output=update.get("output"),
            error=update.get("error"),
            cause=update.get("cause"),
        )
        finished = row is not None
        if row is not None:
            tx.execute("work_delete_execution", {"execution_id": commit.execution_id})
            if row["callback_url"]:
                work.append(webhook_item(commit.execution_id, now))
            abort_children(tx, commit.execution_id, now)
    claim = None if commit.claim_owner is None else (commit.claim_owner, commit.lease_until, now)
    claimed = tx.insert_work(work, claim)
    return CommitResult(execution_finished=finished, new_work=len(work), claimed=claimed)


def end_execution(
    tx: SqlTransaction,
    execution_id: str,
    status: ExecutionStatus,
    now: float,
    error: str | None,
    cause: str | None,
) -> bool:
    """End a running execution from outside (stop, timeout), and its running child executions."""
    row = tx.finish(execution_id, status, now, error=error, cause=cause)
    if row is None:
        return False
    tx.execute("branches_cancel_execution", {"execution_id": execution_id})
    tx.execute("work_delete_execution", {"execution_id": execution_id})
    kind = ExecutionStatus(status).end_event_type
    details = {"error": error, "cause": cause} if error else {}
    tx.append_history(execution_id, [HistoryEvent(kind, details, now)])
    if row["callback_url"]:
        tx.insert_work([webhook_item(execution_id, now)])
    abort_children(tx, execution_id, now)
    return True


def abort_children(tx: SqlTransaction, execution_id: str, now: float) -> None:
    """Abort the running child executions of an execution that ended."""
    for child in tx.execute("executions_running_children", {"execution_id": execution_id}).fetchall():
        end_execution(tx, child["execution_id"], ExecutionStatus.ABORTED, now, None, None)


class RedriveConflict(Exception):
    """An execution of a redrive plan no longer has the status the plan expects: roll back."""


def apply_redrive(tx: SqlTransaction, plan: RedrivePlan, now: float) -> None:
    """Reopen executions as ``plan`` says (see :meth:`machinery.storage.base.Storage.redrive_execution`).

    :raises RedriveConflict: one of them no longer has the status the plan expects (the caller rolls
        the transaction back).
    """
    for execution_id, status in plan.executions:
        params = {"execution_id": execution_id, "status": status, "now": now}
        if tx.execute("execution_reopen", params).rowcount != 1:  # type: ignore[attr-defined]
            raise RedriveConflict(execution_id)
    for branch, join_id in plan.branches:
        tx.put_branches([branch], join_id)
    for join in plan.joins:
        tx.execute(
            "join_update",
            {
                "join_id": join.spec.join_id,
                "started": join.started,
                "succeeded": join.succeeded,
                "failed": join.failed,
                "closed": tx.closed_value(join.closed),
            },
        )
    for execution_id, events in plan.history.items():
        tx.append_history(execution_id, events)
    tx.insert_work(plan.work)


def apply_join_limits(
    tx: SqlTransaction,
    join_id: str,
    max_concurrency: int,
    tolerated_count: int,
    tolerated_pct: float,
    now: float,
) -> bool:
    row = tx.execute(tx.join_query, {"join_id": join_id}).fetchone()
    if row is None or row["closed"]:
        return False
    join = join_state(join_id, row)
    started = admitted_after_limit_change(join, max_concurrency)
    tx.execute(
        "join_update_limits",
        {
            "join_id": join_id,
            "max_concurrency": max_concurrency,
            "tolerated_count": tolerated_count,
            "tolerated_pct": tolerated_pct,
            "started": started,
        },
    )
    work = []
    for index in range(join.started, started):
        queued = f"{join_id}/{index}"
        found = tx.execute("branch_execution", {"branch_id": queued}).fetchone()
        work.append(
            WorkItem(found["execution_id"] if found else row["execution_id"], queued, WORK_START, now)
        )
    tx.insert_work(work)
    return True
