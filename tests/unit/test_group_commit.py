"""The worker's group commit (runtime/groupcommit.py): new executions that requests start while the
worker runs are stored in the worker's transaction of that loop tick, with the steps of the tick."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from typing import Any, cast

import pytest

from machinery.control.events import Orchestrator
from machinery.errors import LeaseLost, StorageError, StorageFull
from machinery.runtime.groupcommit import GroupCommit
from machinery.runtime.starts import new_execution
from machinery.runtime.worker import WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import ClaimedStart, Commit, Storage, WorkItem
from machinery.storage.memory import MemoryStorage
from machinery.testing import FakeInvoker, RecordingStorage

ONE_TASK = {"StartAt": "Upper", "States": {"Upper": {"Type": "Task", "Resource": "upper", "End": True}}}


def _storage() -> tuple[RecordingStorage, Storage]:
    recording = RecordingStorage(MemoryStorage())
    storage = cast(Storage, recording)
    storage.save_workflow("one", {"name": "one"}, ONE_TASK, [], False, 1.0)
    recording.forget()
    return recording, storage


def _start(storage: Storage, message: str) -> ClaimedStart:
    workflow = storage.get_workflow("one")
    assert workflow is not None
    return ClaimedStart(new_execution(workflow, {"message": message}, time.time()), "me", time.time() + 30)


def test_starts_and_steps_of_one_tick_are_one_transaction() -> None:
    recording, storage = _storage()
    # A step to commit with them: an execution whose start item this worker ("me") claimed.
    running = _start(storage, "running")
    first = storage.create_execution_claimed(
        running.new.record, running.new.root, list(running.new.work), "me", time.time() + 30
    )
    fenced_out = dataclasses.replace(first[0], fence=first[0].fence + 1)
    stale = Commit(execution_id=running.new.record.execution_id, consumed=fenced_out, branch=running.new.root)
    recording.forget()
    seen: list[tuple[str, list[WorkItem] | None]] = []
    group = GroupCommit(storage, lambda start, claimed: seen.append((start.new.record.execution_id, claimed)))
    starts = [_start(storage, f"m{n}") for n in range(3)]
    waiting = [concurrent.futures.Future[list[WorkItem]]() for _ in starts]
    recording.forget()

    async def tick() -> Any:
        for start, future in zip(starts, waiting, strict=True):
            group.start(start, future)
        committed = group.commit(stale, time.time())
        await asyncio.sleep(0)  # the flush runs after the callbacks already due
        return await asyncio.gather(committed, return_exceptions=True)

    (result,) = asyncio.run(tick())
    assert recording.methods() == ["commit_group"]
    call = recording.calls_to("commit_group")[0]
    assert len(call.args[0]) == 3 and len(call.args[1]) == 1
    assert isinstance(result, LeaseLost)  # refused alone: the starts of the same transaction stand
    for start, future in zip(starts, waiting, strict=True):
        claimed = future.result(timeout=0)
        assert [item.owner for item in claimed] == ["me"]
        stored = storage.get_execution(start.new.record.execution_id)
        assert stored is not None and stored.status == ExecutionStatus.RUNNING
    assert [execution_id for execution_id, _claimed in seen] == [s.new.record.execution_id for s in starts]


def test_a_failed_transaction_fails_every_start_and_stores_none() -> None:
    recording, storage = _storage()
    recording.fail_next("commit_group", StorageFull("the disk is full"))
    seen: list[list[WorkItem] | None] = []
    group = GroupCommit(storage, lambda _start, claimed: seen.append(claimed))
    starts = [_start(storage, f"m{n}") for n in range(2)]
    waiting = [concurrent.futures.Future[list[WorkItem]]() for _ in starts]

    async def tick() -> None:
        for start, future in zip(starts, waiting, strict=True):
            group.start(start, future)
        await asyncio.sleep(0)

    asyncio.run(tick())
    for start, future in zip(starts, waiting, strict=True):
        with pytest.raises(StorageFull):
            future.result(timeout=0)
        assert storage.get_execution(start.new.record.execution_id) is None
    assert seen == [None, None]


def test_starts_queued_when_the_loop_ends_are_refused() -> None:
    _recording, storage = _storage()
    seen: list[list[WorkItem] | None] = []
    group = GroupCommit(storage, lambda _start, claimed: seen.append(claimed))
    future = concurrent.futures.Future[list[WorkItem]]()

    async def queue_then_end() -> None:
        group.start(_start(storage, "late"), future)
        group.fail_starts(StorageError("the worker stopped"))

    asyncio.run(queue_then_end())
    with pytest.raises(StorageError, match="stopped"):
        future.result(timeout=0)
    assert seen == [None]


def _running(storage: Storage) -> Orchestrator:
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0))
    assert orchestrator.worker is not None
    orchestrator.worker.invoker = cast(
        Any, FakeInvoker({"upper": lambda payload: {"message": payload["message"].upper()}})
    )
    orchestrator.start()
    return orchestrator


def test_events_started_while_the_worker_runs_are_stored_by_its_group_commit() -> None:
    recording, storage = _storage()
    orchestrator = _running(storage)
    try:
        results: dict[int, Any] = {}

        def send(n: int) -> None:
            results[n] = orchestrator.start_event("one", {"message": f"m{n}"}, wait=10)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {n: (r.status, r.output) for n, r in results.items()} == {
            n: (ExecutionStatus.SUCCEEDED, {"message": f"M{n}"}) for n in range(8)
        }
        grouped = sum(len(call.args[0]) for call in recording.calls_to("commit_group"))
        assert grouped == 8 and not recording.calls_to("create_execution_claimed")
    finally:
        orchestrator.stop()


def test_a_start_the_group_commit_could_not_store_is_the_requests_error() -> None:
    recording, storage = _storage()
    orchestrator = _running(storage)
    try:
        recording.fail_next("commit_group", StorageFull("the disk is full"))
        with pytest.raises(StorageFull):
            orchestrator.start_event("one", {"message": "lost"}, wait=10)
        assert storage.list_executions(None, None, 10, None) == []
        after = orchestrator.start_event("one", {"message": "kept"}, wait=10)
        assert after.status == ExecutionStatus.SUCCEEDED and after.output == {"message": "KEPT"}
    finally:
        orchestrator.stop()


def test_a_stopped_worker_leaves_the_start_to_the_request() -> None:
    recording, storage = _storage()
    orchestrator = _running(storage)
    orchestrator.stop()
    record = orchestrator.start_event("one", {"message": "later"})
    assert record.status == ExecutionStatus.RUNNING
    assert recording.calls_to("create_execution") and not recording.calls_to("commit_group")


# a storage that waits on the network (PostgreSQL, MongoDB) -----------------------------------------


class _Gated(RecordingStorage):
    """A blocking storage whose group transactions wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(MemoryStorage(), blocking_io=True)
        self.gate = threading.Event()
        self.transactions = threading.Semaphore(0)  # released as each one starts
        self.started = 0

    def commit_many(self, commits: Any) -> Any:
        self.started += 1
        self.transactions.release()
        self.gate.wait(10)
        return self.__getattr__("commit_many")(commits)


def _claimed_commits(storage: Storage, count: int) -> list[Commit]:
    """A step to commit for each of ``count`` new executions whose start item "me" claimed."""
    commits = []
    for n in range(count):
        start = _start(storage, f"c{n}")
        (item,) = storage.create_execution_claimed(
            start.new.record, start.new.root, list(start.new.work), "me", time.time() + 30
        )
        commits.append(
            Commit(execution_id=start.new.record.execution_id, consumed=item, branch=start.new.root)
        )
    return commits


def test_a_blocking_storage_is_written_from_a_thread_one_transaction_at_a_time() -> None:
    recording = _Gated()
    storage = cast(Storage, recording)
    storage.save_workflow("one", {"name": "one"}, ONE_TASK, [], False, 1.0)
    first, *later = _claimed_commits(storage, 3)
    recording.forget()
    executor = concurrent.futures.ThreadPoolExecutor(2)
    group = GroupCommit(storage, lambda _start, _claimed: None, executor)

    async def steps() -> tuple[list[Any], int]:
        loop = asyncio.get_running_loop()
        committed = [group.commit(first, time.time())]
        await loop.run_in_executor(None, recording.transactions.acquire, True, 10)  # being written
        committed += [group.commit(commit, time.time()) for commit in later]
        for _ in range(3):
            await asyncio.sleep(0)  # their flush runs, and waits for the transaction in flight
        assert recording.started == 1
        recording.gate.set()
        results = await asyncio.gather(*committed)
        await group.written()
        return results, threading.get_ident()

    try:
        results, loop_thread = asyncio.run(steps())
    finally:
        executor.shutdown()
    calls = recording.calls_to("commit_many")
    assert [len(call.args[0]) for call in calls] == [1, 2]  # what queued meanwhile: one transaction
    assert all(call.thread != loop_thread for call in calls)
    assert [result.execution_finished for result in results] == [False, False, False]
    assert storage.claim_work("other", time.time(), 10, 30) == []  # consumed, nothing left to claim


def test_a_blocking_storage_may_be_written_by_several_threads_at_once() -> None:
    recording = _Gated()
    storage = cast(Storage, recording)
    storage.save_workflow("one", {"name": "one"}, ONE_TASK, [], False, 1.0)
    steps = _claimed_commits(storage, 3)
    executor = concurrent.futures.ThreadPoolExecutor(4)
    group = GroupCommit(storage, lambda _start, _claimed: None, executor, concurrency=2)

    async def write() -> None:
        loop = asyncio.get_running_loop()
        committed = []
        for commit in steps[:2]:  # each finds a thread free: written at once, alone
            committed.append(group.commit(commit, time.time()))
            await loop.run_in_executor(None, recording.transactions.acquire, True, 10)
        committed.append(group.commit(steps[2], time.time()))
        for _ in range(3):
            await asyncio.sleep(0)
        assert recording.started == 2  # the third waits for one of the two
        recording.gate.set()
        await asyncio.gather(*committed)
        await group.written()

    try:
        asyncio.run(write())
    finally:
        executor.shutdown()
    assert [len(call.args[0]) for call in recording.calls_to("commit_many")][-1] == 1
    assert recording.started == 3


def test_waiters_of_a_blocking_storage_are_told_when_its_executor_is_gone() -> None:
    recording = RecordingStorage(MemoryStorage(), blocking_io=True)
    storage = cast(Storage, recording)
    storage.save_workflow("one", {"name": "one"}, ONE_TASK, [], False, 1.0)
    (commit,) = _claimed_commits(storage, 1)
    executor = concurrent.futures.ThreadPoolExecutor(1)
    executor.shutdown()
    group = GroupCommit(storage, lambda _start, _claimed: None, executor)

    async def step() -> None:
        await group.commit(commit, time.time())

    with pytest.raises(StorageError, match="stopped"):
        asyncio.run(step())


def test_a_worker_on_a_blocking_storage_stores_new_executions_in_its_group_commit() -> None:
    recording = RecordingStorage(MemoryStorage(), blocking_io=True)
    storage = cast(Storage, recording)
    storage.save_workflow("one", {"name": "one"}, ONE_TASK, [], False, 1.0)
    orchestrator = _running(storage)
    try:
        loop_thread = orchestrator.worker._loop_thread  # type: ignore[union-attr]  # pylint: disable=protected-access
        record = orchestrator.start_event("one", {"message": "hi"}, wait=10)
        assert (record.status, record.output) == (ExecutionStatus.SUCCEEDED, {"message": "HI"})
        writes = recording.calls_to("commit_group") + recording.calls_to("commit_many")
        assert writes and all(call.thread != loop_thread for call in writes)
        assert not recording.calls_to("create_execution_claimed") and not recording.calls_to("commit")
    finally:
        orchestrator.stop()


def test_how_many_group_transactions_a_storage_writes_at_once() -> None:
    from machinery.config import DEFAULTS, worker_settings
    from machinery.runtime.groupcommit import group_writers
    from machinery.storage import open_storage

    blocking = cast(Storage, RecordingStorage(MemoryStorage(), blocking_io=True))
    assert group_writers(blocking, 0) == 1  # the storage's choice (the base: one at a time)
    assert group_writers(blocking, 5) == 5  # MACHINERY_STORAGE_WRITERS
    assert group_writers(MemoryStorage(), 5) == 1  # written on the loop: one transaction per tick
    mongo = open_storage("mongomock://")
    assert group_writers(mongo, 0) > 1  # its commits are written one by one: several groups at once
    assert worker_settings(DEFAULTS).storage_writers == 0
    assert worker_settings({**DEFAULTS, "STORAGE_WRITERS": " 3 "}).storage_writers == 3
    for wrong in ("many", "-1", "65", "2.5"):
        with pytest.raises(ValueError, match=r"MACHINERY_STORAGE_WRITERS: .* is not a whole number from 0"):
            worker_settings({**DEFAULTS, "STORAGE_WRITERS": wrong})
