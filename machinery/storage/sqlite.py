"""SQLite backend: the embedded default (one file, WAL, ``IMMEDIATE`` write transactions)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from machinery.engine.types import Branch, HistoryEvent
from machinery.errors import StorageError
from machinery.jsontext import dumps_compact
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

_Q = load_queries("sqlite")


def _dumps(value: Any) -> str:
    return dumps_compact(value)


class SQLiteStorage(Storage):
    """One connection guarded by a lock: SQLite serialises writers anyway, and this avoids
    ``database is locked`` retries inside one process. Other processes are handled by ``busy_timeout``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._lock = threading.RLock()

    # plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite: {exc}") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise StorageError(f"SQLite: {exc}") from exc

    def _read(self, query: str, **params: Any) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(_Q[query], params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite: {exc}") from exc

    def migrate(self) -> None:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
            )
            applied = {row[0] for row in self._db.execute("SELECT version FROM schema_migrations")}
            for version, sql in load_migrations("sqlite"):
                if version in applied:
                    continue
                # executescript commits whatever is open first, so the whole migration is one script.
                script = (
                    f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO schema_migrations (version, applied_at) "
                    f"VALUES ({int(version)}, {time.time()!r});\nCOMMIT;"
                )
                try:
                    self._db.executescript(script)
                except sqlite3.Error as exc:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise StorageError(f"migration {version} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # services ----------------------------------------------------------------------------------

    def _service(self, row: sqlite3.Row) -> ServiceRecord:
        body = json.loads(row["body"])
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
        body = _dumps({"address": address, "inputs": inputs, "outputs": outputs, "settings": settings})
        with self._write() as db:
            row = db.execute(_Q["service_by_ref"], {"ref": ref or name}).fetchone()
            if row is None:
                service_id = new_id()
                db.execute(
                    _Q["service_insert"], {"service_id": service_id, "name": name, "body": body, "now": now}
                )
                created = True
            else:
                service_id = row["service_id"]
                db.execute(
                    _Q["service_update"], {"service_id": service_id, "name": name, "body": body, "now": now}
                )
                created = False
            stored = db.execute(_Q["service_by_ref"], {"ref": service_id}).fetchone()
        return self._service(stored), created

    def get_service(self, ref: str) -> ServiceRecord | None:
        rows = self._read("service_by_ref", ref=ref)
        return self._service(rows[0]) if rows else None

    def list_services(self) -> list[ServiceRecord]:
        return [self._service(row) for row in self._read("services_all")]

    def delete_service(self, service_id: str) -> None:
        with self._write() as db:
            db.execute(_Q["service_delete"], {"service_id": service_id})

    # workflows ---------------------------------------------------------------------------------

    def _workflow(self, head: sqlite3.Row, version_row: sqlite3.Row, version: int) -> WorkflowRecord:
        return WorkflowRecord(
            workflow_id=head["workflow_id"],
            name=head["name"],
            version=version,
            spec=json.loads(version_row["spec"]),
            definition=json.loads(version_row["definition"]),
            services=json.loads(version_row["services"]),
            express=bool(version_row["express"]),
            created_at=version_row["created_at"],
            updated_at=head["updated_at"],
        )

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
        with self._write() as db:
            head = db.execute(_Q["workflow_by_ref"], {"ref": ref or name}).fetchone()
            if head is None:
                workflow_id = new_id()
                db.execute(_Q["workflow_insert"], {"workflow_id": workflow_id, "name": name, "now": now})
                created = True
            else:
                workflow_id = head["workflow_id"]
                db.execute(_Q["workflow_bump"], {"workflow_id": workflow_id, "name": name, "now": now})
                created = False
            head = db.execute(_Q["workflow_by_ref"], {"ref": workflow_id}).fetchone()
            db.execute(
                _Q["version_insert"],
                {
                    "workflow_id": workflow_id,
                    "version": head["version"],
                    "spec": _dumps(spec),
                    "definition": _dumps(definition),
                    "services": _dumps(services),
                    "express": int(express),
                    "now": now,
                },
            )
            version_row = db.execute(
                _Q["version_get"], {"workflow_id": workflow_id, "version": head["version"]}
            ).fetchone()
        return self._workflow(head, version_row, head["version"]), created

    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowRecord | None:
        heads = self._read("workflow_by_ref", ref=ref)
        if not heads:
            return None
        head = heads[0]
        wanted = head["version"] if version is None else version
        rows = self._read("version_get", workflow_id=head["workflow_id"], version=wanted)
        return self._workflow(head, rows[0], wanted) if rows else None

    def list_workflows(self) -> list[WorkflowRecord]:
        found = []
        for head in self._read("workflows_all"):
            rows = self._read("version_get", workflow_id=head["workflow_id"], version=head["version"])
            found.append(self._workflow(head, rows[0], head["version"]))
        return found

    def list_versions(self, workflow_id: str) -> list[WorkflowRecord]:
        heads = self._read("workflow_by_ref", ref=workflow_id)
        if not heads:
            return []
        return [
            self._workflow(heads[0], row, row["version"])
            for row in self._read("versions_all", workflow_id=workflow_id)
        ]

    def delete_workflow(self, workflow_id: str) -> None:
        # Versions stay: executions that pinned them keep their definition readable.
        with self._write() as db:
            db.execute(_Q["workflow_delete"], {"workflow_id": workflow_id})

    def workflows_using(self, service_name: str) -> list[str]:
        return [w.name for w in self.list_workflows() if service_name in w.services]

    # executions --------------------------------------------------------------------------------

    def _execution(self, row: sqlite3.Row) -> ExecutionRecord:
        return ExecutionRecord(
            execution_id=row["execution_id"],
            workflow_id=row["workflow_id"],
            workflow_name=row["workflow_name"],
            workflow_version=row["workflow_version"],
            name=row["name"],
            status=ExecutionStatus(row["status"]),
            input=json.loads(row["input"]),
            output=None if row["output"] is None else json.loads(row["output"]),
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

    def _insert_execution(self, db: sqlite3.Connection, execution: ExecutionRecord) -> None:
        db.execute(
            _Q["execution_insert"],
            {
                "execution_id": execution.execution_id,
                "workflow_id": execution.workflow_id,
                "workflow_name": execution.workflow_name,
                "workflow_version": execution.workflow_version,
                "name": execution.name,
                "status": execution.status,
                "input": _dumps(execution.input),
                "output": None if execution.output is None else _dumps(execution.output),
                "error": execution.error,
                "cause": execution.cause,
                "started_at": execution.started_at,
                "finished_at": execution.finished_at,
                "callback_url": execution.callback_url,
                "express": int(execution.express),
                "parent_execution_id": execution.parent_execution_id,
            },
        )

    def create_execution(self, execution: ExecutionRecord, root: Branch, work: Sequence[WorkItem]) -> None:
        with self._write() as db:
            self._insert_execution(db, execution)
            self._put_branch(db, root, None)
            self._insert_work(db, work)

    def create_execution_claimed(
        self,
        execution: ExecutionRecord,
        root: Branch,
        work: Sequence[WorkItem],
        owner: str,
        lease_until: float,
    ) -> list[WorkItem]:
        with self._write() as db:
            self._insert_execution(db, execution)
            self._put_branch(db, root, None)
            return self._insert_work(db, work, (owner, lease_until, execution.started_at))

    def store_finished_execution(self, execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> None:
        with self._write() as db:
            self._insert_execution(db, execution)
            self._append_history(db, execution.execution_id, history)
            if execution.callback_url:
                self._insert_work(db, [webhook_item(execution.execution_id, execution.finished_at or 0.0)])

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
        clauses, params = [], []
        if parent_id:
            clauses.append("parent_execution_id = ?")
            params.append(parent_id)
        else:
            clauses.append("parent_execution_id IS NULL")
        if workflow_id:
            clauses.append("workflow_id = ?")
            params.append(workflow_id)
        if status:
            clauses.append("status = ?")
            params.append(status)
        if after:
            clauses.append("seq < (SELECT seq FROM executions WHERE execution_id = ?)")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # The clauses are fixed strings; only the values are parameters.
        sql = f"SELECT * FROM executions {where} ORDER BY seq DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, [*params, limit]).fetchall()
        return [self._execution(row) for row in rows]

    def get_history(
        self, execution_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[StoredEvent]:
        query, bound = history_page_query(after, reverse)
        rows = self._read(query, execution_id=execution_id, after=bound, limit=-1 if limit is None else limit)
        return [
            StoredEvent(row["event_id"], row["type"], row["timestamp"], json.loads(row["details"]))
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
        with self._write() as db:
            return end_execution(_Transaction(self, db), execution_id, status, now, error, cause)

    # branches and work ---------------------------------------------------------------------------

    def _put_branch(self, db: sqlite3.Connection, branch: Branch, join_id: str | None) -> None:
        db.execute(
            _Q["branch_upsert"],
            {
                "branch_id": branch.branch_id,
                "execution_id": branch.execution_id,
                "join_id": join_id,
                "idx": branch.index,
                "status": branch.status,
                "body": _dumps(branch.to_json()),
            },
        )

    def get_branch(self, branch_id: str) -> Branch | None:
        rows = self._read("branch_get", branch_id=branch_id)
        return _branch(rows[0]) if rows else None

    def child_results(self, join_id: str) -> list[Branch]:
        return [_branch(row) for row in self._read("branches_of_join", join_id=join_id)]

    def _insert_work(
        self,
        db: sqlite3.Connection,
        work: Sequence[WorkItem],
        claim: tuple[str, float, float] | None = None,
    ) -> list[WorkItem]:
        """Insert work; with ``claim = (owner, lease_until, now)`` the items due by ``now`` are inserted
        claimed by ``owner`` and returned."""
        claimed: list[WorkItem] = []
        unclaimed: list[dict[str, Any]] = []
        for item in work:
            params = {
                "execution_id": item.execution_id,
                "branch_id": item.branch_id,
                "kind": item.kind,
                "due_at": item.due_at,
                "payload": None if item.payload is None else _dumps(item.payload),
            }
            if claim is not None and item.due_at <= claim[2]:
                owner, lease_until, _now = claim
                row = db.execute(
                    _Q["work_insert_claimed"], {**params, "owner": owner, "lease_until": lease_until}
                ).fetchone()
                claimed.append(replace(item, work_id=row[0], owner=owner, fence=1))
            else:
                unclaimed.append(params)
        if unclaimed:
            db.executemany(_Q["work_insert"], unclaimed)
        return claimed

    def add_work(self, work: Sequence[WorkItem]) -> None:
        with self._write() as db:
            self._insert_work(db, work)

    def claim_work(self, owner: str, now: float, limit: int, lease_seconds: float) -> list[WorkItem]:
        with self._write() as db:
            rows = db.execute(
                _Q["work_claim"],
                {"owner": owner, "lease_until": now + lease_seconds, "now": now, "limit": limit},
            ).fetchall()
        return [
            WorkItem(
                execution_id=row["execution_id"],
                branch_id=row["branch_id"],
                kind=row["kind"],
                due_at=row["due_at"],
                payload=None if row["payload"] is None else json.loads(row["payload"]),
                work_id=row["work_id"],
                owner=row["owner"],
                fence=row["fence"],
            )
            for row in rows
        ]

    def renew_leases(self, owner: str, work_ids: Sequence[int], until: float) -> None:
        with self._write() as db:
            db.executemany(
                _Q["work_renew"], [{"work_id": w, "owner": owner, "until": until} for w in work_ids]
            )

    def release_leases(self, owner: str | None = None) -> int:
        with self._write() as db:
            if owner is None:
                return db.execute(_Q["work_release_all"]).rowcount
            return db.execute(_Q["work_release_owner"], {"owner": owner}).rowcount

    def next_due(self) -> float | None:
        rows = self._read("work_next_due")
        value = rows[0][0] if rows else None
        return None if value is None else float(value)

    def complete_work(self, item: WorkItem, reschedule_at: float | None = None) -> None:
        params = {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}
        with self._write() as db:
            if reschedule_at is None:
                db.execute(_Q["work_consume"], params)
            else:
                db.execute(_Q["work_reschedule"], {**params, "due_at": reschedule_at})

    def extend_heartbeat(self, execution_id: str, branch_id: str, token: str, due: float) -> bool:
        params = {
            "execution_id": execution_id,
            "branch_id": branch_id,
            "token": token,
            "error": HEARTBEAT_TIMEOUT,
            "due_at": due,
        }
        with self._write() as db:
            return bool(db.execute(_Q["work_extend_heartbeat"], params).rowcount)

    def _append_history(
        self, db: sqlite3.Connection, execution_id: str, history: Sequence[HistoryEvent]
    ) -> None:
        if not history:
            return
        last = db.execute(
            _Q["execution_reserve_events"], {"execution_id": execution_id, "count": len(history)}
        ).fetchone()[0]
        first = last - len(history) + 1
        db.executemany(
            _Q["history_insert"],
            [
                {
                    "execution_id": execution_id,
                    "event_id": first + offset,
                    "type": event.type,
                    "timestamp": event.timestamp,
                    "details": _dumps(event.details),
                }
                for offset, event in enumerate(history)
            ],
        )

    def commit(self, commit: Commit, now: float) -> CommitResult:
        with self._write() as db:
            return apply_commit(_Transaction(self, db), commit, now)

    # lookups by name and resources ---------------------------------------------------------------

    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        rows = self._read("execution_by_name", workflow_name=workflow_name, name=name)
        return self._execution(rows[0]) if rows else None

    def put_resource(self, kind: str, key: str, body: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(_Q["resource_put"], {"kind": kind, "key": key, "body": _dumps(body)})

    def insert_resource(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        with self._write() as db:
            params = {"kind": kind, "key": key, "body": _dumps(body)}
            return bool(db.execute(_Q["resource_insert"], params).rowcount)

    def get_resource(self, kind: str, key: str) -> dict[str, Any] | None:
        rows = self._read("resource_get", kind=kind, key=key)
        return dict(json.loads(rows[0]["body"])) if rows else None

    def list_resources(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        return [
            (row["key"], json.loads(row["body"]))
            for row in self._read("resource_list", kind=kind, prefix=prefix)
        ]

    def delete_resource(self, kind: str, key: str) -> bool:
        with self._write() as db:
            return bool(db.execute(_Q["resource_delete"], {"kind": kind, "key": key}).rowcount)

    def take_resource(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
        with self._write() as db:
            row = db.execute(_Q["resource_take"], {"kind": kind, "prefix": prefix}).fetchone()
        return (row["key"], json.loads(row["body"])) if row else None

    # redrive -------------------------------------------------------------------------------------

    def get_join(self, join_id: str) -> JoinState | None:
        rows = self._read("join_get", join_id=join_id)
        return join_state(join_id, dict(rows[0])) if rows else None

    def redrive_execution(self, plan: RedrivePlan, now: float) -> bool:
        try:
            with self._write() as db:
                apply_redrive(_Transaction(self, db), plan, now)
        except RedriveConflict:
            return False
        return True

    def update_join_limits(
        self, join_id: str, max_concurrency: int, tolerated_count: int, tolerated_pct: float, now: float
    ) -> bool:
        with self._write() as db:
            return apply_join_limits(
                _Transaction(self, db), join_id, max_concurrency, tolerated_count, tolerated_pct, now
            )


class _Transaction(SqlTransaction):
    """SQLite's primitives for :mod:`machinery.storage.sqlcommon`, inside one open transaction."""

    def __init__(self, storage: SQLiteStorage, db: sqlite3.Connection) -> None:
        self.storage = storage
        self.db = db

    def execute(self, query: str, params: dict[str, Any]) -> sqlite3.Cursor:
        return self.db.execute(_Q[query], params)

    def json(self, value: Any) -> Any:
        return None if value is None else _dumps(value)

    def closed_value(self, closed: bool) -> object:
        return int(closed)

    def consume(self, item: WorkItem) -> bool:
        params = {"work_id": item.work_id, "fence": item.fence, "owner": item.owner}
        return bool(self.db.execute(_Q["work_consume"], params).rowcount)

    def put_branches(self, branches: Sequence[Branch], join_id: str | None) -> None:
        for branch in branches:
            self.storage._put_branch(self.db, branch, join_id)

    def append_history(self, execution_id: str, history: Sequence[HistoryEvent]) -> None:
        self.storage._append_history(self.db, execution_id, history)

    def insert_execution(self, record: ExecutionRecord) -> None:
        self.storage._insert_execution(self.db, record)

    def insert_work(self, work: Sequence[WorkItem], claim: Claim | None = None) -> list[WorkItem]:
        return self.storage._insert_work(self.db, work, claim)


def _branch(row: sqlite3.Row) -> Branch:
    # Cancelling updates only the status column (one UPDATE for a whole join or execution): it wins.
    branch = Branch.from_json(json.loads(row["body"]))
    branch.status = row["status"]
    return branch
