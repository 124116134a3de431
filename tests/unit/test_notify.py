"""Waiting for an execution: the waiter is told how it ended, so the request reads nothing back."""

from __future__ import annotations

import threading
from pathlib import Path

from machinery.control.events import Orchestrator
from machinery.engine.types import Branch
from machinery.runtime.notify import Finish, Notifier
from machinery.runtime.worker import WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord
from machinery.storage.sqlite import SQLiteStorage

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
RUNNING = ExecutionRecord("e1", "w", "wf", 1, "e1", ExecutionStatus.RUNNING, {"a": 1}, 10.0)


def test_a_waiter_set_before_it_waits_does_not_wait() -> None:
    notifier = Notifier()
    waiter = notifier.register("e1")
    notifier.finished("e1", Finish(ExecutionStatus.SUCCEEDED, {"ok": 1}, None, None, 12.0))
    assert waiter.wait(60) and waiter.is_set()
    final = waiter.outcome(RUNNING)
    assert final is not None
    assert (final.status, final.output, final.finished_at, final.input) == (
        "SUCCEEDED",
        {"ok": 1},
        12.0,
        {"a": 1},
    )
    assert notifier.waited_for() == []


def test_a_waiter_times_out_and_a_bare_wake_up_says_nothing() -> None:
    notifier = Notifier()
    waiter = notifier.register("e1")
    assert not waiter.wait(0.01)
    threading.Timer(0.01, notifier.finished, args=("e1",)).start()
    assert waiter.wait(60)
    assert waiter.outcome(RUNNING) is None  # a stop or another process: read storage


class Counting(SQLiteStorage):
    """SQLite that counts the execution records and branches read back."""

    reads = 0

    def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        self.reads += 1
        return super().get_execution(execution_id)

    def get_branch(self, branch_id: str) -> Branch | None:
        self.reads += 1
        return super().get_branch(branch_id)


def run(tmp_path: Path, express: bool) -> tuple[Counting, ExecutionRecord]:
    storage = Counting(str(tmp_path / "db.sqlite"))
    storage.migrate()
    storage.save_workflow("p", {"name": "p"}, PASS, [], express, 1.0)
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0))
    orchestrator.start()
    try:
        return storage, orchestrator.start_event("p", {"a": 1}, wait=30)
    finally:
        orchestrator.stop()


def test_a_durable_execution_waited_for_is_answered_without_reading_it_back(tmp_path: Path) -> None:
    """Neither the request (its record) nor the worker's first step (record and root branch) reads what
    the start has just written."""
    storage, record = run(tmp_path, express=False)
    assert (record.status, record.output, record.input) == ("SUCCEEDED", {"ok": True}, {"a": 1})
    assert storage.reads == 0
    assert storage.get_execution(record.execution_id) == record  # what the waiter built is what is stored


def test_an_express_execution_waited_for_is_answered_without_reading_it_back(tmp_path: Path) -> None:
    storage, record = run(tmp_path, express=True)
    assert (record.status, record.output) == ("SUCCEEDED", {"ok": True})
    assert storage.reads == 0
    assert storage.get_execution(record.execution_id) == record
