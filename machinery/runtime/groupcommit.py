"""A worker's group commit: what reaches its commit in one tick of the worker's loop is written in one
transaction (:meth:`~machinery.storage.base.Storage.commit_group`).

Two kinds of writes wait here for the tick's transaction: the steps of the executions the worker runs,
and the executions that API requests started meanwhile (:meth:`GroupCommit.start`, called from their
threads), which the worker then runs at once. The express runner's loop has one too, for the final
records of the express executions that end in the same tick (:meth:`GroupCommit.store_finished`).

On SQLite a transaction's cost is mostly the pages its commit writes, and rows written together share
pages (ids are time-ordered), so under load a new execution costs no transaction of its own and its
first pages are shared with the tick's other writes.

A storage that waits on the network (:attr:`~machinery.storage.base.Storage.blocking_io`: PostgreSQL,
MongoDB) is written from threads, with up to ``concurrency`` transactions at once (see
:func:`group_writers`): a step that finds a thread free is written at once (alone, at light load), and
what arrives while all of them write waits for the first to end, so under load a transaction carries
what many ticks gathered and costs one ``BEGIN``/``COMMIT`` and one thread hand-off for all of it, while
a distant database's round trips still overlap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from machinery.engine.types import HistoryEvent
from machinery.errors import StorageError
from machinery.storage.base import ClaimedStart, Commit, CommitResult, ExecutionRecord, Storage, WorkItem

logger = logging.getLogger(__name__)

#: A step waiting for the tick's transaction: the commit, its time and who waits for the result.
_PendingCommit = tuple[Commit, float, "asyncio.Future[CommitResult]"]
#: A new execution waiting for it, and the future its request thread waits on.
_PendingStart = tuple[ClaimedStart, "concurrent.futures.Future[list[WorkItem]]"]
#: An express execution's final record and history waiting for it.
_PendingFinish = tuple[ExecutionRecord, Sequence[HistoryEvent], "asyncio.Future[None]"]
#: What a transaction gave each part (its result or its error): express records, new executions, steps.
_Outcome = tuple[list[Any], list[Any], list[Any]]


class GroupCommit:
    """The writes of one worker's loop tick. Every method but :meth:`start`'s caller runs on the loop.

    :param started: called on the loop for each new execution once the transaction ended, with the work
        it claimed (``None`` when storing it failed), before its request thread is told.
    :param executor: where a blocking storage's transactions run (``None``: the loop's default executor).
    :param concurrency: how many of them may be written at once.
    """

    def __init__(
        self,
        storage: Storage,
        started: Callable[[ClaimedStart, list[WorkItem] | None], None],
        executor: concurrent.futures.Executor | None = None,
        concurrency: int = 1,
    ) -> None:
        self.storage = storage
        self._started = started
        self._executor = executor
        self._concurrency = max(1, concurrency)
        self._commits: list[_PendingCommit] = []
        self._starts: list[_PendingStart] = []
        self._finished: list[_PendingFinish] = []
        self._scheduled = False
        #: The transactions threads are writing (blocking storages).
        self._writing: set[asyncio.Future[_Outcome]] = set()

    def commit(self, commit: Commit, now: float) -> asyncio.Future[CommitResult]:
        """Queue a step's commit for this tick's transaction; its result, or the error it failed with."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CommitResult] = loop.create_future()
        self._commits.append((commit, now, future))
        self._schedule(loop)
        return future

    def start(self, start: ClaimedStart, future: concurrent.futures.Future[list[WorkItem]]) -> None:
        """Queue a new execution (scheduled on the loop by a request's thread); ``future`` gets the work
        it claimed once stored, or the error storing it failed with."""
        self._starts.append((start, future))
        self._schedule(asyncio.get_running_loop())

    def store_finished(
        self, execution: ExecutionRecord, history: Sequence[HistoryEvent]
    ) -> asyncio.Future[None]:
        """Queue an express execution's final record and history for this tick's transaction."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._finished.append((execution, history, future))
        self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            # Runs after every callback already due in this iteration: the steps woken by the same
            # replies, and the starts that arrived with them, join this transaction.
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued, in one transaction, and tell everyone who waits (a blocking storage:
        in a thread, once fewer than ``concurrency`` transactions are being written)."""
        self._scheduled = False
        if len(self._writing) >= self._concurrency or not (self._commits or self._starts or self._finished):
            return
        finished, self._finished = self._finished, []
        commits, self._commits = self._commits, []
        starts, self._starts = self._starts, []
        if not self.storage.blocking_io:
            self._settle_all(finished, starts, commits, self._write(finished, starts, commits))
            return
        loop = asyncio.get_running_loop()
        try:
            writing = loop.run_in_executor(self._executor, self._write, finished, starts, commits)
        except RuntimeError:  # the executor was shut down: the worker is stopping
            writing = loop.create_future()
            writing.cancel()
        self._writing.add(writing)
        writing.add_done_callback(functools.partial(self._written, finished, starts, commits))

    def _written(
        self,
        finished: list[_PendingFinish],
        starts: list[_PendingStart],
        commits: list[_PendingCommit],
        writing: asyncio.Future[_Outcome],
    ) -> None:
        """A thread's transaction ended: tell its waiters, then write what queued up meanwhile."""
        if writing.cancelled():  # the executor shut down before it ran
            error = StorageError("the worker stopped before this was stored")
            outcome: _Outcome = ([error] * len(finished), [error] * len(starts), [error] * len(commits))
        else:
            outcome = writing.result()  # _write returns every error as a part's result
        self._writing.discard(writing)
        self._settle_all(finished, starts, commits, outcome)
        self.flush()

    async def written(self) -> None:
        """Wait until no transaction is being written in a thread."""
        while self._writing:
            await asyncio.wait(set(self._writing))

    def _write(
        self, finished: list[_PendingFinish], starts: list[_PendingStart], commits: list[_PendingCommit]
    ) -> _Outcome:
        """The storage calls (express records first, then the new executions and the steps); a part's
        result or the error it failed with, for each part."""
        stored: list[Exception | None] = []
        if finished:
            try:
                stored = list(
                    self.storage.store_finished_executions(
                        [(record, history) for record, history, _f in finished]
                    )
                )
            except Exception as exc:  # pylint: disable=broad-exception-caught  # the transaction failed: every part did
                stored = [exc] * len(finished)
        created: list[Any] = []
        results: list[Any] = []
        if commits or starts:
            pairs = [(commit, now) for commit, now, _future in commits]
            try:
                if starts:
                    created, results = self.storage.commit_group([start for start, _f in starts], pairs)
                else:
                    results = list(self.storage.commit_many(pairs))
            except Exception as exc:  # pylint: disable=broad-exception-caught  # the transaction failed: every part did
                created, results = [exc] * len(starts), [exc] * len(commits)
        return stored, created, results

    def _settle_all(
        self,
        finished: list[_PendingFinish],
        starts: list[_PendingStart],
        commits: list[_PendingCommit],
        outcome: _Outcome,
    ) -> None:
        stored, created, results = outcome
        for (_record, _history, stored_future), result in zip(finished, stored, strict=True):
            _settle(stored_future, result)
        for (start, waiting), result in zip(starts, created, strict=True):
            self._started(start, None if isinstance(result, Exception) else result)
            _settle(waiting, result)
        for (_commit, _now, committed), result in zip(commits, results, strict=True):
            _settle(committed, result)

    def fail_starts(self, error: Exception) -> None:
        """Refuse the queued new executions (the loop is ending: nothing will write them)."""
        starts, self._starts = self._starts, []
        for start, waiting in starts:
            self._started(start, None)
            _settle(waiting, error)


def group_writers(storage: Storage, setting: int) -> int:
    """How many group transactions to write at once: ``setting`` (``MACHINERY_STORAGE_WRITERS``) when
    it is not 0, else the storage's choice; 1 for a storage written on the loop."""
    if not storage.blocking_io:
        return 1
    return setting if setting > 0 else storage.group_writers()


def _settle(future: asyncio.Future[Any] | concurrent.futures.Future[Any], result: Any) -> None:
    """Tell whoever waits on ``future`` its part's result, or the error (an ``Exception``) it failed with."""
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
