"""Redrive and map run limits in the SQL backends: reopening finished executions (their branches, joins,
history and work) and changing an open join's limits, in one transaction of :class:`SqlStorage`.
"""

# The dialect hooks (``_flag``...) are private to the SQL backends, of which this is a part.
# pylint: disable=protected-access

from __future__ import annotations

from typing import TYPE_CHECKING

from machinery.storage.base import WORK_START, RedrivePlan, WorkItem, admitted_after_limit_change
from machinery.storage.sqltx import join_state

if TYPE_CHECKING:
    from machinery.storage.sqltx import SqlTransaction


class RedriveConflict(Exception):
    """An execution of a redrive plan no longer has the status the plan expects: roll back."""


def apply_redrive(tx: SqlTransaction, plan: RedrivePlan, now: float) -> None:
    """Reopen executions as ``plan`` says (see :meth:`machinery.storage.base.Storage.redrive_execution`).

    :raises RedriveConflict: one of them no longer has the status the plan expects (the transaction is
        rolled back).
    """
    for execution_id, status in plan.executions:
        params = {"execution_id": execution_id, "status": status, "now": now}
        if tx.execute("execution_reopen", params).rowcount != 1:
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
                "closed": tx.storage._flag(join.closed),
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
    """Change an open join's limits and start the queued children a higher limit admits."""
    row = tx.execute(tx.storage.join_query, {"join_id": join_id}).fetchone()
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
