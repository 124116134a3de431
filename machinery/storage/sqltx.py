"""The SQL backends' transaction: the statements one write runs, and how a transition is applied.

:class:`SqlTransaction` wraps one dialect's connection inside one transaction (run by
:meth:`machinery.storage.sqlcommon.SqlStorage._run`) with the writers every storage operation shares;
:func:`apply_commit` writes one :class:`~machinery.storage.base.Commit`, :func:`end_execution` ends an
execution from outside and :func:`account_child` counts a finished child into its join.
"""

# The dialect hooks (``_doc``, ``_flag``, ``_work_added``...) are private to the SQL backends; the
# transaction and the commit functions of this module are the storage's own code.
# pylint: disable=protected-access

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from machinery.engine.types import ACTIVE, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost, StorageError
from machinery.jsontext import dumps_compact
from machinery.jsontext import loads as json_loads
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
    WorkItem,
    decide_join,
)

if TYPE_CHECKING:
    from machinery.storage.sqlcommon import SqlStorage

#: ``(owner, lease_until, now)``: insert the work due by ``now`` already claimed by ``owner``.
Claim = tuple[str, float, float]


class Rows(Protocol):
    """What a dialect's ``execute`` returns (a DB-API cursor)."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Any: ...


class Connection(Protocol):
    """The part of a DB-API connection or cursor a transaction uses (``sqlite3.Connection``, a psycopg
    ``Cursor``)."""

    def execute(self, query: str, params: Any = ...) -> Any: ...

    def executemany(self, query: str, params_seq: Any) -> Any: ...


def dumps(value: Any) -> str:
    """How both dialects write documents: compact JSON with non-ASCII kept, by orjson (what it cannot
    encode, such as integers beyond 64 bits or keys that are not strings, goes to :mod:`json`). JSON has
    no NaN: orjson writes a NaN or an infinity (which a service's reply may hold) as ``null``."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return dumps_compact(value)


def loads(text: str | bytes) -> Any:
    """A stored document, read as :mod:`json` reads it (by orjson where that gives the same: integers
    beyond 64 bits and ``NaN`` go to :mod:`json`)."""
    return json_loads(text)


def join_of(branch: Branch) -> str | None:
    """Child branch ids are ``<join id>/<index>``; the root branch has none."""
    if branch.parent_id is None:
        return None
    return branch.branch_id.rsplit("/", 1)[0]


def claimed_item(item: WorkItem, work_id: int, owner: str) -> WorkItem:
    """``item`` as inserted claimed by ``owner`` (fence 1). Built, not ``dataclasses.replace``'d:
    replace costs several times more, once per step."""
    return WorkItem(
        item.execution_id,
        item.branch_id,
        item.kind,
        item.due_at,
        item.payload,
        work_id=work_id,
        owner=owner,
        fence=1,
    )


def commit_claim(commit: Commit, now: float) -> Claim | None:
    """How the commit's new work due by ``now`` is inserted claimed (``Commit.claim_owner``), if at all."""
    return None if commit.claim_owner is None else (commit.claim_owner, commit.lease_until, now)


def lease_lost(commit: Commit) -> LeaseLost:
    """The error of a commit whose work item is no longer its own."""
    return LeaseLost("work item was claimed by another worker or cancelled", execution_id=commit.execution_id)


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


class SqlTransaction:
    """One open transaction (or, for reads, one autocommit connection) of a :class:`SqlStorage`: named
    statements and the row writers that :func:`apply_commit` and :func:`end_execution` are built from."""

    def __init__(self, storage: SqlStorage, db: Connection) -> None:
        self.storage = storage
        self.db = db
        self._queries = storage.queries
        #: The due times of the unclaimed work inserted so far (the dialect's ``_run`` hands them to
        #: ``_work_added`` once, before the commit: one wake-up per transaction).
        self.added: list[float] = []

    def execute(self, query: str, params: Mapping[str, Any] | None = None) -> Rows:
        """Run a named query of the dialect's ``queries.sql``."""
        result: Rows = self.db.execute(self._queries[query], params or {})
        return result

    def executemany(self, query: str, params_seq: Sequence[Mapping[str, Any]]) -> None:
        if params_seq:
            self.db.executemany(self._queries[query], params_seq)

    def json(self, value: Any) -> Any:
        """A user document as the dialect stores it (``None`` stays SQL NULL)."""
        return None if value is None else self.storage._doc(value)

    # writers -------------------------------------------------------------------------------------

    @staticmethod
    def consume_params(item: WorkItem) -> dict[str, Any]:
        """A claimed item as ``work_consume`` matches it: its id, fence and owner."""
        return {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}

    def consume(self, item: WorkItem) -> bool:
        """Delete a claimed work item if its fence and owner still match."""
        return self.execute("work_consume", self.consume_params(item)).rowcount > 0

    def branch_params(self, branch: Branch, join_id: str | None) -> dict[str, Any]:
        """A branch's row as ``branch_upsert`` takes it."""
        return {
            "branch_id": branch.branch_id,
            "execution_id": branch.execution_id,
            "join_id": join_id,
            "idx": branch.index,
            "status": branch.status,
            "body": self.storage._doc(branch.to_json()),
        }

    def put_branches(self, branches: Sequence[Branch], join_id: str | None) -> None:
        """Insert or update branches (children of ``join_id``, if any)."""
        if len(branches) == 1:
            self.execute("branch_upsert", self.branch_params(branches[0], join_id))
        else:
            self.executemany("branch_upsert", [self.branch_params(branch, join_id) for branch in branches])

    def append_history(self, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        """Append events after the execution's last one (the dialect's :meth:`SqlStorage._append_history`)."""
        if history:
            self.storage._append_history(self, execution_id, history)

    def reserve_and_insert_history(self, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        """Two statements: the events' ids reserved on the execution's row, then the events inserted."""
        row = self.execute(
            "execution_reserve_events", {"execution_id": execution_id, "count": len(history)}
        ).fetchone()
        if row is None:
            raise StorageError(f"execution {execution_id} does not exist", execution_id=execution_id)
        first = row["last_event_id"] - len(history) + 1
        doc = self.storage._doc
        self.executemany(
            "history_insert",
            [
                {
                    "execution_id": execution_id,
                    "event_id": first + offset,
                    "type": event.type,
                    "timestamp": event.timestamp,
                    "details": doc(event.details),
                }
                for offset, event in enumerate(history)
            ],
        )

    def execution_params(self, record: ExecutionRecord) -> dict[str, Any]:
        """An execution's row as ``execution_insert`` takes it."""
        return {
            "execution_id": record.execution_id,
            "workflow_id": record.workflow_id,
            "workflow_name": record.workflow_name,
            "workflow_version": record.workflow_version,
            "name": record.name,
            "status": record.status,
            "input": self.storage._doc(record.input),
            "output": self.json(record.output),
            "error": record.error,
            "cause": record.cause,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "callback_url": record.callback_url,
            "express": self.storage._flag(record.express),
            "parent_execution_id": record.parent_execution_id,
        }

    def insert_execution(self, record: ExecutionRecord, query: str = "execution_insert") -> bool:
        """Insert an execution row; ``query="execution_insert_new"`` skips an id that exists (then False)."""
        return self.execute(query, self.execution_params(record)).rowcount != 0

    def work_params(self, item: WorkItem) -> dict[str, Any]:
        """A work item's row as ``work_insert`` takes it."""
        return {
            "execution_id": item.execution_id,
            "branch_id": item.branch_id,
            "kind": item.kind,
            "due_at": item.due_at,
            "payload": self.json(item.payload),
        }

    def insert_work(self, work: Sequence[WorkItem], claim: Claim | None = None) -> list[WorkItem]:
        """Insert work; with ``claim = (owner, lease_until, now)`` the items due by ``now`` are inserted
        claimed by ``owner`` and returned (nobody else needs waking for them)."""
        claimed: list[WorkItem] = []
        unclaimed: list[dict[str, Any]] = []
        for item in work:
            params = self.work_params(item)
            if claim is not None and item.due_at <= claim[2]:
                owner, lease_until, _now = claim
                row = self.execute(
                    "work_insert_claimed", {**params, "owner": owner, "lease_until": lease_until}
                ).fetchone()
                claimed.append(claimed_item(item, row["work_id"], owner))
            else:
                unclaimed.append(params)
        if unclaimed:
            self.executemany("work_insert", unclaimed)
            self.added.extend(params["due_at"] for params in unclaimed)
        return claimed

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


# transitions -----------------------------------------------------------------------------------------


def account_child(tx: SqlTransaction, child: Branch, join_id: str, now: float) -> list[WorkItem]:
    """Count a finished child into its join; the work that follows (queued children, the parent's
    resumption) and, when the join failed, its running siblings cancelled."""
    row = tx.execute(tx.storage.join_query, {"join_id": join_id}).fetchone()
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
            "closed": tx.storage._flag(join.closed),
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


def apply_commit(tx: SqlTransaction, commit: Commit, now: float) -> CommitResult:
    """Write one transition (see :class:`machinery.storage.base.Commit`) in ``tx``."""
    done = tx.storage._apply_step(tx, commit, now)
    if done is not None:
        return done
    if commit.history:
        # First: on PostgreSQL, reserving the events' ids locks the execution's row (_before_commit).
        tx.append_history(commit.execution_id, commit.history)
    else:
        tx.storage._before_commit(tx, commit)
    consumed = commit.consumed
    if consumed is not None and not tx.consume(consumed):
        raise lease_lost(commit)
    branch = commit.branch
    join_id = join_of(branch)
    tx.put_branches([branch], join_id)
    work = list(commit.work)
    for record in commit.child_executions:
        tx.insert_execution(record)
    if commit.join is not None:
        spec = commit.join
        started = spec.initially_started
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
    claimed = tx.insert_work(work, commit_claim(commit, now))
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


# the storage -----------------------------------------------------------------------------------------
