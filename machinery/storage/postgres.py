"""PostgreSQL backend: many API and worker processes on one database.

Work is claimed with ``FOR UPDATE SKIP LOCKED`` and fenced exactly like the SQLite backend: every claim
increments the item's ``fence`` and a commit deletes the consumed item only while fence and owner still
match. Inserting work calls ``pg_notify`` in the same transaction; :meth:`PostgresStorage.wait_for_work`
LISTENs on a dedicated connection, reconnects after failures and lets the caller fall back to polling.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import Cursor, errors
from psycopg.rows import DictRow, TupleRow, dict_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from machinery.engine.types import Branch, HistoryEvent
from machinery.errors import StorageError
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    HEARTBEAT_TIMEOUT,
    Commit,
    CommitResult,
    ExecutionRecord,
    JoinState,
    RedrivePlan,
    ServiceRecord,
    Storage,
    StoredEvent,
    WorkflowRecord,
    WorkItem,
    history_page_query,
    new_id,
)
from machinery.storage.queries import load_migrations, load_queries

# The reference backend's row helpers, so both backends encode documents and name work identically.
from machinery.storage.sqlcommon import (
    Claim,
    RedriveConflict,
    SqlTransaction,
    apply_commit,
    apply_join_limits,
    apply_redrive,
    end_execution,
    join_state,
    webhook_item,
)
from machinery.storage.sqlite import _dumps

logger = logging.getLogger(__name__)

_Q = load_queries("postgres")
_T = TypeVar("_T")

#: Longest uninterrupted wait on the LISTEN connection (how long close() may wait for a listener).
_LISTEN_SLICE_SECONDS = 0.5
#: Transactions aborted by a deadlock or serialisation failure are rolled back whole: run them again.
_CONFLICT_RETRIES = 3


def load_schema() -> str:
    """The fresh schema (``sql/postgres/schema.sql``): what all migrations applied in order produce."""
    return resources.files("machinery.storage").joinpath("sql", "postgres", "schema.sql").read_text("utf-8")


def _json(value: Any) -> Json | None:
    """A user document: the ``json`` type keeps its text (key order) as written."""
    return None if value is None else Json(value, dumps=_dumps)


class PostgresStorage(Storage):
    """A connection pool for transactions plus one dedicated connection for ``LISTEN``.

    :param url: a libpq connection URL (``postgresql://user:password@host:5432/db``).
    :param pool_min_size: connections kept open (``MACHINERY_PG_POOL_MIN``).
    :param pool_max_size: most connections opened at once (``MACHINERY_PG_POOL_MAX``); a caller beyond it
        waits up to ``pool_timeout`` seconds for a free one, then gets a :class:`StorageError`.
    """

    blocking_io = True

    def __init__(
        self, url: str, pool_min_size: int = 1, pool_max_size: int = 10, pool_timeout: float = 30.0
    ) -> None:
        self.url = url
        try:
            self._pool = ConnectionPool(
                url,
                min_size=pool_min_size,
                max_size=max(pool_min_size, pool_max_size),
                timeout=pool_timeout,
                open=True,
                # Autocommit: a single statement is its own transaction (one round trip); writes open an
                # explicit transaction in _run. A connection the server dropped is found out by using it:
                # _run then retries on the next one, and the pool discards the broken one.
                kwargs={"autocommit": True},
                name="machinery",
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot open PostgreSQL pool: {exc}") from exc
        self._listen_lock = threading.Lock()
        self._listener: psycopg.Connection[TupleRow] | None = None
        self._closed = threading.Event()

    # plumbing ----------------------------------------------------------------------------------

    def _run(self, body: Callable[[Cursor[DictRow]], _T], write: bool = True) -> _T:
        """Run ``body`` in one transaction and commit it (``write=False``: a single autocommit statement).

        A transaction that failed before its COMMIT was sent is rolled back by the server, so it is safe to
        run again: after a lost connection (as many times as the pool may hold dead connections, e.g.
        after a server restart), a few times after a deadlock. A failure during COMMIT leaves the outcome
        unknown and is never retried.
        """
        lost_connections = 0
        conflicts = 0
        while True:
            committing = False
            try:
                with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
                    if not write:
                        return body(cursor)
                    with conn.transaction():
                        result = body(cursor)
                        committing = True
                return result
            except PoolTimeout as exc:
                raise StorageError(f"PostgreSQL: no connection available: {exc}") from exc
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                conflicts += 1
                if committing or conflicts > _CONFLICT_RETRIES:
                    raise StorageError(f"PostgreSQL: {exc}") from exc
                logger.info("transaction conflict (%s); running it again", exc.sqlstate)
            except psycopg.OperationalError as exc:
                lost_connections += 1
                if committing or lost_connections > self._pool.max_size or not _connection_lost(exc):
                    raise StorageError(f"PostgreSQL: {exc}") from exc
                logger.warning("PostgreSQL connection lost (%s); retrying on another", exc)
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL: {exc}") from exc

    def _fetch(self, query: str, **params: Any) -> list[DictRow]:
        return self._run(lambda cur: cur.execute(_Q[query], params).fetchall(), write=False)

    def migrate(self) -> None:
        """Bring the schema up to date under an advisory lock, so concurrent starts do not race.

        An empty database gets ``schema.sql`` and every migration recorded as applied; an older one gets
        the migrations it lacks, in order.
        """

        def apply(cur: Cursor[DictRow]) -> None:
            cur.execute(_Q["migrate_lock"])
            cur.execute(_Q["migrations_table"])
            applied = {row["version"] for row in cur.execute(_Q["migrations_applied"]).fetchall()}
            migrations = load_migrations("postgres")
            if not applied:
                cur.execute(load_schema())
                pending = migrations
            else:
                pending = [(version, sql) for version, sql in migrations if version not in applied]
                for version, sql in pending:
                    logger.info("applying migration %s", version)
                    cur.execute(sql)
            for version, _sql in pending:
                cur.execute(_Q["migration_record"], {"version": version, "now": time.time()})

        self._run(apply)

    def close(self) -> None:
        self._closed.set()
        # Wait (briefly) for a caller blocked in wait_for_work: its timeout is a poll interval.
        acquired = self._listen_lock.acquire(timeout=5.0)
        try:
            self._drop_listener()
        finally:
            if acquired:
                self._listen_lock.release()
        self._pool.close()

    # wake-ups ----------------------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        """Block until new work is committed (True) or ``timeout`` seconds pass (False).

        The LISTEN connection stays subscribed between calls, so a notification that arrives while the
        caller is busy wakes its next call. When the connection fails, the call sleeps out its timeout
        (the caller's polling fallback) and the next call reconnects.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        if self._closed.is_set() or not self._listen_lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            try:
                listener = self._connect_listener()
                while True:
                    # In slices, so that close() is not kept waiting for a long timeout.
                    remaining = deadline - time.monotonic()
                    slice_ = max(0.0, min(remaining, _LISTEN_SLICE_SECONDS))
                    if any(True for _ in listener.notifies(timeout=slice_, stop_after=1)):
                        # One wake-up stands for every notification already received.
                        for _more in listener.notifies(timeout=0):
                            pass
                        return True
                    if remaining <= _LISTEN_SLICE_SECONDS or self._closed.is_set():
                        return False
            except psycopg.Error as exc:
                if not self._closed.is_set():
                    logger.warning("LISTEN connection failed (%s); polling until it reconnects", exc)
                self._drop_listener()
        finally:
            self._listen_lock.release()
        self._closed.wait(max(0.0, deadline - time.monotonic()))
        return False

    def _connect_listener(self) -> psycopg.Connection[TupleRow]:
        if self._listener is None or self._listener.closed:
            listener = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            listener.execute(_Q["work_listen"])
            self._listener = listener
        return self._listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(psycopg.Error):
                listener.close()

    # services ----------------------------------------------------------------------------------

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
        body = Jsonb(
            {"address": address, "inputs": inputs, "outputs": outputs, "settings": settings}, dumps=_dumps
        )

        def upsert(cur: Cursor[DictRow]) -> tuple[ServiceRecord, bool]:
            row = cur.execute(_Q["service_by_ref"], {"ref": ref or name}).fetchone()
            if row is None:
                params = {"service_id": new_id(), "name": name, "body": body, "now": now}
                row = cur.execute(_Q["service_insert"], params).fetchone()
                if row is not None:
                    return _service(row), True
                # Another process registered the name meanwhile: update what it created.
                row = cur.execute(_Q["service_by_ref"], {"ref": name}).fetchone()
                if row is None:
                    raise StorageError(f"service {name!r} vanished while being registered")
            params = {"service_id": row["service_id"], "name": name, "body": body, "now": now}
            updated = cur.execute(_Q["service_update"], params).fetchone()
            assert updated is not None
            return _service(updated), False

        return self._run(upsert)

    def get_service(self, ref: str) -> ServiceRecord | None:
        rows = self._fetch("service_get", ref=ref)
        return _service(rows[0]) if rows else None

    def list_services(self) -> list[ServiceRecord]:
        return [_service(row) for row in self._fetch("services_all")]

    def delete_service(self, service_id: str) -> None:
        self._run(lambda cur: cur.execute(_Q["service_delete"], {"service_id": service_id}))

    # workflows ---------------------------------------------------------------------------------

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
        def save(cur: Cursor[DictRow]) -> tuple[WorkflowRecord, bool]:
            created = False
            head = cur.execute(_Q["workflow_bump"], {"ref": ref or name, "name": name, "now": now}).fetchone()
            if head is None:
                params = {"workflow_id": new_id(), "name": name, "now": now}
                head = cur.execute(_Q["workflow_insert"], params).fetchone()
                created = head is not None
            if head is None:
                # Another process created the name meanwhile: this save is its next version.
                head = cur.execute(_Q["workflow_bump"], {"ref": name, "name": name, "now": now}).fetchone()
                if head is None:
                    raise StorageError(f"workflow {name!r} vanished while being saved")
            version_row = cur.execute(
                _Q["version_insert"],
                {
                    "workflow_id": head["workflow_id"],
                    "version": head["version"],
                    "spec": Json(spec, dumps=_dumps),
                    "definition": Json(definition, dumps=_dumps),
                    "services": Jsonb(services, dumps=_dumps),
                    "express": express,
                    "now": now,
                },
            ).fetchone()
            assert version_row is not None
            return _workflow(head, version_row, head["version"]), created

        return self._run(save)

    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowRecord | None:
        def get(cur: Cursor[DictRow]) -> WorkflowRecord | None:
            head = cur.execute(_Q["workflow_by_ref"], {"ref": ref}).fetchone()
            if head is None:
                return None
            wanted = head["version"] if version is None else version
            row = cur.execute(
                _Q["version_get"], {"workflow_id": head["workflow_id"], "version": wanted}
            ).fetchone()
            return _workflow(head, row, wanted) if row is not None else None

        return self._run(get)

    def list_workflows(self) -> list[WorkflowRecord]:
        return [
            _workflow(row, {**row, "created_at": row["version_created_at"]}, row["version"])
            for row in self._fetch("workflows_all")
        ]

    def list_versions(self, workflow_id: str) -> list[WorkflowRecord]:
        def versions(cur: Cursor[DictRow]) -> list[WorkflowRecord]:
            head = cur.execute(_Q["workflow_by_ref"], {"ref": workflow_id}).fetchone()
            if head is None:
                return []
            rows = cur.execute(_Q["versions_all"], {"workflow_id": head["workflow_id"]}).fetchall()
            return [_workflow(head, row, row["version"]) for row in rows]

        return self._run(versions)

    def delete_workflow(self, workflow_id: str) -> None:
        # Versions stay: executions that pinned them keep their definition readable.
        self._run(lambda cur: cur.execute(_Q["workflow_delete"], {"workflow_id": workflow_id}))

    def workflows_using(self, service_name: str) -> list[str]:
        return [row["name"] for row in self._fetch("workflows_using", service=service_name)]

    # executions --------------------------------------------------------------------------------

    def create_execution(self, execution: ExecutionRecord, root: Branch, work: Sequence[WorkItem]) -> None:
        def create(cur: Cursor[DictRow]) -> None:
            _insert_execution(cur, execution)
            _put_branch(cur, root, None)
            _insert_work(cur, work)

        self._run(create)

    def create_execution_claimed(
        self,
        execution: ExecutionRecord,
        root: Branch,
        work: Sequence[WorkItem],
        owner: str,
        lease_until: float,
    ) -> list[WorkItem]:
        def create(cur: Cursor[DictRow]) -> list[WorkItem]:
            _insert_execution(cur, execution)
            _put_branch(cur, root, None)
            return _insert_work(cur, work, (owner, lease_until, execution.started_at))

        return self._run(create)

    def store_finished_execution(self, execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> None:
        def store(cur: Cursor[DictRow]) -> None:
            _insert_execution(cur, execution)
            _append_history(cur, execution.execution_id, history)
            if execution.callback_url:
                _insert_work(cur, [webhook_item(execution.execution_id, execution.finished_at or 0.0)])

        self._run(store)

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        rows = self._fetch("execution_get", execution_id=execution_id)
        return _execution(rows[0]) if rows else None

    def list_executions(
        self,
        workflow_id: str | None,
        status: ExecutionStatus | None,
        limit: int,
        after: str | None,
        parent_id: str | None = None,
    ) -> list[ExecutionRecord]:
        rows = self._fetch(
            "executions_page",
            parent_id=parent_id or None,
            workflow_id=workflow_id or None,
            status=status or None,
            after=after or None,
            limit=limit,
        )
        return [_execution(row) for row in rows]

    def get_history(
        self, execution_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[StoredEvent]:
        query, bound = history_page_query(after, reverse)
        return [
            StoredEvent(row["event_id"], row["type"], row["timestamp"], row["details"])
            for row in self._fetch(query, execution_id=execution_id, after=bound, limit=limit)
        ]

    def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        now: float,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        return self._run(
            lambda cur: end_execution(_Transaction(cur), execution_id, status, now, error, cause)
        )

    # branches and work ---------------------------------------------------------------------------

    def get_branch(self, branch_id: str) -> Branch | None:
        rows = self._fetch("branch_get", branch_id=branch_id)
        return _branch(rows[0]) if rows else None

    def child_results(self, join_id: str) -> list[Branch]:
        return [_branch(row) for row in self._fetch("branches_of_join", join_id=join_id)]

    def add_work(self, work: Sequence[WorkItem]) -> None:
        self._run(lambda cur: _insert_work(cur, work))

    def claim_work(self, owner: str, now: float, limit: int, lease_seconds: float) -> list[WorkItem]:
        params = {"owner": owner, "lease_until": now + lease_seconds, "now": now, "limit": limit}
        rows = self._fetch("work_claim", **params)
        items = [
            WorkItem(
                execution_id=row["execution_id"],
                branch_id=row["branch_id"],
                kind=row["kind"],
                due_at=row["due_at"],
                payload=row["payload"],
                work_id=row["work_id"],
                owner=row["owner"],
                fence=row["fence"],
            )
            for row in rows
        ]
        # UPDATE ... RETURNING does not keep the claim's ORDER BY.
        items.sort(key=lambda item: (item.due_at, item.work_id or 0))
        return items

    def renew_leases(self, owner: str, work_ids: Sequence[int], until: float) -> None:
        if work_ids:
            params = {"work_ids": sorted(work_ids), "owner": owner, "until": until}
            self._run(lambda cur: cur.execute(_Q["work_renew"], params))

    def release_leases(self, owner: str | None = None) -> int:
        def release(cur: Cursor[DictRow]) -> int:
            if owner is None:
                return cur.execute(_Q["work_release_all"]).rowcount
            return cur.execute(_Q["work_release_owner"], {"owner": owner}).rowcount

        return self._run(release)

    def next_due(self) -> float | None:
        rows = self._fetch("work_next_due")
        value = rows[0]["due_at"] if rows else None
        return None if value is None else float(value)

    def complete_work(self, item: WorkItem, reschedule_at: float | None = None) -> None:
        params: dict[str, Any] = {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}

        def complete(cur: Cursor[DictRow]) -> None:
            if reschedule_at is None:
                cur.execute(_Q["work_consume"], params)
            else:
                cur.execute(_Q["work_reschedule"], {**params, "due_at": reschedule_at})
                _notify(cur, [reschedule_at])

        self._run(complete)

    def extend_heartbeat(self, execution_id: str, branch_id: str, token: str, due: float) -> bool:
        params = {
            "execution_id": execution_id,
            "branch_id": branch_id,
            "token": token,
            "error": HEARTBEAT_TIMEOUT,
            "due_at": due,
        }
        return bool(self._run(lambda cur: cur.execute(_Q["work_extend_heartbeat"], params).rowcount))

    def commit(self, commit: Commit, now: float) -> CommitResult:
        return self._run(lambda cur: apply_commit(_Transaction(cur), commit, now))

    # transactions ----------------------------------------------------------------------------------------

    # lookups by name and resources ---------------------------------------------------------------

    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        rows = self._fetch("execution_by_name", workflow_name=workflow_name, name=name)
        return _execution(rows[0]) if rows else None

    def put_resource(self, kind: str, key: str, body: dict[str, Any]) -> None:
        params = {"kind": kind, "key": key, "body": _json(body)}
        self._run(lambda cur: cur.execute(_Q["resource_put"], params))

    def insert_resource(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        params = {"kind": kind, "key": key, "body": _json(body)}
        return bool(self._run(lambda cur: cur.execute(_Q["resource_insert"], params).rowcount))

    def get_resource(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._fetch("resource_get", kind=kind, key=key)
        return dict(rows[0]["body"]) if rows else None

    def list_resources(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [
            (row["key"], dict(row["body"])) for row in self._fetch("resource_list", kind=kind, prefix=prefix)
        ]

    def delete_resource(self, kind: str, key: str) -> bool:
        params = {"kind": kind, "key": key}
        return bool(self._run(lambda cur: cur.execute(_Q["resource_delete"], params).rowcount))

    def take_resource(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
        params = {"kind": kind, "prefix": prefix}
        row = self._run(lambda cur: cur.execute(_Q["resource_take"], params).fetchone())
        return (row["key"], dict(row["body"])) if row else None

    # redrive -------------------------------------------------------------------------------------

    def get_join(self, join_id: str) -> JoinState | None:
        rows = self._fetch("join_get", join_id=join_id)
        return join_state(join_id, rows[0]) if rows else None

    def redrive_execution(self, plan: RedrivePlan, now: float) -> bool:
        try:
            self._run(lambda cur: apply_redrive(_Transaction(cur), plan, now))
        except RedriveConflict:
            return False
        return True

    def update_join_limits(
        self, join_id: str, max_concurrency: int, tolerated_count: int, tolerated_pct: float, now: float
    ) -> bool:
        return self._run(
            lambda cur: apply_join_limits(
                _Transaction(cur), join_id, max_concurrency, tolerated_count, tolerated_pct, now
            )
        )


class _Transaction(SqlTransaction):
    """PostgreSQL's primitives for :mod:`machinery.storage.sqlcommon`, inside one open transaction."""

    join_query = "join_lock"

    def __init__(self, cur: Cursor[DictRow]) -> None:
        self.cur = cur

    def execute(self, query: str, params: dict[str, Any]) -> Cursor[DictRow]:
        return self.cur.execute(_Q[query], params)

    def json(self, value: Any) -> Any:
        return _json(value)

    def closed_value(self, closed: bool) -> object:
        return closed

    def before_commit(self, commit: Commit) -> None:
        # Every transition of an execution first locks its row: commits (and the joins of its children)
        # serialise there instead of waiting on each other's rows in opposite orders.
        if self.execute("execution_lock", {"execution_id": commit.execution_id}).fetchone() is None:
            raise StorageError(
                f"execution {commit.execution_id} does not exist", execution_id=commit.execution_id
            )

    def consume(self, item: WorkItem) -> bool:
        params = {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}
        self.cur.execute(_Q["work_consume"], params)
        return self.cur.rowcount > 0

    def put_branches(self, branches: Sequence[Branch], join_id: str | None) -> None:
        if len(branches) == 1:
            _put_branch(self.cur, branches[0], join_id)
        elif branches:
            assert join_id is not None  # only a join's children are written together
            _put_branches(self.cur, branches, join_id)

    def append_history(self, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        _append_history(self.cur, execution_id, history)

    def insert_execution(self, record: ExecutionRecord) -> None:
        _insert_execution(self.cur, record)

    def insert_work(self, work: Sequence[WorkItem], claim: Claim | None = None) -> list[WorkItem]:
        return _insert_work(self.cur, work, claim)


def _insert_execution(cur: Cursor[DictRow], execution: ExecutionRecord) -> None:
    cur.execute(
        _Q["execution_insert"],
        {
            "execution_id": execution.execution_id,
            "workflow_id": execution.workflow_id,
            "workflow_name": execution.workflow_name,
            "workflow_version": execution.workflow_version,
            "name": execution.name,
            "status": execution.status,
            "input": Json(execution.input, dumps=_dumps),
            "output": _json(execution.output),
            "error": execution.error,
            "cause": execution.cause,
            "started_at": execution.started_at,
            "finished_at": execution.finished_at,
            "callback_url": execution.callback_url,
            "express": execution.express,
            "parent_execution_id": execution.parent_execution_id,
        },
    )


def _append_history(cur: Cursor[DictRow], execution_id: str, history: Sequence[HistoryEvent]) -> None:
    if not history:
        return
    row = cur.execute(
        _Q["execution_reserve_events"], {"execution_id": execution_id, "count": len(history)}
    ).fetchone()
    if row is None:
        raise StorageError(f"execution {execution_id} does not exist", execution_id=execution_id)
    first = row["last_event_id"] - len(history) + 1
    cur.executemany(
        _Q["history_insert"],
        [
            {
                "execution_id": execution_id,
                "event_id": first + offset,
                "type": event.type,
                "timestamp": event.timestamp,
                "details": Json(event.details, dumps=_dumps),
            }
            for offset, event in enumerate(history)
        ],
    )


def _put_branch(cur: Cursor[DictRow], branch: Branch, join_id: str | None) -> None:
    cur.execute(_Q["branch_upsert"], _branch_params(branch, join_id))


def _put_branches(cur: Cursor[DictRow], branches: Sequence[Branch], join_id: str) -> None:
    if branches:
        cur.executemany(_Q["branch_upsert"], [_branch_params(branch, join_id) for branch in branches])


def _branch_params(branch: Branch, join_id: str | None) -> dict[str, Any]:
    return {
        "branch_id": branch.branch_id,
        "execution_id": branch.execution_id,
        "join_id": join_id,
        "idx": branch.index,
        "status": branch.status,
        "body": Json(branch.to_json(), dumps=_dumps),
    }


def _insert_work(
    cur: Cursor[DictRow], work: Sequence[WorkItem], claim: tuple[str, float, float] | None = None
) -> list[WorkItem]:
    """Insert work; with ``claim = (owner, lease_until, now)`` the items due by ``now`` are inserted
    claimed by ``owner`` and returned (nobody else needs waking for them)."""
    claimed: list[WorkItem] = []
    unclaimed: list[WorkItem] = []
    for item in work:
        if claim is not None and item.due_at <= claim[2]:
            owner, lease_until, _now = claim
            row = cur.execute(
                _Q["work_insert_claimed"],
                {**_work_params(item), "owner": owner, "lease_until": lease_until},
            ).fetchone()
            assert row is not None
            claimed.append(replace(item, work_id=row["work_id"], owner=owner, fence=1))
        else:
            unclaimed.append(item)
    if unclaimed:
        cur.executemany(_Q["work_insert"], [_work_params(item) for item in unclaimed])
        _notify(cur, [item.due_at for item in unclaimed])
    return claimed


def _work_params(item: WorkItem) -> dict[str, Any]:
    return {
        "execution_id": item.execution_id,
        "branch_id": item.branch_id,
        "kind": item.kind,
        "due_at": item.due_at,
        "payload": _json(item.payload),
    }


def _notify(cur: Cursor[DictRow], due: Sequence[float]) -> None:
    cur.execute(_Q["work_notify"], {"due_at": repr(min(due))})


# rows ------------------------------------------------------------------------------------------------


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """Connection failures (SQLSTATE class 08, an administrator's shutdown, or none at all)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}


def _service(row: DictRow) -> ServiceRecord:
    body = row["body"]
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


def _workflow(head: DictRow, version_row: DictRow, version: int) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=head["workflow_id"],
        name=head["name"],
        version=version,
        spec=version_row["spec"],
        definition=version_row["definition"],
        services=version_row["services"],
        express=version_row["express"],
        created_at=version_row["created_at"],
        updated_at=head["updated_at"],
    )


def _execution(row: DictRow) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=row["execution_id"],
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        workflow_version=row["workflow_version"],
        name=row["name"],
        status=ExecutionStatus(row["status"]),
        input=row["input"],
        output=row["output"],
        error=row["error"],
        cause=row["cause"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        callback_url=row["callback_url"],
        express=row["express"],
        parent_execution_id=row["parent_execution_id"],
        redrive_count=row["redrive_count"],
        redrive_date=row["redrive_date"],
    )


def _branch(row: DictRow) -> Branch:
    # Cancelling updates only the status column (one UPDATE for a whole join or execution): it wins.
    branch = Branch.from_json(row["body"])
    branch.status = row["status"]
    return branch
