"""Named starts (AWS's StartExecution with a ``name``) from two processes at once: one execution.

Two orchestrators on one SQLite file stand for two server processes. The interleaving that loses is
forced rather than hoped for: the second process looked for the name before the first one's start was
committed, so its lookup found nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from machinery.control.events import EventRequest, ExecutionNameTaken, Orchestrator
from machinery.runtime.worker import WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord
from machinery.storage.sqlite import SQLiteStorage

WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}


class LookedTooEarly(SQLiteStorage):
    """A process whose lookup by name ran before the other process's start was committed."""

    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        return None


def processes(tmp_path: Path) -> tuple[Orchestrator, Orchestrator]:
    url = str(tmp_path / "db.sqlite")
    first = SQLiteStorage(url)
    first.migrate()
    first.save_workflow("waits", {"name": "waits"}, WAIT, [], False, 1.0)
    settings = WorkerSettings(finish_poll_interval=0)
    return Orchestrator(first, settings, run_worker=False), Orchestrator(LookedTooEarly(url), settings, False)


def test_the_same_name_and_input_started_in_two_processes_is_one_execution(tmp_path: Path) -> None:
    one, other = processes(tmp_path)
    workflow = one.storage.get_workflow("waits")
    assert workflow is not None
    started, created = one.start_named(workflow, EventRequest({"a": 1}, None, "once"))
    again, created_again = other.start_named(workflow, EventRequest({"a": 1}, None, "once"))
    assert (created, created_again) == (True, False)
    assert again.execution_id == started.execution_id and again.status == ExecutionStatus.RUNNING
    assert [e.name for e in one.storage.list_executions(workflow.workflow_id, None, 10, None)] == ["once"]


def test_the_same_name_with_other_input_in_another_process_is_refused(tmp_path: Path) -> None:
    one, other = processes(tmp_path)
    workflow = one.storage.get_workflow("waits")
    assert workflow is not None
    started, _ = one.start_named(workflow, EventRequest({"a": 1}, None, "once"))
    with pytest.raises(ExecutionNameTaken) as taken:
        other.start_named(workflow, EventRequest({"a": 2}, None, "once"))
    assert taken.value.data["execution_id"] == started.execution_id
    assert len(one.storage.list_executions(workflow.workflow_id, None, 10, None)) == 1
