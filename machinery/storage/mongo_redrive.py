"""Redrive in MongoDB (mixed into :class:`~machinery.storage.mongo.MongoStorage`).

Without multi-document transactions a redrive is a sequence of single-document writes: the statuses
are checked first, then each execution is reopened with one conditional update (the first one decides:
a concurrent redrive of the same execution finds it RUNNING and gives up), then branches, joins,
history and work are written. A crash in the middle leaves a reopened execution whose rerun may lack
some of its work; ``docs/storage.md`` lists this among the MongoDB backend's weaker guarantees.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from machinery.status import ExecutionStatus
from machinery.storage.base import WORK_START, JoinState, RedrivePlan, WorkItem, admitted_after_limit_change
from machinery.storage.mongo_definitions import driver_errors
from machinery.storage.mongo_documents import Doc, dumps, join_spec, work_doc


class MongoRedrive:
    """``get_join`` and ``redrive_execution``; the collections and helpers are the storage's."""

    _executions: Collection[Doc]
    _branches: Collection[Doc]
    _joins: Collection[Doc]

    if TYPE_CHECKING:  # provided by MongoStorage

        def _allocate(self, counter: str, count: int) -> int: ...

        def _put_history(self, execution_id: str, first: int, history: Sequence[Sequence[Any]]) -> None: ...

        def _put_work(self, work: Sequence[Sequence[Any]]) -> None: ...

    @driver_errors
    def get_join(self, join_id: str) -> JoinState | None:
        doc = self._joins.find_one({"_id": join_id})
        if doc is None:
            return None
        return JoinState(
            spec=join_spec(doc),
            started=doc["started"],
            succeeded=doc["succeeded"],
            failed=doc["failed"],
            closed=bool(doc["closed"]),
        )

    @driver_errors
    def redrive_execution(self, plan: RedrivePlan, now: float) -> bool:
        """Apply a redrive plan in one step; False when the execution is no longer redrivable."""
        for execution_id, status in plan.executions:
            if self._executions.find_one({"_id": execution_id, "status": status}, {"_id": 1}) is None:
                return False
        for execution_id, status in plan.executions:
            reopened = self._executions.find_one_and_update(
                {"_id": execution_id, "status": status},
                {
                    "$set": {
                        "status": ExecutionStatus.RUNNING,
                        "output": None,
                        "error": None,
                        "cause": None,
                        "finished_at": None,
                        "redrive_date": now,
                    },
                    "$inc": {"redrive_count": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
            if reopened is None:
                return False
        for branch, join_id in plan.branches:
            body = branch.to_json()
            self._branches.update_one(
                {"_id": branch.branch_id},
                {
                    "$set": {
                        "execution_id": branch.execution_id,
                        "join_id": join_id,
                        "idx": branch.index,
                        "status": branch.status,
                        "body": dumps(body),
                    },
                    "$inc": {"rev": 1},
                },
                upsert=True,
            )
        for join in plan.joins:
            self._reopen_join(join)
        for execution_id, events in plan.history.items():
            if not events:
                continue
            doc = self._executions.find_one_and_update(
                {"_id": execution_id},
                {"$inc": {"last_event_id": len(events)}},
                return_document=ReturnDocument.AFTER,
            )
            assert doc is not None
            first = int(doc["last_event_id"]) - len(events) + 1
            self._put_history(execution_id, first, [[e.type, e.details, e.timestamp] for e in events])
        if plan.work:
            first_id = self._allocate("work", len(plan.work))  # pylint: disable=assignment-from-no-return
            self._put_work([(first_id + offset, work_doc(item)) for offset, item in enumerate(plan.work)])
        return True

    def _reopen_join(self, join: JoinState) -> None:
        """Counters as the plan says; ``counted`` keeps only the children that stay counted (those that
        succeeded below ``join.started``), and ``initially_started`` is set so that the next child
        admitted is ``join.started``."""
        doc = self._joins.find_one({"_id": join.spec.join_id})
        if doc is None:
            return
        counted = self._branches.find(
            {"join_id": join.spec.join_id, "status": "SUCCEEDED", "idx": {"$lt": join.started}}, {"idx": 1}
        )
        still = {branch["idx"] for branch in counted}
        kept = [entry for entry in doc["counted"] if entry["ok"] and entry["i"] in still]
        self._joins.update_one(
            {"_id": join.spec.join_id},
            {
                "$set": {
                    "started": join.started,
                    "succeeded": join.succeeded,
                    "failed": join.failed,
                    "closed": join.closed,
                    "counted": kept,
                    "initially_started": join.started - len(kept),
                }
            },
        )

    @driver_errors
    def update_join_limits(
        self, join_id: str, max_concurrency: int, tolerated_count: int, tolerated_pct: float, now: float
    ) -> bool:
        """Change a running join's limits (a Map run's concurrency and tolerated failures)."""
        join = self.get_join(join_id)
        doc = self._joins.find_one({"_id": join_id}, {"execution_id": 1})
        if join is None or doc is None or join.closed:
            return False
        started = admitted_after_limit_change(join, max_concurrency)
        extra = started - join.started
        self._joins.update_one(
            {"_id": join_id},
            {
                "$set": {
                    "max_concurrency": max_concurrency,
                    "tolerated_count": tolerated_count,
                    "tolerated_pct": tolerated_pct,
                    "started": started,
                },
                "$inc": {"initially_started": extra},
            },
        )
        work = []
        for index in range(join.started, started):
            queued = f"{join_id}/{index}"
            found = self._branches.find_one({"_id": queued}, {"execution_id": 1})
            execution_id = found["execution_id"] if found else doc["execution_id"]
            work.append(WorkItem(execution_id, queued, WORK_START, now))
        if work:
            first_id = self._allocate("work", len(work))  # pylint: disable=assignment-from-no-return
            self._put_work([(first_id + offset, work_doc(item)) for offset, item in enumerate(work)])
        return True
