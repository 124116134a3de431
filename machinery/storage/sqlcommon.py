"""The SQL backends' common base: every :class:`~machinery.storage.base.Storage` method written once.

:class:`SqlStorage` holds the row codecs and the statements (by name: each dialect's ``queries.sql``
defines the same names); how a transition is applied, how an execution is ended from outside and how a
finished child is counted into its join are :mod:`machinery.storage.sqltx`'s, on its transaction. A
dialect (:mod:`machinery.storage.sqlite`, :mod:`machinery.storage.postgres`) overrides only small
hooks: how a transaction runs (:meth:`SqlStorage._run`), how a document is encoded in and decoded
from a column, how migrations are applied, and the few places where PostgreSQL must lock or notify
(DBOS's ``SystemDatabase`` with its SQLite and PostgreSQL subclasses is the model).
"""

# The dialect hooks (``_doc``, ``_flag``, ``_work_added``...) are private to the SQL backends; the
# transaction and the commit functions of this module are the storage's own code.
# pylint: disable=protected-access

from __future__ import annotations

import abc
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from machinery.engine.types import Branch, HistoryEvent
from machinery.errors import MachineryError, StorageError
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    HEARTBEAT_TIMEOUT,
    ClaimedStart,
    Commit,
    CommitResult,
    ExecutionRecord,
    JoinState,
    NewExecution,
    RedrivePlan,
    ServiceRecord,
    Storage,
    StoredEvent,
    WorkCounts,
    WorkflowRecord,
    WorkItem,
    history_page_query,
    new_id,
)
from machinery.storage.queries import load_queries
from machinery.storage.sqltriggers import SqlTriggers
from machinery.storage.sqltx import (
    Claim,
    SqlTransaction,
    apply_commit,
    end_execution,
    join_state,
    webhook_item,
)

_T = TypeVar("_T")

#: Most entries a definitions cache holds before it starts again.
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class _Part:
    """One part of a group transaction: what it writes, and for which execution."""

    execution_id: str
    apply: Callable[[SqlTransaction], Any]


def _commit_parts(commits: Sequence[tuple[Commit, float]]) -> list[_Part]:
    return [
        _Part(commit.execution_id, functools.partial(apply_commit, commit=commit, now=now))
        for commit, now in commits
    ]


def _commit_order(commits: Sequence[tuple[Commit, float]]) -> list[int]:
    """A stable order of executions: PostgreSQL locks each execution's row first, so two workers' groups
    take the locks they share in the same order."""
    return sorted(range(len(commits)), key=lambda index: commits[index][0].execution_id)


def _creating(start: ClaimedStart) -> _Part:
    """A new execution with its first work claimed (what ``create_execution_claimed`` writes)."""
    new = start.new
    claim = (start.owner, start.lease_until, new.record.started_at)

    def apply(tx: SqlTransaction) -> list[WorkItem]:
        return tx.storage._insert_new(tx, new, claim)

    return _Part(new.record.execution_id, apply)


def _storing(execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> _Part:
    """An express execution in its final state, with its history (and its webhook's delivery)."""

    def apply(tx: SqlTransaction) -> None:
        tx.storage._insert_finished(tx, execution, history)
        if execution.callback_url:
            tx.insert_work([webhook_item(execution.execution_id, execution.finished_at or 0.0)])

    return _Part(execution.execution_id, apply)


class _GroupFailed(Exception):
    """A commit of a group written at once failed: the transaction is rolled back, to be written again."""


class SqlStorage(SqlTriggers, Storage):
    """Every storage operation over named statements; subclasses supply the dialect's hooks."""

    #: The folder under ``storage/sql/`` holding the dialect's ``queries.sql`` and ``migrations/``.
    dialect: ClassVar[str]
    #: The query that reads a join row while a child is counted into it (PostgreSQL also locks it).
    join_query: ClassVar[str] = "join_get"

    def __init__(self) -> None:
        self.queries = load_queries(self.dialect)
        # Services and workflows change rarely and are read on every event and task call: they are
        # cached, and the cache is dropped when this process changes one (at once) or another process
        # does (the definitions generation has moved, see _cache_epoch). ``_epoch`` counts the drops,
        # so that a read that raced with one does not put what it read back into the cache.
        self._cache_lock = threading.Lock()
        self._epoch = 0
        self._seen_generation: int | None = None
        self._services: dict[str, ServiceRecord | None] = {}
        self._workflows: dict[tuple[str, int | None], WorkflowRecord | None] = {}
        # Whether any API token exists (every request of an open server asks): one entry, kept with the
        # definitions, whose generation a token's creation or revocation moves.
        self._token_presence: dict[str, bool] = {}

    # dialect hooks -------------------------------------------------------------------------------

    @abc.abstractmethod
    def _run(self, body: Callable[[SqlTransaction], _T], write: bool = True) -> _T:
        """Run ``body`` in one write transaction and commit it; ``write=False``: a read (no transaction
        needed; each statement sees committed data)."""

    @abc.abstractmethod
    def _doc(self, value: Any) -> Any:
        """A document (user data, branch state) as the dialect's column takes it."""

    def _meta_doc(self, value: Any) -> Any:
        """A document of machinery's own that queries look into (PostgreSQL: JSONB)."""
        return self._doc(value)

    @abc.abstractmethod
    def _from_doc(self, column: Any) -> Any:
        """The document a column holds."""

    def _flag(self, value: bool) -> object:
        """A boolean as the dialect's column takes it."""
        return value

    @abc.abstractmethod
    def _placeholder(self, name: str) -> str:
        """The dialect's named parameter (``:name``, ``%(name)s``), for the one query built from clauses."""

    @abc.abstractmethod
    def _id_list(self, ids: Sequence[int | str]) -> object:
        """A list of ids as one parameter (``work_renew``, the purges)."""

    def _no_limit(self, limit: int | None) -> int | None:
        """A ``LIMIT`` parameter: ``None`` means all rows (PostgreSQL's ``LIMIT NULL``; SQLite: ``-1``)."""
        return limit

    def _work_added(self, tx: SqlTransaction, due: Sequence[float]) -> None:
        """Unclaimed work was inserted in ``tx`` (``tx.added``): PostgreSQL's :meth:`_run` calls it
        once, before the commit, and notifies listening workers (SQLite has nobody to tell)."""

    def _before_commit(self, tx: SqlTransaction, commit: Commit) -> None:
        """Called first in a transition's transaction that has no history (PostgreSQL locks the
        execution's row; one with history appends it first, which locks the row too)."""

    def _insert_new(self, tx: SqlTransaction, new: NewExecution, claim: Claim) -> list[WorkItem]:
        """A new execution's row, root branch and first work, claimed as ``claim`` says (PostgreSQL: in
        one statement); the work claimed."""
        tx.insert_execution(new.record)
        tx.put_branches([new.root], None)
        return tx.insert_work(new.work, claim)

    def _insert_finished(
        self, tx: SqlTransaction, execution: ExecutionRecord, history: Sequence[HistoryEvent]
    ) -> None:
        """An express execution's final row and its history (PostgreSQL: in one statement)."""
        tx.insert_execution(execution)
        tx.append_history(execution.execution_id, history)

    def _apply_step(self, tx: SqlTransaction, commit: Commit, now: float) -> CommitResult | None:
        """Write ``commit`` the dialect's own way when it can (PostgreSQL: a plain step in one statement),
        else ``None``: :func:`~machinery.storage.sqltx.apply_commit` writes it part by part."""
        return None

    def _append_history(self, tx: SqlTransaction, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        """Append events (at least one) to an execution's history; a :class:`StorageError` when it does
        not exist."""
        tx.reserve_and_insert_history(execution_id, history)

    def _read(self, query: str, **params: Any) -> list[Any]:
        return self._run(lambda tx: tx.execute(query, params).fetchall(), write=False)

    def _generation_now(self) -> int | None:
        """The definitions generation as it stands (reads its row), or ``None`` when it is known not to
        have moved since the last look (SQLite first asks whether anyone else committed at all)."""
        value: int = self._read("generation_get")[0]["value"]
        return value

    # the definitions cache -------------------------------------------------------------------------

    def _cache_epoch(self) -> int:
        """The cache's epoch after dropping it if another process changed a definition. The comparison
        and the drop happen under one lock: no lookup uses the cache between a move being seen and the
        cache being dropped. (Reads that raced may compare an older value: one drop too many.)"""
        value = self._generation_now()
        with self._cache_lock:
            if value is not None and value != self._seen_generation:
                self._seen_generation = value
                self._drop_definitions_locked()
            return self._epoch

    def _drop_definitions_locked(self) -> None:
        self._epoch += 1
        self._services.clear()
        self._workflows.clear()
        self._token_presence.clear()

    def _definitions_changed(self, tx: SqlTransaction) -> None:
        """In a transaction that changes a service or a workflow: move the generation for the others."""
        tx.execute("generation_bump")

    def _changed_definitions(self) -> None:
        with self._cache_lock:
            self._drop_definitions_locked()

    def _changing_definitions(self, body: Callable[[SqlTransaction], _T]) -> _T:
        """Run ``body`` in a write transaction that moves the definitions generation, then drop this
        process's cache (also when it failed: what it read may be gone)."""

        def run(tx: SqlTransaction) -> _T:
            self._definitions_changed(tx)
            return body(tx)

        try:
            return self._run(run)
        finally:
            self._changed_definitions()

    def _cached(self, cache: dict[Any, Any], key: Any, load: Callable[[], Any]) -> Any:
        epoch = self._cache_epoch()
        with self._cache_lock:
            if key in cache:
                return cache[key]
        value = load()
        with self._cache_lock:
            if self._epoch == epoch:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()  # lookups of names that do not exist must not grow it without bound
                cache[key] = value
        return value

    # rows ----------------------------------------------------------------------------------------

    def _service(self, row: Mapping[str, Any]) -> ServiceRecord:
        body = self._from_doc(row["body"])
        return ServiceRecord(
            service_id=row["service_id"],
            name=row["name"],
            address=body["address"],
            inputs=body["inputs"],
            outputs=body["outputs"],
            settings=body["settings"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _workflow(self, row: Mapping[str, Any]) -> WorkflowRecord:
        """A row with the workflow's ``workflow_id``, ``name``, ``updated_at`` and one version's
        ``version``, ``spec``, ``definition``, ``services``, ``express`` and ``created_at``."""
        return WorkflowRecord(
            workflow_id=row["workflow_id"],
            name=row["name"],
            version=row["version"],
            spec=self._from_doc(row["spec"]),
            definition=self._from_doc(row["definition"]),
            services=self._from_doc(row["services"]),
            express=bool(row["express"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _execution(self, row: Mapping[str, Any]) -> ExecutionRecord:
        output = row["output"]
        return ExecutionRecord(
            execution_id=row["execution_id"],
            workflow_id=row["workflow_id"],
            workflow_name=row["workflow_name"],
            workflow_version=row["workflow_version"],
            name=row["name"],
            status=ExecutionStatus(row["status"]),
            input=self._from_doc(row["input"]),
            output=None if output is None else self._from_doc(output),
            error=row["error"],
            cause=row["cause"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            callback_url=row["callback_url"],
            express=bool(row["express"]),
            parent_execution_id=row["parent_execution_id"],
            redrive_count=row["redrive_count"],
            redrive_date=row["redrive_date"],
        )

    def _branch(self, row: Mapping[str, Any]) -> Branch:
        # Cancelling updates only the status column (one UPDATE for a whole join or execution): it wins.
        branch = Branch.from_json(self._from_doc(row["body"]))
        branch.status = row["status"]
        return branch

    def _work_item(self, row: Mapping[str, Any]) -> WorkItem:
        payload = row["payload"]
        return WorkItem(
            execution_id=row["execution_id"],
            branch_id=row["branch_id"],
            kind=row["kind"],
            due_at=row["due_at"],
            payload=None if payload is None else self._from_doc(payload),
            work_id=row["work_id"],
            owner=row["owner"],
            fence=row["fence"],
        )

    # services ------------------------------------------------------------------------------------

    def upsert_service(
        self,
        name: str,
        address: str,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        settings: dict[str, Any],
        now: float,
        ref: str | None = None,
    ) -> tuple[ServiceRecord, bool]:
        body = self._meta_doc(
            {"address": address, "inputs": inputs, "outputs": outputs, "settings": settings}
        )

        def upsert(tx: SqlTransaction) -> tuple[ServiceRecord, bool]:
            row = tx.execute("service_by_ref", {"ref": ref or name}).fetchone()
            if row is None:
                params = {"service_id": new_id(), "name": name, "body": body, "now": now}
                row = tx.execute("service_insert", params).fetchone()
                if row is not None:
                    return self._service(row), True
                # Another process registered the name meanwhile: update what it created.
                row = tx.execute("service_by_ref", {"ref": name}).fetchone()
                if row is None:
                    raise StorageError(f"service {name!r} vanished while being registered")
            params = {"service_id": row["service_id"], "name": name, "body": body, "now": now}
            updated = tx.execute("service_update", params).fetchone()
            return self._service(updated), False

        return self._changing_definitions(upsert)

    def get_service(self, ref: str) -> ServiceRecord | None:
        """A service by id or name, from the definitions cache when it is there."""

        def load() -> ServiceRecord | None:
            rows = self._read("service_get", ref=ref)
            return self._service(rows[0]) if rows else None

        found: ServiceRecord | None = self._cached(self._services, ref, load)
        return found

    def list_services(self) -> list[ServiceRecord]:
        return [self._service(row) for row in self._read("services_all")]

    def delete_service(self, service_id: str) -> None:
        self._changing_definitions(lambda tx: tx.execute("service_delete", {"service_id": service_id}))

    # workflows -----------------------------------------------------------------------------------

    def save_workflow(
        self,
        name: str,
        spec: dict[str, Any],
        definition: dict[str, Any],
        services: list[str],
        express: bool,
        now: float,
        ref: str | None = None,
    ) -> tuple[WorkflowRecord, bool]:
        def save(tx: SqlTransaction) -> tuple[WorkflowRecord, bool]:
            created = False
            head = tx.execute("workflow_bump", {"ref": ref or name, "name": name, "now": now}).fetchone()
            if head is None:
                params = {"workflow_id": new_id(), "name": name, "now": now}
                head = tx.execute("workflow_insert", params).fetchone()
                created = head is not None
            if head is None:
                # Another process created the name meanwhile: this save is its next version.
                head = tx.execute("workflow_bump", {"ref": name, "name": name, "now": now}).fetchone()
                if head is None:
                    raise StorageError(f"workflow {name!r} vanished while being saved")
            version = tx.execute(
                "version_insert",
                {
                    "workflow_id": head["workflow_id"],
                    "version": head["version"],
                    "spec": self._doc(spec),
                    "definition": self._doc(definition),
                    "services": self._meta_doc(services),
                    "express": self._flag(express),
                    "now": now,
                },
            ).fetchone()
            row = {**version, "workflow_id": head["workflow_id"], "name": head["name"]}
            return self._workflow({**row, "updated_at": head["updated_at"]}), created

        return self._changing_definitions(save)

    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowRecord | None:
        """The latest (or a given) version of a workflow, from the definitions cache when it is there."""

        def load() -> WorkflowRecord | None:
            rows = self._read("workflow_get", ref=ref, version=version)
            return self._workflow(rows[0]) if rows else None

        found: WorkflowRecord | None = self._cached(self._workflows, (ref, version), load)
        return found

    def list_workflows(self) -> list[WorkflowRecord]:
        return [self._workflow(row) for row in self._read("workflows_all")]

    def list_versions(self, workflow_id: str) -> list[WorkflowRecord]:
        return [self._workflow(row) for row in self._read("versions_all", workflow_id=workflow_id)]

    def delete_workflow(self, workflow_id: str) -> None:
        # Versions stay: executions that pinned them keep their definition readable.
        self._changing_definitions(lambda tx: tx.execute("workflow_delete", {"workflow_id": workflow_id}))

    def workflows_using(self, service_name: str) -> list[str]:
        return [row["name"] for row in self._read("workflows_using", service=service_name)]

    # executions ----------------------------------------------------------------------------------

    def create_execution(self, execution: ExecutionRecord, root: Branch, work: Sequence[WorkItem]) -> None:
        def create(tx: SqlTransaction) -> None:
            tx.insert_execution(execution)
            tx.put_branches([root], None)
            tx.insert_work(work)

        self._run(create)

    def create_execution_claimed(
        self,
        execution: ExecutionRecord,
        root: Branch,
        work: Sequence[WorkItem],
        owner: str,
        lease_until: float,
    ) -> list[WorkItem]:
        start = ClaimedStart(NewExecution(execution, root, work), owner, lease_until)
        result: list[WorkItem] = self._run(_creating(start).apply)
        return result

    def store_finished_execution(self, execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> None:
        self._run(_storing(execution, history).apply)

    def store_finished_executions(
        self, finished: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> list[Exception | None]:
        """All in one transaction (see :meth:`_write_group`)."""
        parts = [_storing(execution, history) for execution, history in finished]
        return self._write_group(parts, list(range(len(parts))))

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._read("execution_get", execution_id=execution_id)
        return self._execution(rows[0]) if rows else None

    def list_executions(
        self,
        workflow_id: str | None,
        status: ExecutionStatus | None,
        limit: int,
        after: str | None,
        parent_id: str | None = None,
    ) -> list[ExecutionRecord]:
        p = self._placeholder
        params: dict[str, Any] = {"limit": limit}
        if parent_id:
            clauses = [f"parent_execution_id = {p('parent_id')}"]
            params["parent_id"] = parent_id
        else:
            clauses = ["parent_execution_id IS NULL"]
        if workflow_id:
            clauses.append(f"workflow_id = {p('workflow_id')}")
            params["workflow_id"] = workflow_id
        if status:
            clauses.append(f"status = {p('status')}")
            params["status"] = status
        if after:
            clauses.append(f"seq < (SELECT seq FROM executions WHERE execution_id = {p('after')})")
            params["after"] = after
        # The clauses are fixed strings; only the values are parameters.
        sql = f"SELECT * FROM executions WHERE {' AND '.join(clauses)} ORDER BY seq DESC LIMIT {p('limit')}"
        rows = self._run(lambda tx: tx.db.execute(sql, params).fetchall(), write=False)
        return [self._execution(row) for row in rows]

    def finished_among(self, execution_ids: Sequence[str]) -> list[str]:
        if not execution_ids:
            return []
        rows = self._read("executions_finished_among", ids=self._id_list(list(execution_ids)))
        return [row["execution_id"] for row in rows]

    def count_executions(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for row in self._read("executions_count"):
            counts.setdefault(row["workflow_id"], {})[row["status"]] = int(row["n"])
        return counts

    def get_history(
        self, execution_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[StoredEvent]:
        query, bound = history_page_query(after, reverse)
        rows = self._read(query, execution_id=execution_id, after=bound, limit=self._no_limit(limit))
        return [
            StoredEvent(row["event_id"], row["type"], row["timestamp"], self._from_doc(row["details"]))
            for row in rows
        ]

    def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        now: float,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        return self._run(lambda tx: end_execution(tx, execution_id, status, now, error, cause))

    # branches and work ---------------------------------------------------------------------------

    def get_branch(self, branch_id: str) -> Branch | None:
        rows = self._read("branch_get", branch_id=branch_id)
        return self._branch(rows[0]) if rows else None

    def child_results(self, join_id: str) -> list[Branch]:
        return [self._branch(row) for row in self._read("branches_of_join", join_id=join_id)]

    def add_work(self, work: Sequence[WorkItem]) -> None:
        self._run(lambda tx: tx.insert_work(work))

    def claim_work(self, owner: str, now: float, limit: int, lease_seconds: float) -> list[WorkItem]:
        params = {"owner": owner, "lease_until": now + lease_seconds, "now": now, "limit": limit}
        rows = self._run(lambda tx: tx.execute("work_claim", params).fetchall())
        items = [self._work_item(row) for row in rows]
        # UPDATE ... RETURNING does not keep the claim's ORDER BY.
        items.sort(key=lambda item: (item.due_at, item.work_id or 0))
        return items

    def renew_leases(self, owner: str, work_ids: Sequence[int], until: float) -> None:
        if work_ids:
            params = {"work_ids": self._id_list(sorted(work_ids)), "owner": owner, "until": until}
            self._run(lambda tx: tx.execute("work_renew", params))

    def release_leases(self, owner: str | None = None) -> int:
        def release(tx: SqlTransaction) -> int:
            if owner is None:
                return tx.execute("work_release_all").rowcount
            return tx.execute("work_release_owner", {"owner": owner}).rowcount

        return self._run(release)

    def next_due(self) -> float | None:
        rows = self._read("work_next_due")
        value = rows[0]["due_at"] if rows else None
        return None if value is None else float(value)

    def count_work(self, now: float) -> WorkCounts:
        row = self._read("work_counts", now=now)[0]
        return WorkCounts(due=int(row["due"]), scheduled=int(row["scheduled"]), claimed=int(row["claimed"]))

    def count_running(self) -> dict[str, int]:
        rows = self._read("executions_running_by_workflow", status=ExecutionStatus.RUNNING.value)
        return {row["workflow_name"]: int(row["running"]) for row in rows}

    def complete_work(
        self,
        item: WorkItem,
        reschedule_at: float | None = None,
        payload: Any = None,
        history: Sequence[HistoryEvent] = (),
    ) -> None:
        params: dict[str, Any] = {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}

        def complete(tx: SqlTransaction) -> None:
            if reschedule_at is None:
                done = tx.execute("work_consume", params)
            elif payload is None:
                done = tx.execute("work_reschedule", {**params, "due_at": reschedule_at})
            else:
                values = {**params, "due_at": reschedule_at, "payload": tx.json(payload)}
                done = tx.execute("work_reschedule_payload", values)
            if done.rowcount > 0:
                tx.append_history(item.execution_id, history)
                if reschedule_at is not None:
                    tx.added.append(reschedule_at)

        self._run(complete)

    def extend_heartbeat(self, execution_id: str, branch_id: str, token: str, due: float) -> bool:
        params = {
            "execution_id": execution_id,
            "branch_id": branch_id,
            "token": token,
            "error": HEARTBEAT_TIMEOUT,
            "due_at": due,
        }
        return self._run(lambda tx: tx.execute("work_extend_heartbeat", params).rowcount > 0)

    def commit(self, commit: Commit, now: float) -> CommitResult:
        return self._run(lambda tx: apply_commit(tx, commit, now))

    #: Driver errors that concern one commit of a group (a constraint it broke), not the transaction.
    _commit_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def commit_many(self, commits: Sequence[tuple[Commit, float]]) -> list[CommitResult | Exception]:
        """Every commit in one transaction: one whose fence was lost (or that broke a constraint) is
        rolled back alone and reported, the others are written (see :meth:`_write_group`)."""
        if len(commits) == 1:
            return super().commit_many(commits)  # one commit: its own transaction, no group to undo
        return self._write_group(_commit_parts(commits), _commit_order(commits))

    def commit_group(
        self, starts: Sequence[ClaimedStart], commits: Sequence[tuple[Commit, float]]
    ) -> tuple[list[list[WorkItem] | Exception], list[CommitResult | Exception]]:
        """The new executions, then the commits, in one transaction (see :meth:`_write_group`)."""
        if not starts:
            return [], self.commit_many(commits)
        first = len(starts)
        order = list(range(first)) + [first + index for index in _commit_order(commits)]
        results = self._write_group([_creating(start) for start in starts] + _commit_parts(commits), order)
        return results[:first], results[first:]

    def _write_group(self, parts: list[_Part], order: list[int]) -> list[Any]:
        """Each part in one transaction, applied in ``order``; its result, or the error it failed with,
        in the parts' order.

        The group is first written as it is; only when one of its parts fails is that transaction rolled
        back and the group written again with each part inside a savepoint (two statements more per
        part, which a group where nothing fails does not pay)."""
        failing: tuple[type[Exception], ...] = (MachineryError, *self._commit_errors)

        def apply_at_once(tx: SqlTransaction) -> list[Any]:
            results: list[Any] = [StorageError("not committed")] * len(parts)
            for index in order:
                try:
                    results[index] = parts[index].apply(tx)
                except failing as exc:
                    raise _GroupFailed() from exc
            return results

        def apply_each(tx: SqlTransaction) -> list[Any]:
            results: list[Any] = [StorageError("not committed")] * len(parts)
            for index in order:
                part = parts[index]
                tx.execute("savepoint")
                try:
                    results[index] = part.apply(tx)
                except MachineryError as exc:
                    tx.execute("savepoint_rollback")
                    results[index] = exc
                except self._commit_errors as exc:
                    tx.execute("savepoint_rollback")
                    results[index] = StorageError(f"{self.dialect}: {exc}", execution_id=part.execution_id)
                tx.execute("savepoint_release")
            return results

        try:
            return self._run(apply_at_once)
        except _GroupFailed:
            return self._run(apply_each)

    # lookups by name and resources -------------------------------------------------------------

    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        rows = self._read("execution_by_name", workflow_name=workflow_name, name=name)
        return self._execution(rows[0]) if rows else None

    def put_resource(self, kind: str, key: str, body: dict[str, Any]) -> None:
        params = {"kind": kind, "key": key, "body": self._doc(body)}
        self._run(lambda tx: tx.execute("resource_put", params))

    def insert_resource(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        params = {"kind": kind, "key": key, "body": self._doc(body)}
        return self._run(lambda tx: tx.execute("resource_insert", params).rowcount > 0)

    def get_resource(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._read("resource_get", kind=kind, key=key)
        return dict(self._from_doc(rows[0]["body"])) if rows else None

    def list_resources(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        rows = self._read("resource_list", kind=kind, prefix=prefix)
        return [(row["key"], dict(self._from_doc(row["body"]))) for row in rows]

    def delete_resource(self, kind: str, key: str) -> bool:
        params = {"kind": kind, "key": key}
        return self._run(lambda tx: tx.execute("resource_delete", params).rowcount > 0)

    def take_resource(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
        params = {"kind": kind, "prefix": prefix}
        row = self._run(lambda tx: tx.execute("resource_take", params).fetchone())
        return (row["key"], dict(self._from_doc(row["body"]))) if row else None

    # redrive -------------------------------------------------------------------------------------

    def get_join(self, join_id: str) -> JoinState | None:
        rows = self._read("join_get", join_id=join_id)
        return join_state(join_id, rows[0]) if rows else None

    def redrive_execution(self, plan: RedrivePlan, now: float) -> bool:
        from machinery.storage.sqlredrive import RedriveConflict, apply_redrive

        try:
            self._run(lambda tx: apply_redrive(tx, plan, now))
        except RedriveConflict:
            return False
        return True

    def update_join_limits(
        self, join_id: str, max_concurrency: int, tolerated_count: int, tolerated_pct: float, now: float
    ) -> bool:
        from machinery.storage.sqlredrive import apply_join_limits

        return self._run(
            lambda tx: apply_join_limits(tx, join_id, max_concurrency, tolerated_count, tolerated_pct, now)
        )
