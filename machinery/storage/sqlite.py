"""SQLite backend: the embedded default (one file, WAL, ``IMMEDIATE`` write transactions).

Only the dialect's hooks live here (connections, transactions, migrations, how JSON is stored); every
storage operation is :class:`machinery.storage.sqlcommon.SqlStorage`'s (API tokens and retention:
:mod:`machinery.storage.sqlextras`).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from machinery.errors import StorageError, StorageFull
from machinery.storage.queries import load_migrations
from machinery.storage.sqlextras import SqlExtras
from machinery.storage.sqltx import SqlTransaction, dumps, loads

_T = TypeVar("_T")

#: Seconds a cached definition may be trusted on the shared counter alone (see ``_generation_now``).
GENERATION_RECHECK_SECONDS = 1.0
_COUNTER = struct.Struct("<Q")


class SQLiteStorage(SqlExtras):
    """One connection guarded by a lock: SQLite serialises writers anyway, and this avoids
    ``database is locked`` retries inside one process. Other processes are handled by ``busy_timeout``.
    """

    dialect = "sqlite"
    _commit_errors = (sqlite3.IntegrityError, sqlite3.DataError)

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA busy_timeout=30000")
            _enable_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open SQLite database {path!r}: {exc}") from exc
        self._lock = threading.RLock()
        self._data_version: int | None = None
        # Writers of every process on this file queue on an OS lock first, so that they wait in the kernel
        # (woken the moment the holder commits) instead of in SQLite's busy handler, which sleeps 1, 2,
        # 5, 10... ms between tries. (Reads stay on this connection: per-thread WAL reader connections
        # were measured slower, 41-76 against 142 executions/s: their busy waits sleep the same way.)
        self._file_backed = path != ":memory:" and not path.startswith("file::memory:")
        self._writer_lock = (
            os.open(f"{path}-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if self._file_backed
            else None
        )
        # The lock file's first 8 bytes, mapped shared: a counter every process moves after it committed
        # a change of a definition, under the writer lock. Reading it costs no statement and no lock, so
        # a lookup of a cached service or workflow is free until some process changes one.
        self._counter: mmap.mmap | None = None
        self._counter_seen: int | None = None
        self._counter_checked_at = float("-inf")
        self._bump_counter = False
        if self._writer_lock is not None:
            if os.fstat(self._writer_lock).st_size < _COUNTER.size:
                os.ftruncate(self._writer_lock, _COUNTER.size)  # only ever grown: zeros are a valid count
            self._counter = mmap.mmap(self._writer_lock, _COUNTER.size)

    # hooks -------------------------------------------------------------------------------------

    def _run(self, body: Callable[[SqlTransaction], _T], write: bool = True) -> _T:
        with self._lock:
            tx = SqlTransaction(self, self._db)
            if not write:
                try:
                    return body(tx)
                except sqlite3.Error as exc:
                    raise _storage_error(exc) from exc
            with self._writing():
                return self._write(tx, body)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the processes' writer lock (see ``__init__``) around one write transaction."""
        if self._writer_lock is None:
            yield
            return
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def _write(self, tx: SqlTransaction, body: Callable[[SqlTransaction], _T]) -> _T:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _storage_error(exc) from exc
        try:
            result = body(tx)
        except sqlite3.Error as exc:
            self._rollback()
            raise _storage_error(exc) from exc
        except BaseException:
            self._rollback()
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise _storage_error(exc) from exc
        if self._bump_counter:
            self._bump_counter = False
            if self._counter is not None:  # still under the writer lock: no two processes move it at once
                _COUNTER.pack_into(self._counter, 0, _COUNTER.unpack_from(self._counter)[0] + 1)
        return result

    def _rollback(self) -> None:
        self._bump_counter = False
        # After SQLITE_FULL (and some I/O errors) SQLite has already rolled the transaction back itself,
        # and a ROLLBACK would fail with "no transaction is active".
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _doc(self, value: Any) -> Any:
        return dumps(value)

    def _from_doc(self, column: Any) -> Any:
        return loads(column)

    def _flag(self, value: bool) -> object:
        return int(value)

    def _placeholder(self, name: str) -> str:
        return f":{name}"

    def _id_list(self, ids: Sequence[int | str]) -> object:
        return dumps(list(ids))

    def _definitions_changed(self, tx: SqlTransaction) -> None:
        super()._definitions_changed(tx)
        self._bump_counter = True  # once the transaction has committed (``_write``)

    def _generation_now(self) -> int | None:
        # Nothing to read while the shared counter stands still, but once a second at least: a process
        # killed between its commit and the counter's move leaves caches stale for that long at most.
        counter = self._counter
        if counter is not None:
            value = _COUNTER.unpack_from(counter)[0]
            now = time.monotonic()
            if value == self._counter_seen and now - self._counter_checked_at < GENERATION_RECHECK_SECONDS:
                return None
            self._counter_seen, self._counter_checked_at = value, now
        # data_version moves only when another connection commits: the generation row is read then.
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return None
            self._data_version = version
        return super()._generation_now()

    def _no_limit(self, limit: int | None) -> int | None:
        return -1 if limit is None else limit

    # lifecycle ---------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the migrations this database lacks, in one ``IMMEDIATE`` transaction.

        Which migrations are applied is read inside the write transaction, so processes starting together
        on a fresh file serialise on SQLite's write lock: the first applies them, the others find them
        applied. (``executescript`` would commit whatever is open first, so each migration is split into
        its statements and run inside the transaction; SQLite's DDL is transactional.)
        """
        with self._lock, self._writing():
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite: cannot start migrating: {exc}") from exc
            version = 0
            try:
                self._db.execute(self.queries["migrations_table"])
                applied = {row["version"] for row in self._db.execute(self.queries["migrations_applied"])}
                for version, sql in load_migrations("sqlite"):
                    if version in applied:
                        continue
                    for statement in _statements(sql):
                        self._db.execute(statement)
                    record = {"version": version, "now": time.time()}
                    self._db.execute(self.queries["migration_record"], record)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise StorageError(f"migration {version} failed: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._counter is not None:
                self._counter.close()
                self._counter = None
            if self._writer_lock is not None:
                os.close(self._writer_lock)
                self._writer_lock = None


def _enable_wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch the file to WAL. Processes opening a fresh file together race to switch it, and the loser
    may get ``database is locked`` without SQLite's busy handler being consulted: it tries again."""
    deadline = time.monotonic() + patience
    delay = 0.001
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _statements(script: str) -> list[str]:
    """A script's statements, each complete (``sqlite3.complete_statement`` knows about triggers)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.strip(";").strip() and not _only_comments(statement):
                found.append(statement)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        found.append(pending.strip())
    return found


def _only_comments(text: str) -> bool:
    return all(
        not line.strip() or line.strip().startswith("--") for line in text.strip().rstrip(";").splitlines()
    )


def _storage_error(exc: sqlite3.Error) -> StorageError:
    """A driver error as ours: a full disk (or ``max_page_count``) is :class:`StorageFull` (507)."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StorageFull(f"SQLite: {exc}: free some space; nothing was written")
    return StorageError(f"SQLite: {exc}")
