"""Retention (machinery.runtime.retention): the worker's passes and ``purge_finished``, with an injected
clock instead of waiting 90 days."""

from __future__ import annotations

import threading
import time

from machinery.engine.types import Branch
from machinery.runtime.retention import DAY, Retention, RetentionSettings, purge_finished
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.storage.base import ExecutionRecord, Storage
from machinery.storage.memory import MemoryStorage

NOW = 1_700_000_000.0


def finished_execution(storage: Storage, name: str, finished_at: float) -> str:
    workflow, _ = storage.save_workflow("wf", {"name": "wf"}, {"StartAt": "A", "States": {}}, [], False, NOW)
    record = ExecutionRecord(
        execution_id=name,
        workflow_id=workflow.workflow_id,
        workflow_name="wf",
        workflow_version=workflow.version,
        name=name,
        status="RUNNING",
        input={},
        started_at=finished_at - 1,
    )
    storage.create_execution(record, Branch(branch_id=name, execution_id=name, container=()), [])
    assert storage.finish_execution(name, "ABORTED", finished_at)
    return name


def test_a_pass_deletes_what_is_past_retention_and_keeps_the_rest() -> None:
    storage = MemoryStorage()
    old = finished_execution(storage, "old", NOW - 91 * DAY)
    recent = finished_execution(storage, "recent", NOW - 89 * DAY)
    retention = Retention(storage, RetentionSettings(days=90, batch=10), clock=lambda: NOW)
    assert retention.sweep() == 1
    assert storage.get_execution(old) is None and storage.get_execution(recent) is not None
    assert retention.sweep() == 0
    assert not Retention(storage, RetentionSettings(days=0)).enabled


def test_purge_finished_goes_on_until_no_batch_is_full() -> None:
    storage = MemoryStorage()
    names = [finished_execution(storage, f"e{i}", NOW + i) for i in range(7)]
    assert purge_finished(storage, NOW + 5, batch=2) == 5
    assert [storage.get_execution(n) is None for n in names] == [True] * 5 + [False] * 2


def test_the_worker_runs_retention_passes() -> None:
    storage = MemoryStorage()
    old = finished_execution(storage, "old", NOW)
    deleted = threading.Event()

    original = storage.purge_executions

    def purge(before: float, limit: int) -> int:
        count = original(before, limit)
        if count:
            deleted.set()
        return count

    storage.purge_executions = purge  # type: ignore[method-assign]
    settings = WorkerSettings(
        poll_interval=0.05, retention=RetentionSettings(days=90, batch=10, interval=0.05)
    )
    worker = Worker(storage, settings, clock=lambda: NOW + 91 * DAY)
    worker.start()
    try:
        assert deleted.wait(10)
    finally:
        worker.stop()
    assert storage.get_execution(old) is None


def test_a_bare_worker_keeps_everything() -> None:
    storage = MemoryStorage()
    worker = Worker(storage, WorkerSettings(), clock=lambda: time.time() + 10_000 * DAY)
    assert not worker.retention.enabled
