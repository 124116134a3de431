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
from importlib import resources
from typing import Any, TypeVar

import psycopg
from psycopg import errors, pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow, dict_row
from psycopg.types.json import Json, Jsonb, set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from machinery.engine.types import ACTIVE, HistoryEvent
from machinery.errors import StorageError, StorageFull
from machinery.storage.base import Commit, CommitResult, ExecutionRecord, NewExecution, WorkItem
from machinery.storage.freshread import FreshRead
from machinery.storage.queries import load_migrations
from machinery.storage.sqlextras import SqlExtras
from machinery.storage.sqltx import (
    Claim,
    SqlTransaction,
    abort_children,
    claimed_item,
    commit_claim,
    dumps,
    join_of,
    lease_lost,
    loads,
    webhook_item,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Longest uninterrupted wait on the LISTEN connection (how long close() may wait for a listener).
_LISTEN_SLICE_SECONDS = 0.5
#: Transactions aborted by a deadlock or serialisation failure are rolled back whole: run them again.
_CONFLICT_RETRIES = 3
#: A server that answers a statement within this many seconds is close by (the same host): a worker
#: then writes one group transaction at a time, else :data:`DISTANT_WRITERS` at once.
CLOSE_ROUND_TRIP = 0.00025
DISTANT_WRITERS = 6


def load_schema() -> str:
    """The fresh schema (``sql/postgres/schema.sql``): what all migrations applied in order produce."""
    return resources.files("machinery.storage").joinpath("sql", "postgres", "schema.sql").read_text("utf-8")


class PostgresStorage(SqlExtras):
    """A connection pool for transactions plus one dedicated connection for ``LISTEN``.

    :param url: a libpq connection URL (``postgresql://user:password@host:5432/db``).
    :param pool_min_size: connections kept open (``MACHINERY_PG_POOL_MIN``).
    :param pool_max_size: most connections opened at once (``MACHINERY_PG_POOL_MAX``); a caller beyond it
        waits up to ``pool_timeout`` seconds for a free one, then gets a :class:`StorageError`.
    """

    blocking_io = True
    pushes_wake_ups = True
    dialect = "postgres"
    _commit_errors = (errors.IntegrityError, errors.DataError)
    # Children of one join finish on different workers: each accounts under the join row's lock.
    join_query = "join_lock"

    def __init__(
        self, url: str, pool_min_size: int = 1, pool_max_size: int = 10, pool_timeout: float = 30.0
    ) -> None:
        super().__init__()
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
                configure=_configure,
                name="machinery",
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot open PostgreSQL pool: {exc}") from exc
        self._listen_lock = threading.Lock()
        self._writers_lock = threading.Lock()
        self._writers: int | None = None  # group_writers(), measured once
        self._listener: psycopg.Connection[TupleRow] | None = None
        self._closed = threading.Event()
        # Every definition lookup reads the generation row (a change by another process is seen at once):
        # lookups made at the same time share one read.
        self._generation_row = _ValueReader(url, self.queries["generation_get"], self._closed, pool_timeout)
        self._generation_reads = FreshRead(self._generation_row.read)

    # hooks -------------------------------------------------------------------------------------

    def _generation_now(self) -> int | None:
        return self._generation_reads.get()

    def _run(self, body: Callable[[SqlTransaction], _T], write: bool = True) -> _T:
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
                    tx = SqlTransaction(self, cursor)
                    if not write:
                        return body(tx)
                    with conn.transaction():
                        result = body(tx)
                        if tx.added:
                            self._work_added(tx, tx.added)
                        committing = True
                return result
            except PoolTimeout as exc:
                raise StorageError(f"PostgreSQL: no connection available: {exc}") from exc
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                conflicts += 1
                if committing or conflicts > _CONFLICT_RETRIES:
                    raise StorageError(f"PostgreSQL: {exc}") from exc
                logger.info("transaction conflict (%s); running it again", exc.sqlstate)
            except errors.DiskFull as exc:  # an OperationalError: caught before them
                raise StorageFull(f"PostgreSQL: {exc}: free some space; nothing was written") from exc
            except psycopg.OperationalError as exc:
                lost_connections += 1
                if committing or lost_connections > self._pool.max_size or not _connection_lost(exc):
                    raise StorageError(f"PostgreSQL: {exc}") from exc
                logger.warning("PostgreSQL connection lost (%s); retrying on another", exc)
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL: {exc}") from exc

    def group_writers(self) -> int:
        """1 when the server answers within :data:`CLOSE_ROUND_TRIP` (the best of three ``SELECT 1``,
        asked once), else :data:`DISTANT_WRITERS` (also when it cannot be asked)."""

        def best_of_three(tx: SqlTransaction) -> float:
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                tx.execute("ping").fetchone()
                best = min(best, time.perf_counter() - started)
            return best

        with self._writers_lock:
            if self._writers is None:
                try:
                    round_trip = self._run(best_of_three, write=False)
                except StorageError:
                    round_trip = float("inf")
                self._writers = 1 if round_trip <= CLOSE_ROUND_TRIP else DISTANT_WRITERS
                logger.info(
                    "PostgreSQL answers in %.2f ms: %s group transaction(s) at once",
                    round_trip * 1000,
                    self._writers,
                )
            return self._writers

    def _doc(self, value: Any) -> Any:
        # A user document: the ``json`` type keeps its text (key order) as written.
        return Json(value, dumps=dumps)

    def _meta_doc(self, value: Any) -> Any:
        return Jsonb(value, dumps=dumps)

    def _from_doc(self, column: Any) -> Any:
        return column  # psycopg has decoded it

    def _placeholder(self, name: str) -> str:
        return f"%({name})s"

    def _id_list(self, ids: Sequence[int | str]) -> object:
        return list(ids)

    def _work_added(self, tx: SqlTransaction, due: Sequence[float]) -> None:
        # Delivered at commit to every LISTENing worker; the payload is the earliest new due time.
        tx.execute("work_notify", {"due_at": repr(min(due))})

    def _history_params(self, execution_id: str, history: Sequence[HistoryEvent]) -> dict[str, Any]:
        events = [(event.type, event.timestamp, event.details) for event in history]
        return {"execution_id": execution_id, "count": len(events), "events": self._doc(events)}

    def _append_history(self, tx: SqlTransaction, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        # One statement (history_append), which also locks the execution's row.
        if tx.execute("history_append", self._history_params(execution_id, history)).rowcount == 0:
            raise _no_execution(execution_id)

    def _apply_step(self, tx: SqlTransaction, commit: Commit, now: float) -> CommitResult | None:
        # A plain step (history, its item consumed, its branch, at most one next item or the execution's
        # end; no join to open or count into, no child execution to start) is one statement (step_apply,
        # step_finish) instead of four to seven.
        consumed, branch, update = commit.consumed, commit.branch, commit.execution_update
        join_id = join_of(branch)
        if consumed is None or not _plain(commit, join_id):
            return None
        params = self._history_params(commit.execution_id, commit.history)
        params.update(tx.branch_params(branch, join_id), **tx.consume_params(consumed))
        if update is not None:
            return self._finish_step(tx, commit, update, params, now)
        following = commit.work[0] if commit.work else None
        owner = None
        if following is not None and commit.claim_owner is not None and following.due_at <= now:
            owner = commit.claim_owner
        params.update(
            _NO_NEXT if following is None else _prefixed("next_", tx.work_params(following)),
            has_next=following is not None,
            next_owner=owner,
            next_lease_until=commit.lease_until if owner is not None else None,
        )
        row = self._step_row(tx, commit, "step_apply", params)
        claimed = []
        if following is not None:
            if owner is None:
                tx.added.append(following.due_at)
            else:
                claimed.append(claimed_item(following, row["next_work_id"], owner))
        return CommitResult(new_work=len(commit.work), claimed=claimed)

    def _insert_new(self, tx: SqlTransaction, new: NewExecution, claim: Claim) -> list[WorkItem]:
        owner, lease_until, now = claim
        if len(new.work) != 1 or new.work[0].due_at > now:
            return super()._insert_new(tx, new, claim)
        [first] = new.work
        params = tx.execution_params(new.record)
        params.update(
            _prefixed("root_", tx.branch_params(new.root, None)),
            **_prefixed("work_", tx.work_params(first)),
            owner=owner,
            lease_until=lease_until,
        )
        row = tx.execute("execution_create_claimed", params).fetchone()
        return [claimed_item(first, row["work_id"], owner)]

    def _insert_finished(
        self, tx: SqlTransaction, execution: ExecutionRecord, history: Sequence[HistoryEvent]
    ) -> None:
        if not history:
            super()._insert_finished(tx, execution, history)
            return
        params = tx.execution_params(execution)
        params.update(self._history_params(execution.execution_id, history))
        tx.execute("execution_insert_finished", params)

    def _finish_step(
        self, tx: SqlTransaction, commit: Commit, update: dict[str, Any], params: dict[str, Any], now: float
    ) -> CommitResult:
        params.update(
            final_status=update["status"],
            output=tx.json(update.get("output")),
            error=update.get("error"),
            cause=update.get("cause"),
            now=now,
        )
        row = self._step_row(tx, commit, "step_finish", params)
        work, claimed = [], []
        if row["finished"]:
            if row["callback_url"]:
                work.append(webhook_item(commit.execution_id, now))
                claimed = tx.insert_work(work, commit_claim(commit, now))
            if row["running_children"]:
                abort_children(tx, commit.execution_id, now)
        return CommitResult(execution_finished=bool(row["finished"]), new_work=len(work), claimed=claimed)

    @staticmethod
    def _step_row(tx: SqlTransaction, commit: Commit, query: str, params: dict[str, Any]) -> Any:
        row = tx.execute(query, params).fetchone()
        if not row["reserved"]:
            raise _no_execution(commit.execution_id)
        if not row["consumed"]:
            raise lease_lost(commit)
        return row

    def _before_commit(self, tx: SqlTransaction, commit: Commit) -> None:
        # Every transition of an execution first locks its row: commits (and the joins of its children)
        # serialise there instead of waiting on each other's rows in opposite orders.
        if tx.execute("execution_lock", {"execution_id": commit.execution_id}).fetchone() is None:
            raise _no_execution(commit.execution_id)

    def migrate(self) -> None:
        """Bring the schema up to date under an advisory lock, so concurrent starts do not race.

        An empty database gets ``schema.sql`` and every migration recorded as applied; an older one gets
        the migrations it lacks, in order.
        """

        def apply(tx: SqlTransaction) -> None:
            tx.execute("migrate_lock")
            tx.execute("migrations_table")
            applied = {row["version"] for row in tx.execute("migrations_applied").fetchall()}
            migrations = load_migrations("postgres")
            if not applied:
                tx.db.execute(load_schema())
                pending = migrations
            else:
                pending = [(version, sql) for version, sql in migrations if version not in applied]
                for version, sql in pending:
                    logger.info("applying migration %s", version)
                    tx.db.execute(sql)
            for version, _sql in pending:
                tx.execute("migration_record", {"version": version, "now": time.time()})

        self._run(apply)

    def close(self) -> None:
        self._closed.set()
        # Wait (briefly) for a caller blocked in wait_for_work: its timeout is a poll interval.
        acquired = self._listen_lock.acquire(timeout=5.0)  # pylint: disable=consider-using-with  # timed
        try:
            self._drop_listener()
        finally:
            if acquired:
                self._listen_lock.release()
        self._generation_row.close()
        self._pool.close()

    # wake-ups ----------------------------------------------------------------------------------

    def wait_for_work(self, timeout: float) -> bool:
        """Block until new work is committed (True) or ``timeout`` seconds pass (False).

        The LISTEN connection stays subscribed between calls, so a notification that arrives while the
        caller is busy wakes its next call. When the connection fails, the call sleeps out its timeout
        (the caller's polling fallback) and the next call reconnects.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        # pylint: disable-next=consider-using-with  # a timed acquire, released in the finally below
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
            listener.execute(self.queries["work_listen"])
            self._listener = listener
        return self._listener

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(psycopg.Error):
                listener.close()


# helpers ---------------------------------------------------------------------------------------------


class _ValueReader:
    """One integer read by one prepared statement on a connection of its own, through libpq directly
    (which lets go of the interpreter lock while it waits): 0.03 ms of CPU per read against 0.15 ms
    through the pool, the connection's context and a cursor (3,000 reads of the generation row each).
    The connection opens at the first read and once more after it was lost; reads and ``close`` take
    turns under a lock."""

    _NAME = b"machinery_value"

    def __init__(self, url: str, query: str, closed: threading.Event, timeout: float) -> None:
        # Connecting waits as long as the pool does for a connection, unless the URL says how long.
        if "connect_timeout" in conninfo_to_dict(url):
            self._conninfo = url
        else:
            self._conninfo = make_conninfo(url, connect_timeout=max(2, int(timeout)))
        self._query = query.encode()
        self._closed = closed
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[TupleRow] | None = None

    def read(self) -> int:
        """The value; a :class:`StorageError` when the server cannot be reached or the query fails."""
        with self._lock:
            message = ""
            for _attempt in range(2):  # a connection found lost is replaced once
                pgconn = self._connect()
                try:
                    result = pgconn.exec_prepared(self._NAME, [])
                except psycopg.Error as exc:
                    message = str(exc)
                else:
                    if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples == 1:
                        return int(result.get_value(0, 0) or b"0")
                    if result.status == pq.ExecStatus.TUPLES_OK:
                        raise StorageError(f"PostgreSQL: {result.ntuples} rows where one was expected")
                    message = (result.error_message or pgconn.error_message).decode(errors="replace").strip()
                if pgconn.status == pq.ConnStatus.OK:
                    break  # the statement failed, not the connection
                self._drop()
            raise StorageError(f"PostgreSQL: {message}")

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _connect(self) -> pq.abc.PGconn:
        if self._closed.is_set():
            raise StorageError("PostgreSQL: the storage is closed")
        if self._conn is None:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            except psycopg.Error as exc:
                raise StorageError(f"PostgreSQL: {exc}") from exc
            prepared = conn.pgconn.prepare(self._NAME, self._query)
            if prepared.status != pq.ExecStatus.COMMAND_OK:
                conn.close()
                raise StorageError(f"PostgreSQL: {prepared.error_message.decode(errors='replace').strip()}")
            self._conn = conn
        return self._conn.pgconn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


def _configure(connection: psycopg.Connection[TupleRow]) -> None:
    """A new pool connection decodes JSON columns as the SQLite dialect does (orjson, json's fallback)."""
    set_json_loads(loads, connection)


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """Connection failures (SQLSTATE class 08, an administrator's shutdown, or none at all)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in {"57P01", "57P02", "57P03"}


#: step_apply's next item when there is none.
_NO_NEXT = dict.fromkeys(("next_branch_id", "next_kind", "next_due_at", "next_payload"))


def _prefixed(prefix: str, params: dict[str, Any]) -> dict[str, Any]:
    """A row's parameters renamed for a statement that writes rows of several kinds (``root_idx``)."""
    return {prefix + name: value for name, value in params.items()}


def _plain(commit: Commit, join_id: str | None) -> bool:
    """Whether a commit that consumes an item is a plain step: with history, at most one next item (none
    when it ends the execution), no join to open or count a child into, no child execution to start."""
    if commit.join is not None or commit.children or commit.child_executions or not commit.history:
        return False
    if commit.branch.status != ACTIVE and join_id is not None:
        return False  # a child that ended is counted into its join
    return len(commit.work) <= (0 if commit.execution_update is not None else 1)


def _no_execution(execution_id: str) -> StorageError:
    return StorageError(f"execution {execution_id} does not exist", execution_id=execution_id)
