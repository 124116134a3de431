"""The worker on its own: a recording storage and a fake invoker, on the test's event loop (no thread, no
socket, no sleep). What it writes, how often it reads, how it batches commits, and how it is fenced out."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from machinery.control.events import Orchestrator
from machinery.errors import LeaseLost
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import Storage
from machinery.testing import FakeInvoker, RecordingStorage, resources_called

TWO_TASKS = {
    "StartAt": "Upper",
    "States": {
        "Upper": {"Type": "Task", "Resource": "upper", "Next": "Reverse"},
        "Reverse": {"Type": "Task", "Resource": "reverse", "End": True},
    },
}


def answers() -> dict[str, Any]:
    return {
        "upper": lambda payload: {"message": payload["message"].upper()},
        "reverse": lambda payload: {"message": payload["message"][::-1]},
    }


def setup(invoker: FakeInvoker) -> tuple[RecordingStorage, Orchestrator, Worker]:
    recording = RecordingStorage()
    storage = cast(Storage, recording)
    storage.save_workflow("two", {"name": "two"}, TWO_TASKS, [], False, 1.0)
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0))
    worker = orchestrator.worker
    assert worker is not None
    worker.invoker = cast(Any, invoker)
    recording.forget()
    return recording, orchestrator, worker


def test_a_workflow_runs_to_its_end_reading_its_branch_once() -> None:
    invoker = FakeInvoker(answers())
    recording, orchestrator, worker = setup(invoker)
    record = orchestrator.start_event("two", {"message": "abc"})
    assert asyncio.run(worker.run_until_idle()) == 1  # one claim; the rest is handed straight back

    done = recording.get_execution(record.execution_id)
    assert (done.status, done.output) == (ExecutionStatus.SUCCEEDED, {"message": "CBA"})
    assert resources_called(invoker) == ["upper", "reverse"]
    # The claimed start item reads the branch; the steps the commits hand back use the branch just
    # written instead of reading it again.
    assert len(recording.calls_to("get_branch")) == 1
    assert len(recording.calls_to("commit_many")) == 3
    history = [event.type for event in recording.get_history(record.execution_id)]
    assert history[-1] == "ExecutionSucceeded" and history.count("TaskSucceeded") == 2


def test_steps_ready_in_the_same_tick_share_one_group_commit() -> None:
    invoker = FakeInvoker(answers())
    recording, orchestrator, worker = setup(invoker)
    ids = [orchestrator.start_event("two", {"message": f"m{n}"}).execution_id for n in range(5)]
    asyncio.run(worker.run_until_idle())

    batches = [len(call.args[0]) for call in recording.calls_to("commit_many")]
    assert batches == [5, 5, 5]  # start → Upper, Upper → Reverse, Reverse → end: each for all five
    for n, execution_id in enumerate(ids):
        record = recording.get_execution(execution_id)
        assert record.output == {"message": f"M{n}"[::-1]}


def test_a_worker_whose_lease_was_taken_over_finds_its_commit_refused() -> None:
    stolen: list[Any] = []
    invoker = FakeInvoker(answers())
    recording, orchestrator, worker = setup(invoker)
    # While the call is in flight, the lease expires and another worker claims the task's item.
    invoker.before_answer = lambda _effect, _identity: stolen.extend(recording.take_over_all("intruder"))
    record = orchestrator.start_event("two", {"message": "abc"})
    asyncio.run(worker.run_until_idle())

    assert [(item.kind, item.owner) for item in stolen] == [("task", "intruder")]
    assert [type(result) for result in recording.last_commit_results()] == [LeaseLost]
    # The refused commit wrote nothing: the task is scheduled, not succeeded, and the intruder owns it.
    history = [event.type for event in recording.get_history(record.execution_id)]
    assert "TaskScheduled" in history and "TaskSucceeded" not in history
    assert recording.get_execution(record.execution_id).status == ExecutionStatus.RUNNING
    assert resources_called(invoker) == ["upper"]  # the worker went no further


PARALLEL = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                {"StartAt": "U", "States": {"U": {"Type": "Task", "Resource": "upper", "End": True}}},
                {"StartAt": "R", "States": {"R": {"Type": "Task", "Resource": "reverse", "End": True}}},
            ],
        }
    },
}


def _parallel(max_in_flight: int) -> tuple[RecordingStorage, Orchestrator, Worker, FakeInvoker]:
    recording = RecordingStorage()
    storage = cast(Storage, recording)
    storage.save_workflow("both", {"name": "both"}, PARALLEL, [], False, 1.0)
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0, max_in_flight=max_in_flight))
    worker = orchestrator.worker
    assert worker is not None
    invoker = FakeInvoker(answers())
    worker.invoker = cast(Any, invoker)
    recording.forget()
    return recording, orchestrator, worker, invoker


def test_the_children_a_step_starts_are_handed_back_to_the_worker_when_they_fit() -> None:
    recording, orchestrator, worker, invoker = _parallel(max_in_flight=16)
    record = orchestrator.start_event("both", {"message": "abc"})
    assert asyncio.run(worker.run_until_idle()) == 1  # the start item only: no claim for the children

    done = recording.get_execution(record.execution_id)
    assert (done.status, done.output) == (ExecutionStatus.SUCCEEDED, [{"message": "ABC"}, {"message": "cba"}])
    assert sorted(resources_called(invoker)) == ["reverse", "upper"]
    # Only the root's branch is read (by its claimed start item, and when its children's results are
    # in): each child's was just written by the fan-out, which handed its start item back here.
    read = [call.args[0] for call in recording.calls_to("get_branch")]
    assert read == [record.execution_id] * 2


def test_a_fan_out_beyond_the_room_left_is_claimed_by_the_claim_loop() -> None:
    recording, orchestrator, worker, _invoker = _parallel(max_in_flight=2)  # the start item and one more
    record = orchestrator.start_event("both", {"message": "abc"})
    asyncio.run(worker.run_until_idle())

    done = recording.get_execution(record.execution_id)
    assert done.status == ExecutionStatus.SUCCEEDED
    # Two children did not fit beside the running start item: claimed, so their branches are read.
    children = {
        call.args[0].rsplit("/", 1)[1] for call in recording.calls_to("get_branch") if "/" in call.args[0]
    }
    assert children == {"0", "1"}


def test_a_full_worker_waits_for_a_free_slot_instead_of_polling_for_due_work() -> None:
    recording = RecordingStorage()
    storage = cast(Storage, recording)
    storage.save_workflow("two", {"name": "two"}, TWO_TASKS, [], False, 1.0)
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0, max_in_flight=2))
    worker = orchestrator.worker
    assert worker is not None
    ids = [orchestrator.start_event("two", {"message": f"m{n}"}).execution_id for n in range(6)]  # due

    async def main() -> None:
        gate, two_in_flight = asyncio.Event(), asyncio.Event()
        waiting: list[str] = []

        async def hold(effect: Any, _identity: Any) -> None:
            waiting.append(effect.resource)
            if len(waiting) == 2:
                two_in_flight.set()
            await gate.wait()

        worker.invoker = cast(Any, FakeInvoker(answers(), before_answer=hold))
        running = asyncio.create_task(worker.run())
        await two_in_flight.wait()  # both slots taken; four executions are due and wait for one
        recording.forget()
        for _ in range(200):
            await asyncio.sleep(0)  # a claim loop that polled would look at the due work every turn
        assert recording.calls_to("next_due") == [] and recording.calls_to("claim_work") == []
        gate.set()
        while any(recording.get_execution(i).status == ExecutionStatus.RUNNING for i in ids):
            await asyncio.sleep(0)  # the slots that free up wake the claim loop
        worker._stopping = True  # pylint: disable=protected-access  # stop() joins a thread; this runs here
        worker.wake()
        await running

    asyncio.run(main())
    assert {recording.get_execution(i).output["message"] for i in ids} == {f"M{n}"[::-1] for n in range(6)}
