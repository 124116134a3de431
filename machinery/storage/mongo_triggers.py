"""What schedules and event sources need of MongoDB (mixed into
:class:`~machinery.storage.mongo.MongoStorage`).

:meth:`MongoTriggers.start_executions` follows the backend's fenced-intent design: the whole start is
written as one intent onto the consumed work item (or a fresh anchor) and then applied idempotently. An
execution belongs to the intent that inserted its document (``created_by``): a start repeated with the
same id, even concurrently, finds the document created by another intent and writes nothing of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING
from pymongo.collection import Collection

from machinery.storage.base import CommitResult, NewExecution, StartResult, WorkItem
from machinery.storage.mongo_definitions import driver_errors
from machinery.storage.mongo_documents import Doc, dumps, execution_doc, work_doc, work_item


class MongoTriggers:
    """Exactly-once starts and a schedule's cursor on MongoDB."""

    _executions: Collection[Doc]
    _work: Collection[Doc]

    if TYPE_CHECKING:  # what MongoStorage provides

        def _allocate(self, counter: str, count: int) -> int: ...

        def _run_intent(self, anchor_id: int, text: str) -> CommitResult: ...

        def _place_intent(
            self, consumed: WorkItem | None, execution_id: str, branch_id: str, now: float, text: str
        ) -> int: ...

        def _insert_execution(self, doc: Doc) -> None: ...

        def _put_branch(self, body: Doc, join_id: str | None, rev: int) -> None: ...

        def _put_work(self, work: Sequence[Sequence[Any]]) -> None: ...

        def _retire_work(self, query: Doc, keep: Sequence[int]) -> None: ...

    @driver_errors
    def start_executions(
        self,
        starts: Sequence[NewExecution],
        now: float,
        consumed: WorkItem | None = None,
        follow: Sequence[WorkItem] = (),
        claim_owner: str | None = None,
        lease_until: float = 0.0,
    ) -> StartResult:
        """Create the executions not stored yet, consuming ``consumed`` and adding ``follow``, at once."""
        # Ids that exist are skipped up front (cheap); the ``created_by`` mark settles concurrent starts.
        ids = [new.record.execution_id for new in starts]
        existing = {doc["_id"] for doc in self._executions.find({"_id": {"$in": ids}}, {"_id": 1})}
        fresh = [new for new in starts if new.record.execution_id not in existing]
        seq = self._allocate("executions", len(fresh)) if fresh else 0
        count = sum(len(new.work) for new in fresh) + len(follow)
        work_ids = iter(range(self._allocate("work", count), 10**18)) if count else iter(())
        intent: Doc = {
            "op": "start",
            "rev": self._allocate("revisions", 1) if fresh else 0,
            "executions": [
                {
                    "execution": execution_doc(new.record, seq + offset, 0),
                    "root": new.root.to_json(),
                    "work": [[next(work_ids), work_doc(item)] for item in new.work],
                }
                for offset, new in enumerate(fresh)
            ],
            "follow": [[next(work_ids), work_doc(item)] for item in follow],
        }
        text = dumps(intent)
        where = consumed.execution_id if consumed is not None else "start"
        anchor_id = self._place_intent(consumed, where, where, now, text)  # pylint: disable=assignment-from-no-return
        self._run_intent(anchor_id, text)
        created = self._executions.find({"_id": {"$in": ids}, "created_by": anchor_id}, {"_id": 1})
        mine = {doc["_id"] for doc in created}
        return StartResult(created=[execution_id for execution_id in ids if execution_id in mine])

    def _apply_start(self, anchor_id: int, intent: Doc) -> CommitResult:
        added = 0
        for start in intent["executions"]:
            doc = {**start["execution"], "created_by": anchor_id}
            self._insert_execution(doc)
            stored = self._executions.find_one({"_id": doc["_id"]}, {"created_by": 1})
            if stored is None or stored.get("created_by") != anchor_id:
                continue  # another start of the same id created it
            self._put_branch(start["root"], None, intent["rev"])
            self._put_work(start["work"])
            added += len(start["work"])
        self._put_work(intent["follow"])
        return CommitResult(new_work=added + len(intent["follow"]))

    @driver_errors
    def get_work(self, execution_id: str) -> list[WorkItem]:
        found = self._work.find(
            {"execution_id": execution_id, "done": False, "kind": {"$ne": "intent"}},
            sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
        )
        return [work_item(doc) for doc in found]

    @driver_errors
    def replace_work(self, execution_id: str, work: Sequence[WorkItem]) -> None:
        # Not one atomic operation here: the new items are written first, then the others retired, so
        # a crash in between leaves both (a schedule drops a cursor of an older revision when it fires).
        first = self._allocate("work", len(work)) if work else 0
        keep = [first + offset for offset in range(len(work))]
        self._put_work([(first + offset, work_doc(item)) for offset, item in enumerate(work)])
        self._retire_work({"execution_id": execution_id}, keep)
