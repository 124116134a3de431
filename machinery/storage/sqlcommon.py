"""What the SQL backends (SQLite, PostgreSQL) share beyond their SQL: work items they create and the
accounting of a finished child branch into its join, written once over a small ``execute`` callable.

Both dialects' ``queries.sql`` define the same query names used here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from machinery.engine.types import SUCCEEDED, Branch
from machinery.storage.base import (
    WORK_CHILDREN,
    WORK_START,
    WORK_WEBHOOK,
    JoinSpec,
    JoinState,
    WorkItem,
    decide_join,
)


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


#: Runs the named query of the backend's ``queries.sql`` with parameters, inside its transaction.
Execute = Callable[[str, dict[str, Any]], Rows]
#: Ends a running execution (and its children) from outside: ``(execution_id, status, now)``.
EndExecution = Callable[[str, str, float], object]


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


def account_child(
    execute: Execute,
    end_execution: EndExecution,
    child: Branch,
    join_id: str,
    now: float,
    *,
    join_query: str,
    closed_value: Callable[[bool], object],
) -> list[WorkItem]:
    """Count a finished child into its join; the work that follows (queued children, the parent's
    resumption) and, when the join failed, its running siblings cancelled.

    :param join_query: the query that reads (PostgreSQL: and locks) the join row.
    :param closed_value: the dialect's value for the ``closed`` column.
    """
    row = execute(join_query, {"join_id": join_id}).fetchone()
    if row is None:
        return []
    join = join_state(join_id, row)
    decision = decide_join(join, child.status == SUCCEEDED, child.error, child.cause)
    execute(
        "join_update",
        {
            "join_id": join_id,
            "started": join.started,
            "succeeded": join.succeeded,
            "failed": join.failed,
            "closed": closed_value(join.closed),
        },
    )
    work: list[WorkItem] = []
    for index in decision.start_indexes:
        # A queued child runs in its own execution when it is a child execution.
        queued = f"{join_id}/{index}"
        found = execute("branch_execution", {"branch_id": queued}).fetchone()
        work.append(WorkItem(found["execution_id"] if found else child.execution_id, queued, WORK_START, now))
    if decision.close:
        payload: dict[str, Any] = {"join_id": join_id}
        if decision.error is not None:
            payload.update(error=decision.error, cause=decision.cause)
            params = {"join_id": join_id, "execution_id": row["execution_id"]}
            for running in execute("executions_active_in_join", params).fetchall():
                end_execution(running["execution_id"], "ABORTED", now)
            execute("work_delete_join_children", {"join_id": join_id})
            execute("branches_cancel_join", {"join_id": join_id})
        work.append(WorkItem(row["execution_id"], join.spec.parent_id, WORK_CHILDREN, now, payload))
    return work
