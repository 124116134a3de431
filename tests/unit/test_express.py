"""The express runner on its own: a recording storage and a fake invoker, on the test's event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast

import pytest

from machinery.asl.compiler import compile_machine
from machinery.runtime.express import ExpressRunner
from machinery.runtime.notify import Notifier
from machinery.runtime.worker import WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord, Storage, new_id
from machinery.testing import FakeInvoker, RecordingStorage, TaskError, resources_called
from tests.unit.test_worker import TWO_TASKS, answers


def runner(invoker: FakeInvoker) -> tuple[RecordingStorage, ExpressRunner]:
    recording = RecordingStorage()
    express = ExpressRunner(cast(Storage, recording), WorkerSettings(), Notifier())
    express.invoker = cast(Any, invoker)
    return recording, express


def record_for(data: Any) -> ExecutionRecord:
    execution_id = new_id()
    return ExecutionRecord(
        execution_id=execution_id,
        workflow_id="wf",
        workflow_name="two",
        workflow_version=1,
        name=execution_id,
        status=ExecutionStatus.RUNNING,
        input=data,
        started_at=time.time(),
        express=True,
    )


def test_concurrent_express_executions_interleave_and_store_only_their_final_records() -> None:
    invoker = FakeInvoker(answers())
    recording, express = runner(invoker)
    machine = compile_machine(TWO_TASKS)
    records = [record_for({"message": f"m{n}"}) for n in range(20)]
    seen_running: list[bool] = []

    async def run_all() -> None:
        tasks = [asyncio.ensure_future(express.execute(record, machine)) for record in records]
        await asyncio.sleep(0)
        seen_running.extend(express.running(record.execution_id) is not None for record in records)
        await asyncio.gather(*tasks)

    asyncio.run(run_all())

    assert seen_running == [True] * 20  # readable from memory while they run
    # All twenty were in flight at once: every first call was made before any second one.
    assert resources_called(invoker) == ["upper"] * 20 + ["reverse"] * 20
    # Nothing else is written, and the twenty ended in the same tick: one transaction stored them all.
    assert recording.methods() == ["store_finished_executions"]
    assert [record.execution_id for record, _history in recording.calls[0].args[0]] == [
        record.execution_id for record in records
    ]
    for record in records:
        stored = recording.get_execution(record.execution_id)
        assert stored is not None and stored.status == ExecutionStatus.SUCCEEDED
        assert stored.output == {"message": record.input["message"].upper()[::-1]}
        assert express.running(record.execution_id) is None
        history = [event.type for event in recording.get_history(record.execution_id)]
        assert history.count("TaskSucceeded") == 2 and history[-1] == "ExecutionSucceeded"


def test_a_failing_task_stores_the_execution_failed_with_its_error() -> None:
    def refuse(_payload: Any) -> Any:
        raise TaskError("Upper.Refused", "no capitals today")

    invoker = FakeInvoker({**answers(), "upper": refuse})
    recording, express = runner(invoker)
    record = record_for({"message": "abc"})
    asyncio.run(express.execute(record, compile_machine(TWO_TASKS)))

    stored = recording.get_execution(record.execution_id)
    assert stored is not None
    assert (stored.status, stored.error, stored.cause) == (
        ExecutionStatus.FAILED,
        "Upper.Refused",
        "no capitals today",
    )
    assert resources_called(invoker) == ["upper"]


def test_on_a_blocking_storage_executions_ending_together_are_stored_in_one_call_from_a_thread() -> None:
    recording = RecordingStorage(blocking_io=True)
    express = ExpressRunner(cast(Storage, recording), WorkerSettings(), Notifier())
    express.invoker = cast(Any, FakeInvoker(answers()))
    records = [record_for({"message": f"m{n}"}) for n in range(5)]
    machine = compile_machine(TWO_TASKS)

    async def run_all() -> int:
        await asyncio.gather(*(express.execute(record, machine) for record in records))
        return threading.get_ident()

    loop_thread = asyncio.run(run_all())
    calls = recording.calls_to("store_finished_executions")
    assert sum(len(call.args[0]) for call in calls) == 5 and len(calls) < 5
    assert all(call.thread != loop_thread for call in calls)
    for record in records:
        stored = recording.get_execution(record.execution_id)
        assert stored is not None and stored.status == ExecutionStatus.SUCCEEDED


def test_a_storage_failure_at_the_end_still_releases_the_waiters() -> None:
    from machinery.errors import StorageError

    invoker = FakeInvoker(answers())
    recording, express = runner(invoker)
    record = record_for({"message": "abc"})
    waiter = express.notifier.register(record.execution_id)
    recording.fail_next("store_finished_executions", StorageError("disk on fire"))
    with pytest.raises(StorageError):
        asyncio.run(express.execute(record, compile_machine(TWO_TASKS)))
    assert waiter.is_set()
    assert express.running(record.execution_id) is None


def test_a_stop_while_the_final_record_is_stored_leaves_the_execution_as_it_ended() -> None:
    """The final record waits for the loop tick's transaction; a stop that comes meanwhile is too late:
    it answers False and the execution stays as it ended (it is not aborted after it was stored)."""
    invoker = FakeInvoker(answers())
    recording, express = runner(invoker)
    record = record_for({"message": "abc"})
    answers_seen: list[bool] = []

    async def run_and_stop() -> None:
        task = asyncio.ensure_future(express.execute(record, compile_machine(TWO_TASKS)))
        while True:  # every loop iteration, until the run queued its record for the tick's transaction
            run = express._runs.get(record.execution_id)
            if run is not None and run.ending:
                break
            await asyncio.sleep(0)
        answers_seen.append(await express.abort(record.execution_id, "Stop", "too late"))
        await task

    asyncio.run(run_and_stop())
    assert answers_seen == [False]
    stored = recording.get_execution(record.execution_id)
    assert stored is not None and stored.status == ExecutionStatus.SUCCEEDED
    assert express.running(record.execution_id) is None


def test_stopping_the_runner_stores_the_aborted_records() -> None:
    invoker = FakeInvoker(answers())
    started = threading.Event()

    async def hold(_effect: Any, _identity: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    invoker.before_answer = hold
    recording, express = runner(invoker)
    express.start()
    record = record_for({"message": "abc"})
    express.submit(record, compile_machine(TWO_TASKS))
    assert started.wait(10)
    express.stop()
    stored = recording.get_execution(record.execution_id)
    assert stored is not None and stored.status == ExecutionStatus.ABORTED
