"""Schedules: recurrences, the catch-up and overlap policies (pure), and firing through a real worker on
an injected clock (ticks run in zero time)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from machinery.control import schedules as control
from machinery.errors import BadRequest, Conflict, InvalidEventData, LeaseLost, NotFound
from machinery.runtime.schedules import (
    PAUSED_DUE,
    CursorState,
    Recurrence,
    Schedule,
    ScheduleProblem,
    cursor_item,
    fire_schedule,
    plan_firing,
    render_input,
    tick_execution_id,
    tick_execution_name,
)
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import Storage
from machinery.storage.memory import MemoryStorage


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


T0 = epoch("2026-03-02T10:00:00+00:00")  # a Monday


# recurrences --------------------------------------------------------------------------------------------


def test_rate_ticks_count_from_the_anchor() -> None:
    rate = Recurrence("rate(5 minutes)", anchor=T0)
    assert rate.rate_seconds == 300
    assert rate.next_after(T0) == T0 + 300
    assert rate.next_after(T0 + 299.5) == T0 + 300
    assert rate.next_after(T0 + 300) == T0 + 600
    assert rate.ticks(T0, T0 + 1000, 10) == [T0 + 300, T0 + 600, T0 + 900]
    assert rate.last_ticks(T0, T0 + 1000, 2) == [T0 + 600, T0 + 900]
    assert rate.count_ticks(T0, T0 + 1000, 100) == 3
    assert Recurrence("rate(1 second)", anchor=T0).next_after(T0) == T0 + 1
    assert Recurrence("rate(2 days)").rate_seconds == 172800


def test_cron_five_and_six_fields_in_a_time_zone() -> None:
    weekdays = Recurrence("0 9 * * 1-5", "Europe/Paris")
    # 10:00 UTC on Monday is 11:00 in Paris: the next 9:00 in Paris is Tuesday's, 08:00 UTC.
    assert weekdays.next_after(T0) == epoch("2026-03-03T08:00:00+00:00")
    friday = epoch("2026-03-06T09:00:00+00:00")
    assert weekdays.next_after(friday) == epoch("2026-03-09T08:00:00+00:00")
    seconds = Recurrence("*/15 * * * * *")  # seconds first
    assert seconds.ticks(T0, T0 + 45, 10) == [T0 + 15, T0 + 30, T0 + 45]
    assert seconds.last_ticks(T0, T0 + 60, 2) == [T0 + 45, T0 + 60]
    assert Recurrence("@hourly").next_after(T0) == T0 + 3600


def test_cron_across_the_start_of_daylight_saving_time() -> None:
    # Paris skips from 02:00 to 03:00 on 2026-03-29: a 02:30 tick that day happens at 03:00 local time.
    nightly = Recurrence("30 2 * * *", "Europe/Paris")
    tick = nightly.next_after(epoch("2026-03-28T12:00:00+00:00"))
    assert tick == epoch("2026-03-29T01:00:00+00:00")
    assert nightly.next_after(tick) == epoch("2026-03-30T00:30:00+00:00")


def test_cron_across_the_end_of_daylight_saving_time() -> None:
    # Paris repeats 02:00 to 03:00 on 2026-10-25: a 02:30 tick runs once, an every-30-minutes one in both.
    nightly = Recurrence("30 2 * * *", "Europe/Paris")
    tick = nightly.next_after(epoch("2026-10-24T12:00:00+00:00"))
    assert tick == epoch("2026-10-25T00:30:00+00:00")  # 02:30 summer time
    assert nightly.next_after(tick) == epoch("2026-10-26T01:30:00+00:00")
    assert nightly.last_ticks(epoch("2026-10-24T12:00:00+00:00"), epoch("2026-10-25T03:00:00+00:00"), 5) == [
        tick
    ]
    halves = Recurrence("*/30 * * * *", "Europe/Paris")
    start = epoch("2026-10-24T23:50:00+00:00")
    assert halves.ticks(start, epoch("2026-10-25T01:30:00+00:00"), 10) == [
        epoch(f"2026-10-25T{t}:00+00:00") for t in ("00:00", "00:30", "01:00", "01:30")
    ]


@pytest.mark.parametrize(
    ("expression", "timezone", "message"),
    [
        ("rate(5 fortnights)", "UTC", "rate(<n> <unit>)"),
        ("rate(0 minutes)", "UTC", "at least 1 second"),
        ("* * * *", "UTC", "has 4"),
        ("0 0 * * * * 2026", "UTC", "has 7"),
        ("61 * * * *", "UTC", "not a valid cron expression"),
        ("0 9 * * *", "Mars/Olympus", "unknown time zone"),
        ("0 0 30 2 *", "UTC", "not a valid cron expression"),  # February 30th never comes
    ],
)
def test_invalid_recurrences_say_why(expression: str, timezone: str, message: str) -> None:
    with pytest.raises(ScheduleProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        Recurrence(expression, timezone).check()


def test_input_placeholders_and_tick_names() -> None:
    template = {"at": "<machinery.scheduled-time>", "who": ["<machinery.schedule-name>", 3], "n": None}
    assert render_input(template, "nightly", T0) == {
        "at": "2026-03-02T10:00:00Z",
        "who": ["nightly", 3],
        "n": None,
    }
    assert tick_execution_name("nightly", T0) == "nightly-20260302T100000Z"
    assert tick_execution_id("s1", T0) == tick_execution_id("s1", T0) != tick_execution_id("s1", T0 + 1)
    assert tick_execution_id("s1", T0) != tick_execution_id("s2", T0)


# planning -----------------------------------------------------------------------------------------------


def schedule_of(**fields: Any) -> Schedule:
    values: dict[str, Any] = {
        "schedule_id": "s1",
        "name": "every-minute",
        "workflow": "wf",
        "expression": "rate(1 minute)",
        "timezone": "UTC",
        "input": {},
        "overlap": "allow",
        "catch_up": 0,
        "grace_seconds": 30.0,
        "paused": False,
        "revision": 1,
        "anchor": T0,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Schedule(**values)


def state_of(after: float = T0, **fields: Any) -> CursorState:
    return CursorState("s1", "every-minute", 1, after=after, **fields)


def never_running(_execution_id: str) -> bool:
    return False


def test_a_tick_on_time_starts_and_the_cursor_moves_to_the_next() -> None:
    plan = plan_firing(schedule_of(), state_of(), T0 + 60.2, never_running)
    assert plan.ticks == [T0 + 60]
    assert plan.due == T0 + 120
    assert plan.state.after == T0 + 60 and plan.state.started == 1 and plan.state.skipped == 0


def test_catch_up_zero_skips_the_ticks_missed_during_downtime() -> None:
    # Down for ten minutes: ticks more than 30 s late were missed; the one 10 s late is on time.
    plan = plan_firing(schedule_of(), state_of(), T0 + 610, never_running)
    assert plan.ticks == [T0 + 600]
    assert plan.state.skipped == 9
    assert plan.due == T0 + 660


def test_catch_up_runs_the_latest_missed_ticks_up_to_n() -> None:
    plan = plan_firing(schedule_of(catch_up=3), state_of(), T0 + 610, never_running)
    assert plan.ticks == [T0 + 420, T0 + 480, T0 + 540, T0 + 600]
    assert plan.state.skipped == 6 and plan.state.started == 4


def test_downtime_with_no_tick_on_time_skips_and_waits_for_the_next() -> None:
    plan = plan_firing(schedule_of(), state_of(), T0 + 650, never_running)
    assert plan.ticks == [] and plan.state.skipped == 10
    assert plan.due == T0 + 660


def test_overlap_skip_drops_ticks_while_the_last_execution_runs() -> None:
    running = {"e1"}
    schedule = schedule_of(overlap="skip")
    plan = plan_firing(schedule, state_of(last_execution="e1"), T0 + 60, running.__contains__)
    assert plan.ticks == [] and plan.skipped_ticks == [T0 + 60] and plan.state.skipped == 1
    plan = plan_firing(schedule, state_of(last_execution="e0"), T0 + 60, running.__contains__)
    assert plan.ticks == [T0 + 60]


def test_overlap_skip_applies_between_ticks_caught_up_together() -> None:
    plan = plan_firing(schedule_of(overlap="skip", catch_up=2), state_of(), T0 + 610, never_running)
    # The first starts; the others find it running.
    assert plan.ticks == [T0 + 480] and plan.skipped_ticks == [T0 + 540, T0 + 600]


def test_overlap_buffer_one_keeps_one_tick_until_the_execution_ends() -> None:
    schedule = schedule_of(overlap="buffer_one")
    running = {"e1"}
    first = plan_firing(schedule, state_of(last_execution="e1"), T0 + 60, running.__contains__)
    assert first.ticks == [] and first.state.buffered == T0 + 60
    assert first.due < T0 + 120  # it looks again soon
    second = plan_firing(schedule, first.state, T0 + 120, running.__contains__)
    assert second.ticks == [] and second.state.buffered == T0 + 60 and second.skipped_ticks == [T0 + 120]
    running.clear()
    third = plan_firing(schedule, second.state, T0 + 121, running.__contains__)
    assert third.ticks == [T0 + 60] and third.state.buffered is None


def test_overlap_allow_starts_every_tick() -> None:
    plan = plan_firing(schedule_of(catch_up=2), state_of(last_execution="e1"), T0 + 610, lambda _: True)
    assert plan.ticks == [T0 + 480, T0 + 540, T0 + 600]


# firing through storage -----------------------------------------------------------------------------------


WAITING = {
    "name": "waits",
    "definition": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}},
}


@pytest.fixture
def storage() -> Iterator[Storage]:
    opened = MemoryStorage()
    try:
        yield opened
    finally:
        opened.close()


def add_workflow(storage: Storage, spec: dict[str, Any], express: bool = False) -> None:
    storage.save_workflow(spec["name"], spec, spec["definition"], [], express, T0)


def executions(storage: Storage, workflow: str = "waits") -> list[Any]:
    found = storage.get_workflow(workflow)
    assert found is not None
    return storage.list_executions(found.workflow_id, None, 1000, None)


def test_firing_a_claimed_cursor_twice_starts_the_tick_once(storage: Storage) -> None:
    add_workflow(storage, WAITING)
    schedule = control.create_schedule(
        storage, {"name": "minutely", "workflow": "waits", "expression": "rate(1 minute)"}, T0
    )
    [cursor] = storage.claim_work("w1", T0 + 61, 10, 30)
    assert cursor.kind == "schedule"
    fire_schedule(storage, cursor, T0 + 61)
    with pytest.raises(LeaseLost):
        fire_schedule(storage, cursor, T0 + 61)  # a crashed worker's repeat: fenced out
    [started] = executions(storage)
    assert started.execution_id == tick_execution_id(schedule.schedule_id, schedule.anchor + 60)
    assert started.name == tick_execution_name("minutely", schedule.anchor + 60)
    # A cursor that re-fires the same tick (its state rolled back) finds the execution and adds none.
    state = CursorState(schedule.schedule_id, "minutely", 1, after=T0)
    storage.replace_work(schedule.cursor_id, [cursor_item(state, T0 + 60)])
    [again] = [item for item in storage.claim_work("w2", T0 + 62, 10, 30) if item.kind == "schedule"]
    assert fire_schedule(storage, again, T0 + 62).created == []
    assert len(executions(storage)) == 1


def test_a_tick_the_workflow_cannot_take_is_skipped_with_the_reason(storage: Storage) -> None:
    add_workflow(storage, WAITING)
    schedule = control.create_schedule(
        storage, {"name": "orphan", "workflow": "waits", "expression": "rate(1 minute)"}, T0
    )
    found = storage.get_workflow("waits")
    assert found is not None
    storage.delete_workflow(found.workflow_id)
    [cursor] = storage.claim_work("w1", T0 + 61, 10, 30)
    assert fire_schedule(storage, cursor, T0 + 61).created == []
    state = control.schedule_json(storage, schedule, T0 + 61)["state"]
    assert state["started"] == 0 and state["skipped"] == 1 and state["last_tick_at"] is None
    assert state["last_error"] == "workflow 'waits' does not exist"
    assert state["next_run_at"] == "2026-03-02T10:02:00Z"  # it goes on ticking


def test_schedule_records_show_state_and_next_runs(storage: Storage) -> None:
    add_workflow(storage, WAITING)
    body = {"name": "nightly", "workflow": "waits", "expression": "30 2 * * *", "timezone": "Europe/Paris"}
    control.create_schedule(storage, body, T0)
    record = control.schedule_json(storage, control.find_schedule(storage, "nightly"), T0)
    assert record["kind"] == "cron" and record["overlap"] == "skip" and record["catch_up"] == 0
    assert record["next_runs"][:2] == ["2026-03-03T01:30:00Z", "2026-03-04T01:30:00Z"]
    assert record["state"]["next_run_at"] == "2026-03-03T01:30:00Z" and record["state"]["started"] == 0
    paused = control.pause_schedule(storage, "nightly", T0 + 1)
    record = control.schedule_json(storage, paused, T0 + 1)
    assert record["paused"] is True and record["next_runs"] == [] and record["revision"] == 2
    assert [item.due_at for item in storage.get_work(paused.cursor_id)] == [PAUSED_DUE]
    resumed = control.resume_schedule(storage, "nightly", T0 + 2)
    assert control.schedule_json(storage, resumed, T0 + 2)["next_runs"][0] == "2026-03-03T01:30:00Z"
    updated = control.update_schedule(storage, "nightly", {"expression": "rate(10 minutes)"}, T0 + 3)
    record = control.schedule_json(storage, updated, T0 + 3)
    assert record["kind"] == "rate" and record["next_runs"][0] == "2026-03-02T10:10:03Z"
    assert [s.name for s in control.list_schedules(storage, "waits")] == ["nightly"]
    control.delete_schedule(storage, "nightly")
    assert storage.get_work(updated.cursor_id) == []
    with pytest.raises(NotFound):
        control.find_schedule(storage, "nightly")


def test_invalid_schedules_are_refused_with_the_field(storage: Storage) -> None:
    add_workflow(storage, WAITING)
    typed = {
        "name": "typed",
        "inputs": [{"name": "n", "type": "integer"}],
        "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    add_workflow(storage, typed)
    add_workflow(storage, {**typed, "name": "fast"}, express=True)
    every = {"name": "x", "workflow": "waits", "expression": "rate(1 minute)"}
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"workflow": "waits", "expression": "rate(1 minute)"}, BadRequest, "name"),
        ({**every, "name": "a b"}, BadRequest, "name"),
        ({**every, "extra": 1}, BadRequest, "extra"),
        ({**every, "expression": "* * *"}, BadRequest, "expression"),
        ({**every, "expression": "0 * * * *", "timezone": "X/Y"}, BadRequest, "timezone"),
        ({**every, "overlap": "all"}, BadRequest, "overlap"),
        ({**every, "workflow": "nope"}, Conflict, "workflow"),
        ({**every, "workflow": "fast"}, Conflict, "workflow"),
        ({**every, "workflow": "typed", "input": {"n": "1"}}, InvalidEventData, "input/n"),
        ({**every, "callback_url": "ftp://h/"}, BadRequest, "callback_url"),
    ]
    for body, error, field in cases:
        with pytest.raises(error) as raised:
            control.create_schedule(storage, body, T0)
        assert field in [issue.field for issue in raised.value.issues], (body, raised.value.issues)  # type: ignore[attr-defined]
    control.create_schedule(
        storage, {"name": "x", "workflow": "typed", "expression": "rate(1 minute)", "input": {"n": 1}}, T0
    )
    with pytest.raises(Conflict):
        control.create_schedule(
            storage, {"name": "x", "workflow": "waits", "expression": "rate(1 minute)"}, T0
        )
    assert storage.list_resources("schedule") and len(control.list_schedules(storage)) == 1


# a real worker on an injected clock ------------------------------------------------------------------------


class Clock:
    """Time that moves only when a test says so (thread-safe reads)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def run_workers(storage: Storage) -> Iterator[Callable[[Clock, int], list[Worker]]]:
    started: list[Worker] = []

    def run(clock: Clock, count: int) -> list[Worker]:
        for _ in range(count):
            worker = Worker(storage, WorkerSettings(poll_interval=0.02, lease_seconds=30), clock=clock)
            worker.start()
            started.append(worker)
        return started

    try:
        yield run
    finally:
        for worker in started:
            worker.stop()


def advance(clock: Clock, workers: list[Worker], to: float) -> None:
    clock.now = to
    for worker in workers:
        worker.wake()


def test_workers_on_an_injected_clock_start_one_execution_per_tick(
    storage: Storage, run_workers: Callable[[Clock, int], list[Worker]]
) -> None:
    add_workflow(storage, WAITING)
    body = {
        "name": "tick",
        "workflow": "waits",
        "expression": "rate(1 minute)",
        "input": {"at": "<machinery.scheduled-time>"},
        "overlap": "allow",
    }
    schedule = control.create_schedule(storage, body, T0)
    clock = Clock(T0)
    workers = run_workers(clock, 2)
    for minute in range(1, 6):
        advance(clock, workers, T0 + minute * 60 + 0.5)
        wait_until(lambda n=minute: len(executions(storage)) == n)
    started = sorted(executions(storage), key=lambda record: record.name)
    assert [record.input for record in started] == [
        {"at": datetime.fromtimestamp(T0 + m * 60, UTC).isoformat().replace("+00:00", "Z")}
        for m in range(1, 6)
    ]
    record = control.schedule_json(storage, schedule, clock.now)
    assert record["state"]["started"] == 5 and record["state"]["last_tick_at"] == "2026-03-02T10:05:00Z"
    # The executions ran their first step (they wait in their Wait state).
    wait_until(lambda: len(storage.claim_work("probe", T0 + 10, 100, 1)) == 0)
    assert all(r.status == ExecutionStatus.RUNNING for r in started)


def test_a_dead_workers_cursor_is_fired_by_another_after_its_lease(
    storage: Storage, run_workers: Callable[[Clock, int], list[Worker]]
) -> None:
    add_workflow(storage, WAITING)
    control.create_schedule(
        storage,
        {
            "name": "tick",
            "workflow": "waits",
            "expression": "rate(1 minute)",
            "catch_up": 5,
            "overlap": "allow",
        },
        T0,
    )
    # A worker claims the cursor at the first tick and dies before firing it.
    [held] = storage.claim_work("dead", T0 + 60, 10, 30)
    assert held.kind == "schedule"
    clock = Clock(T0 + 61)
    workers = run_workers(clock, 1)
    assert executions(storage) == []
    advance(clock, workers, T0 + 200)  # the lease (30 s) has run out: ticks at 60, 120 and 180 are due
    wait_until(lambda: len(executions(storage)) == 3)
    assert sorted(r.name for r in executions(storage)) == [
        "tick-20260302T100100Z",
        "tick-20260302T100200Z",
        "tick-20260302T100300Z",
    ]


def test_pausing_stops_ticks_and_resuming_skips_what_was_missed(
    storage: Storage, run_workers: Callable[[Clock, int], list[Worker]]
) -> None:
    add_workflow(storage, WAITING)
    control.create_schedule(
        storage,
        {
            "name": "tick",
            "workflow": "waits",
            "expression": "rate(1 minute)",
            "catch_up": 10,
            "overlap": "allow",
        },
        T0,
    )
    clock = Clock(T0)
    workers = run_workers(clock, 1)
    advance(clock, workers, T0 + 60.5)
    wait_until(lambda: len(executions(storage)) == 1)
    control.pause_schedule(storage, "tick", clock.now)
    advance(clock, workers, T0 + 300.5)
    control.resume_schedule(storage, "tick", clock.now)
    advance(clock, workers, T0 + 360.5)
    wait_until(lambda: len(executions(storage)) == 2)
    assert sorted(r.name for r in executions(storage))[-1] == "tick-20260302T100600Z"
    record = control.schedule_json(storage, control.find_schedule(storage, "tick"), clock.now)
    assert record["state"]["started"] == 2


def test_overlap_buffer_one_through_a_worker(
    storage: Storage, run_workers: Callable[[Clock, int], list[Worker]]
) -> None:
    add_workflow(storage, WAITING)
    body = {"name": "tick", "workflow": "waits", "expression": "rate(1 minute)", "overlap": "buffer_one"}
    control.create_schedule(storage, body, T0)
    clock = Clock(T0)
    workers = run_workers(clock, 1)
    advance(clock, workers, T0 + 60.5)
    wait_until(lambda: len(executions(storage)) == 1)
    advance(clock, workers, T0 + 120.5)  # the first still waits: this tick is buffered
    wait_until(
        lambda: (
            control.schedule_json(storage, control.find_schedule(storage, "tick"), clock.now)["state"][
                "buffered_tick_at"
            ]
            is not None
        )
    )
    assert len(executions(storage)) == 1
    [first] = executions(storage)
    storage.finish_execution(first.execution_id, ExecutionStatus.ABORTED, clock.now)
    advance(clock, workers, T0 + 123)  # the buffer is looked at again within seconds
    wait_until(lambda: len(executions(storage)) == 2)
    assert sorted(r.name for r in executions(storage))[1] == "tick-20260302T100200Z"


def test_concurrent_workers_never_fire_a_tick_twice(storage: Storage) -> None:
    """Many threads firing whatever cursor they claim, on the same ticks: one execution each."""
    add_workflow(storage, WAITING)
    control.create_schedule(
        storage,
        {
            "name": "tick",
            "workflow": "waits",
            "expression": "rate(1 second)",
            "grace_seconds": 1000,
            "overlap": "allow",
        },
        T0,
    )
    errors: list[BaseException] = []

    def fire_loop(owner: str) -> None:
        for step in range(1, 60):
            now = T0 + step / 2
            for item in storage.claim_work(owner, now, 10, 30):
                if item.kind != "schedule":
                    continue
                try:
                    fire_schedule(storage, item, now)
                except LeaseLost:
                    pass
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

    threads = [threading.Thread(target=fire_loop, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = [r.name for r in executions(storage)]
    assert len(names) == len(set(names)) == 29
