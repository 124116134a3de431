"""MongoDB backend (pymongo), written for servers without multi-document transactions.

MongoDB makes one operation on one document atomic, nothing more without a replica set (and mongomock,
what our tests run against, has no transactions at all). So every decision that must be made exactly once
is one such operation, and every other write can be repeated:

1. **Fenced intent.** :meth:`MongoStorage.commit` writes the whole transition as an *intent* onto the
   consumed work item with one ``find_one_and_update`` matching its fence and owner (no match:
   :class:`~machinery.errors.LeaseLost`). That write is the commit point.
2. **Idempotent application.** Upserts by id (branches with a revision that never goes backwards,
   history by ``(execution_id, event_id)``, work by pre-allocated ids); a child is counted into its join
   by one atomic update that matches only if it is not counted yet, and the join's decision comes from
   the counters it returns (:func:`~machinery.storage.base.decide_join`).
3. **Tombstone.** The consumed item is marked done, not deleted; a TTL index removes it later.

A writer that dies between 1 and 3 leaves an intent that the next :meth:`MongoStorage.claim_work`
applies (roll-forward). The guarantees and what they give up compared with the SQL backends (readers can
see a step half-applied; history ids may skip a number; 16 MB documents; no push wake-ups) are in
``docs/storage.md``. Only ever tested against mongomock: no MongoDB server can be installed in our CI.

User data (inputs, outputs, definitions, payloads) is stored as JSON text, as in SQLite: JSON keys may
contain ``.`` or start with ``$``, which MongoDB field names may not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import urlparse

import pymongo
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from machinery.engine.types import ACTIVE, CANCELLED, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost, StorageError
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    HEARTBEAT_TIMEOUT,
    WORK_CHILDREN,
    WORK_START,
    WORK_TOKEN,
    WORK_WEBHOOK,
    Commit,
    CommitResult,
    ExecutionRecord,
    Storage,
    StoredEvent,
    WorkCounts,
    WorkItem,
)
from machinery.storage.mongo_admin import MongoAdmin
from machinery.storage.mongo_definitions import MongoDefinitions, driver_errors
from machinery.storage.mongo_documents import (
    Doc,
    branch_from_doc,
    dumps,
    execution_doc,
    execution_record,
    join_decision,
    join_doc,
    join_of,
    join_spec,
    loads,
    start_doc,
    webhook_doc,
    work_doc,
    work_item,
)
from machinery.storage.mongo_redrive import MongoRedrive
from machinery.storage.mongo_resources import MongoResources
from machinery.storage.mongo_triggers import MongoTriggers

_P = ParamSpec("_P")
_R = TypeVar("_R")

logger = logging.getLogger(__name__)

WORK_INTENT = "intent"  # a synthetic work item that only carries an intent to roll forward
_AFTER = ReturnDocument.AFTER


class _AlreadyApplied(Exception):
    """Another applier finished this intent while we were applying it: nothing is left to do."""


class _Serialized:
    """Runs each operation of a mongomock collection under one lock.

    MongoDB makes every single-document operation atomic; mongomock does not (its
    ``find_one_and_update`` is a find followed by an update), so without this two threads could claim
    the same work item. Only single operations are serialised, so the multi-step design above is
    exercised just as it would be against a server.
    """

    def __init__(self, collection: Any, lock: threading.RLock) -> None:
        self._collection = collection
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = attr(*args, **kwargs)
                # Cursors are lazy; read them while the lock is held.
                return list(result) if name == "find" else result

        return call


# One lock per mongomock client, so that storages sharing a client share its atomicity too.
_MOCK_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()


def _open_database(url: str) -> tuple[Database[Doc], Any]:
    """``mongodb://host/dbname`` (database ``machinery`` by default) or ``mongomock://[/dbname]``."""
    parsed = urlparse(url)
    if parsed.scheme == "mongomock":
        import mongomock  # type: ignore[import-untyped]

        client: Any = mongomock.MongoClient()
        name = parsed.path.strip("/") or "machinery"
        return client[name], client
    client = pymongo.MongoClient(url, tz_aware=True)
    return client.get_default_database(default="machinery"), client


class MongoStorage(MongoDefinitions, MongoAdmin, MongoResources, MongoRedrive, MongoTriggers, Storage):
    """Storage on a MongoDB database (or mongomock's in-memory imitation of one).

    :param database: a :class:`pymongo.database.Database`, or a ``mongodb://`` / ``mongomock://`` URL.
    :param recovery_seconds: how long an intent of ``create_execution``/``finish_execution`` may take
        to apply before another worker rolls it forward (commits use the consumed item's lease).
    :param tombstone_seconds: how long a consumed work item is kept as a tombstone.
    """

    blocking_io = True
    #: A group's commits are written one by one (each its own transaction): as many at once as before
    #: there were groups.
    _GROUP_WRITERS = 6

    def __init__(
        self,
        database: Database[Doc] | str,
        *,
        recovery_seconds: float = 30.0,
        tombstone_seconds: float = 86400.0,
    ) -> None:
        self._client: Any = None
        if isinstance(database, str):
            try:
                database, self._client = _open_database(database)
            except PyMongoError as exc:
                raise StorageError(f"cannot open MongoDB database: {exc}") from exc
        self.database = database
        self.recovery_seconds = recovery_seconds
        self.tombstone_seconds = tombstone_seconds
        self._owner = f"storage:{uuid.uuid4()}"
        mock = type(database).__module__.startswith("mongomock")
        lock = _MOCK_LOCKS.setdefault(database.client, threading.RLock()) if mock else None

        def collection(name: str) -> Collection[Doc]:
            found = database[name]
            if lock is not None:
                return cast("Collection[Doc]", _Serialized(found, lock))
            return found

        self._services = collection("services")
        self._workflows = collection("workflows")
        self._versions = collection("workflow_versions")
        self._executions = collection("executions")
        self._branches = collection("branches")
        self._joins = collection("joins")
        self._history = collection("history")
        self._work = collection("work")
        self._counters = collection("counters")
        self._tokens = collection("api_tokens")
        self._resources = collection("resources")

    @driver_errors
    def migrate(self) -> None:
        self._services.create_index("name", unique=True)
        self._workflows.create_index("name", unique=True)
        self._versions.create_index([("workflow_id", ASCENDING), ("version", ASCENDING)], unique=True)
        self._executions.create_index("seq", unique=True)
        self._executions.create_index([("workflow_id", ASCENDING), ("seq", DESCENDING)])
        self._executions.create_index([("status", ASCENDING), ("seq", DESCENDING)])
        self._executions.create_index([("parent_execution_id", ASCENDING), ("seq", DESCENDING)])
        self._branches.create_index([("join_id", ASCENDING), ("idx", ASCENDING)])
        self._branches.create_index("execution_id")
        self._history.create_index([("execution_id", ASCENDING), ("event_id", ASCENDING)], unique=True)
        self._work.create_index([("done", ASCENDING), ("due_at", ASCENDING)])
        self._work.create_index("execution_id")
        self._work.create_index("branch_id")
        self._work.create_index("owner")
        self._work.create_index("expires_at", expireAfterSeconds=0)
        self._migrate_admin()
        self._migrate_resources()

    def group_writers(self) -> int:
        return self._GROUP_WRITERS

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # plumbing ----------------------------------------------------------------------------------

    def _allocate(self, counter: str, count: int) -> int:
        """Reserve ``count`` consecutive numbers of a counter; the first one."""
        doc = self._counters.find_one_and_update(
            {"_id": counter}, {"$inc": {"value": count}}, upsert=True, return_document=_AFTER
        )
        assert doc is not None
        return int(doc["value"]) - count + 1

    def _tombstone(self) -> Doc:
        expires = datetime.now(UTC) + timedelta(seconds=self.tombstone_seconds)
        return {"done": True, "owner": None, "lease_until": None, "expires_at": expires}

    def _retire_work(self, query: Doc, keep: Sequence[int]) -> None:
        """Mark live work done, sparing the ids in ``keep`` and items that carry an intent."""
        self._work.update_many(
            {**query, "_id": {"$nin": list(keep)}, "done": False, "intent": None},
            {"$set": self._tombstone()},
        )

    def _put_work(self, work: Sequence[Sequence[Any]]) -> None:
        for work_id, item in work:
            doc = {**item, "owner": None, "lease_until": None, "fence": 0, "done": False}
            # DuplicateKeyError: another applier of the same intent inserted it concurrently.
            with contextlib.suppress(DuplicateKeyError):
                self._work.update_one({"_id": work_id}, {"$setOnInsert": doc}, upsert=True)

    def _put_branch(self, body: Doc, join_id: str | None, rev: int) -> None:
        # DuplicateKeyError: a newer revision is stored, or the branch was cancelled.
        with contextlib.suppress(DuplicateKeyError):
            self._branches.update_one(
                {"_id": body["branch_id"], "rev": {"$lt": rev}, "status": {"$ne": CANCELLED}},
                {
                    "$set": {
                        "execution_id": body["execution_id"],
                        "join_id": join_id,
                        "idx": body["index"],
                        "status": body["status"],
                        "rev": rev,
                        "body": dumps(body),
                    }
                },
                upsert=True,
            )

    def _put_history(self, execution_id: str, first: int, history: Sequence[Sequence[Any]]) -> None:
        for offset, (kind, details, timestamp) in enumerate(history):
            key = {"execution_id": execution_id, "event_id": first + offset}
            doc = {"type": kind, "timestamp": timestamp, "details": dumps(details)}
            # DuplicateKeyError: another applier of the same intent got there first.
            with contextlib.suppress(DuplicateKeyError):
                self._history.update_one(key, {"$setOnInsert": doc}, upsert=True)

    def _anchor(self, execution_id: str, branch_id: str, now: float, intent: str) -> int:
        """A synthetic work item carrying ``intent``, leased for ``recovery_seconds``."""
        anchor_id = self._allocate("work", 1)
        self._work.insert_one(
            {
                "_id": anchor_id,
                "execution_id": execution_id,
                "branch_id": branch_id,
                "kind": WORK_INTENT,
                "due_at": now,
                "payload": None,
                "owner": self._owner,
                "lease_until": now + self.recovery_seconds,
                "fence": 1,
                "done": False,
                "intent": intent,
            }
        )
        return anchor_id

    def _place_intent(
        self, consumed: WorkItem | None, execution_id: str, branch_id: str, now: float, text: str
    ) -> int:
        """Write ``text`` onto the consumed item under its fence (the commit point), or onto a fresh
        anchor when nothing is consumed; the id of the item that carries it.

        :raises LeaseLost: the consumed item is no longer this owner's.
        """
        if consumed is None:
            return self._anchor(execution_id, branch_id, now, text)
        fenced = self._work.find_one_and_update(
            {
                "_id": consumed.work_id,
                "fence": consumed.fence,
                "owner": consumed.owner,
                "done": False,
                "intent": None,
            },
            {"$set": {"intent": text}},
        )
        if fenced is None:
            raise LeaseLost("work item was claimed by another worker or cancelled", execution_id=execution_id)
        return consumed.work_id or 0

    def _run_intent(self, anchor_id: int, text: str) -> CommitResult:
        """Apply an intent (again) and retire its anchor.

        The first application reads the intent back from its JSON text, exactly as a roll-forward will.
        """
        intent = json.loads(text)
        appliers: dict[str, Callable[[int, Doc], CommitResult]] = {
            "commit": self._apply_commit,
            "create": self._apply_create,
            "store": self._apply_store,
            "finish": self._apply_finish,
            "start": self._apply_start,
        }
        try:
            result = appliers[intent["op"]](anchor_id, intent)
        except _AlreadyApplied:
            return CommitResult()
        self._work.update_one({"_id": anchor_id}, {"$set": self._tombstone(), "$unset": {"intent": ""}})
        return result

    def _event_ids(self, anchor_id: int, execution_id: str, count: int) -> int:
        """The first of ``count`` history ids for this intent, reserved once and recorded on its anchor."""
        anchor = self._work.find_one({"_id": anchor_id}, {"first_event_id": 1, "done": 1})
        if anchor is None or anchor["done"]:
            raise _AlreadyApplied
        if anchor.get("first_event_id") is not None:
            return int(anchor["first_event_id"])
        execution = self._executions.find_one_and_update(
            {"_id": execution_id},
            {"$inc": {"last_event_id": count}},
            {"last_event_id": 1},
            return_document=_AFTER,
        )
        if execution is None:
            raise _AlreadyApplied
        first = int(execution["last_event_id"]) - count + 1
        recorded = self._work.find_one_and_update(
            {"_id": anchor_id, "done": False, "first_event_id": None}, {"$set": {"first_event_id": first}}
        )
        if recorded is None:  # another applier recorded its reservation first: use that one
            return self._event_ids(anchor_id, execution_id, count)
        return first

    def _end_execution(
        self, execution_id: str, anchor_id: int, fields: Doc, keep: Sequence[int]
    ) -> Doc | None:
        """End a running execution on behalf of an intent; the execution when this intent ended it."""
        ended = self._executions.find_one_and_update(
            {"_id": execution_id, "status": ExecutionStatus.RUNNING},
            {"$set": {**fields, "finished_by": anchor_id}},
            return_document=_AFTER,
        )
        if ended is None:
            ended = self._executions.find_one({"_id": execution_id})
            if ended is None or ended.get("finished_by") != anchor_id:
                return None
        self._retire_work({"execution_id": execution_id, "kind": {"$ne": WORK_WEBHOOK}}, keep)
        return ended

    # executions --------------------------------------------------------------------------------

    def _new_execution(self, execution: ExecutionRecord) -> int:
        """Refuse a duplicate id up front (the apply step is an idempotent upsert); the new seq."""
        if self._executions.find_one({"_id": execution.execution_id}, {"_id": 1}) is not None:
            raise StorageError(f"execution {execution.execution_id} already exists")
        return self._allocate("executions", 1)

    def _insert_execution(self, doc: Doc) -> None:
        with contextlib.suppress(DuplicateKeyError):
            self._executions.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    @driver_errors
    def create_execution(self, execution: ExecutionRecord, root: Branch, work: Sequence[WorkItem]) -> None:
        seq = self._new_execution(execution)
        first = self._allocate("work", len(work)) if work else 0
        intent = {
            "op": "create",
            "execution": execution_doc(execution, seq, 0),
            "rev": self._allocate("revisions", 1),
            "root": root.to_json(),
            "work": [[first + offset, work_doc(item)] for offset, item in enumerate(work)],
        }
        text = dumps(intent)
        self._run_intent(
            self._anchor(execution.execution_id, root.branch_id, execution.started_at, text), text
        )

    def _apply_create(self, anchor_id: int, intent: Doc) -> CommitResult:
        self._insert_execution(intent["execution"])
        self._put_branch(intent["root"], None, intent["rev"])
        self._put_work(intent["work"])
        return CommitResult(new_work=len(intent["work"]))

    @driver_errors
    def store_finished_execution(self, execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> None:
        seq = self._new_execution(execution)
        now = execution.finished_at or execution.started_at
        intent = {
            "op": "store",
            "execution": execution_doc(execution, seq, len(history)),
            "history": [[event.type, event.details, event.timestamp] for event in history],
            "webhook": [[self._allocate("work", 1), webhook_doc(execution.execution_id, now)]]
            if execution.callback_url
            else [],
        }
        text = dumps(intent)
        self._run_intent(self._anchor(execution.execution_id, execution.execution_id, now, text), text)

    def _apply_store(self, anchor_id: int, intent: Doc) -> CommitResult:
        execution = intent["execution"]
        self._insert_execution(execution)
        self._put_history(execution["_id"], 1, intent["history"])
        self._put_work(intent["webhook"])
        return CommitResult(new_work=len(intent["webhook"]))

    @driver_errors
    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        doc = self._executions.find_one({"_id": execution_id})
        return None if doc is None else execution_record(doc)

    @driver_errors
    def list_executions(
        self,
        workflow_id: str | None,
        status: ExecutionStatus | None,
        limit: int,
        after: str | None,
        parent_id: str | None = None,
    ) -> list[ExecutionRecord]:
        # None also matches documents written before child executions existed (no such field).
        query: Doc = {"parent_execution_id": parent_id or None}
        if workflow_id:
            query["workflow_id"] = workflow_id
        if status:
            query["status"] = status
        if after:
            cursor = self._executions.find_one({"_id": after}, {"seq": 1})
            if cursor is None:
                return []
            query["seq"] = {"$lt": cursor["seq"]}
        docs = list(self._executions.find(query, sort=[("seq", DESCENDING)], limit=limit))
        return [execution_record(doc) for doc in docs]

    @driver_errors
    def count_executions(self) -> dict[str, dict[str, int]]:
        groups = self._executions.aggregate(
            [
                {"$match": {"parent_execution_id": None}},
                {"$group": {"_id": {"w": "$workflow_id", "s": "$status"}, "n": {"$sum": 1}}},
            ]
        )
        counts: dict[str, dict[str, int]] = {}
        for group in groups:
            counts.setdefault(group["_id"]["w"], {})[group["_id"]["s"]] = int(group["n"])
        return counts

    @driver_errors
    def get_history(
        self, execution_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[StoredEvent]:
        selector: dict[str, Any] = {"execution_id": execution_id}
        if after is not None:
            selector["event_id"] = {"$lt" if reverse else "$gt": after}
        order = DESCENDING if reverse else ASCENDING
        docs = list(self._history.find(selector, sort=[("event_id", order)], limit=limit or 0))
        return [
            StoredEvent(doc["event_id"], doc["type"], doc["timestamp"], loads(doc["details"])) for doc in docs
        ]

    @driver_errors
    def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        now: float,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        current = self._executions.find_one({"_id": execution_id}, {"status": 1})
        if current is None or current["status"] != ExecutionStatus.RUNNING:
            return False
        intent = {
            "op": "finish",
            "execution_id": execution_id,
            "now": now,
            "status": status,
            "error": error,
            "cause": cause,
            "webhook_id": self._allocate("work", 1),
        }
        text = dumps(intent)
        return self._run_intent(self._anchor(execution_id, execution_id, now, text), text).execution_finished

    def _apply_finish(self, anchor_id: int, intent: Doc) -> CommitResult:
        execution_id, now, error = intent["execution_id"], intent["now"], intent["error"]
        fields = {"status": intent["status"], "output": None, "error": error, "cause": intent["cause"]}
        ended = self._end_execution(
            execution_id, anchor_id, {**fields, "finished_at": now}, [anchor_id, intent["webhook_id"]]
        )
        if ended is None:
            return CommitResult()
        self._branches.update_many(
            {"execution_id": execution_id, "status": ACTIVE}, {"$set": {"status": CANCELLED}}
        )
        kind = ExecutionStatus(intent["status"]).end_event_type
        details = {"error": error, "cause": intent["cause"]} if error else {}
        self._put_history(execution_id, self._event_ids(anchor_id, execution_id, 1), [[kind, details, now]])
        webhook = [[intent["webhook_id"], webhook_doc(execution_id, now)]] if ended["callback_url"] else []
        self._put_work(webhook)
        self._abort_children(execution_id, now)
        return CommitResult(execution_finished=True, new_work=len(webhook))

    def _abort_children(self, execution_id: str, now: float) -> None:
        """Abort the running child executions of an execution that ended (each with its own intent)."""
        for child in self._executions.find(
            {"parent_execution_id": execution_id, "status": ExecutionStatus.RUNNING}, {"_id": 1}
        ):
            self.finish_execution(child["_id"], ExecutionStatus.ABORTED, now)

    # branches and work ---------------------------------------------------------------------------

    @driver_errors
    def get_branch(self, branch_id: str) -> Branch | None:
        doc = self._branches.find_one({"_id": branch_id})
        return None if doc is None else branch_from_doc(doc)

    @driver_errors
    def child_results(self, join_id: str) -> list[Branch]:
        docs = list(self._branches.find({"join_id": join_id}, sort=[("idx", ASCENDING)]))
        return [branch_from_doc(doc) for doc in docs]

    @driver_errors
    def add_work(self, work: Sequence[WorkItem]) -> None:
        if work:
            first = self._allocate("work", len(work))
            self._put_work([(first + offset, work_doc(item)) for offset, item in enumerate(work)])

    @driver_errors
    def claim_work(self, owner: str, now: float, limit: int, lease_seconds: float) -> list[WorkItem]:
        claimed: list[WorkItem] = []
        while len(claimed) < limit:
            doc = self._work.find_one_and_update(
                {
                    "done": False,
                    "due_at": {"$lte": now},
                    "$or": [{"owner": None}, {"lease_until": {"$lt": now}}],
                },
                {"$set": {"owner": owner, "lease_until": now + lease_seconds}, "$inc": {"fence": 1}},
                sort=[("due_at", ASCENDING), ("_id", ASCENDING)],
                return_document=_AFTER,
            )
            if doc is None:
                break
            if doc.get("intent") is not None:
                # Its writer died (or stalled past its lease) after the commit point: finish its work.
                # A failure leaves it leased to ``owner``, to be tried again when that lease ends.
                try:
                    self._run_intent(doc["_id"], doc["intent"])
                except (PyMongoError, StorageError):
                    logger.exception(
                        "rolling forward work item %s failed",
                        doc["_id"],
                        extra={"execution_id": doc["execution_id"]},
                    )
                continue
            claimed.append(work_item(doc))
        return claimed

    @driver_errors
    def renew_leases(self, owner: str, work_ids: Sequence[int], until: float) -> None:
        if work_ids:
            self._work.update_many(
                {"_id": {"$in": list(work_ids)}, "owner": owner, "done": False},
                {"$set": {"lease_until": until}},
            )

    @driver_errors
    def release_leases(self, owner: str | None = None) -> int:
        query = {"done": False, "owner": {"$ne": None} if owner is None else owner}
        result = self._work.update_many(query, {"$set": {"owner": None, "lease_until": None}})
        return int(result.modified_count)

    @driver_errors
    def next_due(self) -> float | None:
        doc = self._work.find_one({"done": False, "owner": None}, {"due_at": 1}, sort=[("due_at", ASCENDING)])
        return None if doc is None else float(doc["due_at"])

    @driver_errors
    def count_work(self, now: float) -> WorkCounts:
        free: Doc = {"$or": [{"owner": None}, {"lease_until": {"$lt": now}}]}
        return WorkCounts(
            due=self._work.count_documents({"done": False, "due_at": {"$lte": now}, **free}),
            scheduled=self._work.count_documents({"done": False, "due_at": {"$gt": now}, **free}),
            claimed=self._work.count_documents(
                {"done": False, "owner": {"$ne": None}, "lease_until": {"$gte": now}}
            ),
        )

    @driver_errors
    def count_running(self) -> dict[str, int]:
        grouped = self._executions.aggregate(
            [
                {"$match": {"status": ExecutionStatus.RUNNING.value}},
                {"$group": {"_id": "$workflow_name", "n": {"$sum": 1}}},
            ]
        )
        return {str(doc["_id"]): int(doc["n"]) for doc in grouped}

    @driver_errors
    def complete_work(
        self,
        item: WorkItem,
        reschedule_at: float | None = None,
        payload: Any = None,
        history: Sequence[HistoryEvent] = (),
    ) -> None:
        fenced = {
            "_id": item.work_id,
            "fence": item.fence,
            "owner": item.owner,
            "done": False,
            "intent": None,
        }
        if history and self._work.find_one(fenced, {"_id": 1}) is not None:
            # Not atomic with the update below: written first, so that a crash in between repeats an
            # event (the item runs again) rather than loses it.
            execution = self._executions.find_one_and_update(
                {"_id": item.execution_id},
                {"$inc": {"last_event_id": len(history)}},
                {"last_event_id": 1},
                return_document=_AFTER,
            )
            if execution is not None:
                first = int(execution["last_event_id"]) - len(history) + 1
                events = [[event.type, event.details, event.timestamp] for event in history]
                self._put_history(item.execution_id, first, events)
        if reschedule_at is None:
            self._work.update_one(fenced, {"$set": self._tombstone()})
        else:
            changes: Doc = {"due_at": reschedule_at, "owner": None, "lease_until": None}
            if payload is not None:
                changes["payload"] = dumps(payload)
            self._work.update_one(fenced, {"$set": changes})

    @driver_errors
    def extend_heartbeat(self, execution_id: str, branch_id: str, token: str, due: float) -> bool:
        # Payloads are stored as JSON text (key order survives), so the match on them is made here.
        live = {"execution_id": execution_id, "branch_id": branch_id, "kind": WORK_TOKEN, "done": False}
        for doc in self._work.find({**live, "owner": None}, {"payload": 1}):
            payload = loads(doc.get("payload")) or {}
            if payload.get("error") == HEARTBEAT_TIMEOUT and payload.get("token") == token:
                moved = self._work.update_one(
                    {"_id": doc["_id"], "owner": None, "done": False}, {"$set": {"due_at": due}}
                )
                return bool(moved.modified_count)
        return False

    @driver_errors
    def commit(self, commit: Commit, now: float) -> CommitResult:
        branch = commit.branch
        join_id = join_of(branch)
        join = commit.join
        started = 0 if join is None else join.initially_started
        accounts = branch.status != ACTIVE and join_id is not None
        # Every id this transition may write is fixed before the commit point, so that applying it
        # again writes the same documents.
        needed = len(commit.work) + started + (2 if accounts else 0) + 1
        first = self._allocate("work", needed)
        executions = commit.child_executions
        first_seq = self._allocate("executions", len(executions)) if executions else 0
        ids = iter(range(first, first + needed))
        intent: Doc = {
            "op": "commit",
            "execution_id": commit.execution_id,
            "now": now,
            "rev": self._allocate("revisions", 1),
            "branch": branch.to_json(),
            "join_id": join_id,
            "history": [[event.type, event.details, event.timestamp] for event in commit.history],
            "work": [[next(ids), work_doc(item)] for item in commit.work],
            "join": None if join is None else join_doc(join, commit.execution_id, started),
            "children": [child.to_json() for child in commit.children],
            "executions": [
                execution_doc(record, first_seq + offset, 0) for offset, record in enumerate(executions)
            ],
            "starts": [[next(ids), start_doc(child, now)] for child in commit.children[:started]],
            "account_ids": [next(ids), next(ids)] if accounts else None,
            "webhook_id": next(ids),
            "update": commit.execution_update,
        }
        text = dumps(intent)
        anchor_id = self._place_intent(commit.consumed, commit.execution_id, branch.branch_id, now, text)
        return self._run_intent(anchor_id, text)

    def _apply_commit(self, anchor_id: int, intent: Doc) -> CommitResult:
        execution_id, now, rev = intent["execution_id"], intent["now"], intent["rev"]
        branch = intent["branch"]
        # Ids this intent writes: spared by the clean-ups below, which may run again on a retry.
        keep = [anchor_id, intent["webhook_id"], *(wid for wid, _ in intent["work"] + intent["starts"])]
        if intent["account_ids"]:
            keep.extend(intent["account_ids"])
        self._put_branch(branch, intent["join_id"], rev)
        history = intent["history"]
        if history:
            self._put_history(execution_id, self._event_ids(anchor_id, execution_id, len(history)), history)
        work: list[tuple[int, Doc]] = list(intent["work"])
        for execution in intent.get("executions") or []:
            self._insert_execution(execution)
        join = intent["join"]
        if join is not None:
            self._joins.update_one({"_id": join["_id"]}, {"$setOnInsert": join}, upsert=True)
            for child in intent["children"]:
                self._put_branch(child, join["_id"], rev)
            work.extend((wid, item) for wid, item in intent["starts"])
        if intent["account_ids"]:
            work.extend(self._account_child(branch, intent["join_id"], now, intent["account_ids"], keep))
        finished = False
        update = intent["update"]
        if update is not None:
            fields = {
                "status": update["status"],
                "output": None if update.get("output") is None else dumps(update["output"]),
                "error": update.get("error"),
                "cause": update.get("cause"),
                "finished_at": now,
            }
            ended = self._end_execution(execution_id, anchor_id, fields, keep)
            finished = ended is not None
            if ended is not None and ended["callback_url"]:
                work.append((intent["webhook_id"], webhook_doc(execution_id, now)))
        self._put_work(work)
        if finished:
            self._abort_children(execution_id, now)
        return CommitResult(execution_finished=finished, new_work=len(work))

    def _account_child(
        self, child: Doc, join_id: str, now: float, ids: Sequence[int], keep: Sequence[int]
    ) -> list[tuple[int, Doc]]:
        """Count a finished child into its join exactly once; the work its decision creates."""
        succeeded = child["status"] == SUCCEEDED
        index = child["index"]
        outcome = "succeeded" if succeeded else "failed"
        doc = self._joins.find_one_and_update(
            {"_id": join_id, "counted.i": {"$ne": index}},
            {"$push": {"counted": {"i": index, "ok": succeeded}}, "$inc": {outcome: 1}},
            return_document=_AFTER,
        )
        if doc is not None:
            after_succeeded, after_failed = doc["succeeded"], doc["failed"]
        else:
            doc = self._joins.find_one({"_id": join_id})
            if doc is None:
                return []
            # Counted by an earlier attempt at this intent: the counters as that count left them.
            order = [entry["i"] for entry in doc["counted"]]
            if index not in order:
                return []
            counted = doc["counted"][: order.index(index) + 1]
            after_succeeded = sum(1 for entry in counted if entry["ok"])
            after_failed = len(counted) - after_succeeded
        spec = join_spec(doc)
        decision = join_decision(
            spec,
            doc["initially_started"],
            after_succeeded,
            after_failed,
            succeeded,
            child["error"],
            child["cause"],
        )
        work: list[tuple[int, Doc]] = []
        # The join's work goes to its own (the parent's) execution; a queued child that is a child
        # execution starts in that execution.
        execution_id = doc["execution_id"]
        for start in decision.start_indexes:
            self._joins.update_one({"_id": join_id}, {"$max": {"started": start + 1}})
            queued = f"{join_id}/{start}"
            found = self._branches.find_one({"_id": queued}, {"execution_id": 1})
            queued_execution = found["execution_id"] if found else child["execution_id"]
            work.append((ids[0], work_doc(WorkItem(queued_execution, queued, WORK_START, now))))
        if decision.close:
            self._joins.update_one({"_id": join_id}, {"$set": {"closed": True}})
            payload: Doc = {"join_id": join_id}
            if decision.error is not None:
                payload.update(error=decision.error, cause=decision.cause)
                running = self._branches.distinct(
                    "execution_id",
                    {"join_id": join_id, "status": ACTIVE, "execution_id": {"$ne": execution_id}},
                )
                for running_id in sorted(running):
                    self.finish_execution(running_id, ExecutionStatus.ABORTED, now)
                siblings = self._branches.distinct("_id", {"join_id": join_id})
                self._retire_work({"branch_id": {"$in": siblings}}, keep)
                self._branches.update_many(
                    {"join_id": join_id, "status": ACTIVE}, {"$set": {"status": CANCELLED}}
                )
            item = WorkItem(execution_id, spec.parent_id, WORK_CHILDREN, now, payload)
            work.append((ids[1], work_doc(item)))
        return work
