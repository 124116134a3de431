"""Schedules on PostgreSQL: two workers on an injected clock start exactly one execution per tick and honour
the overlap and catch-up policies; ``machinery worker`` processes killed with SIGKILL hand the schedule on
without a tick lost or doubled."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from machinery.control import schedules as control
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.postgres import PostgresStorage
from tests.acceptance.cluster import Api, Cluster

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000.0
WAITING = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 86400, "End": True}}}
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def two_workers(postgres_url: str) -> Iterator[tuple[PostgresStorage, Clock, list[Worker]]]:
    clock = Clock(T0)
    storages = [PostgresStorage(postgres_url, pool_min_size=1, pool_max_size=4) for _ in range(2)]
    workers = [Worker(s, WorkerSettings(poll_interval=0.05, lease_seconds=30), clock=clock) for s in storages]
    for worker in workers:
        worker.start()
    try:
        yield storages[0], clock, workers
    finally:
        for worker in workers:
            worker.stop()
        for storage in storages:
            storage.close()


def names(storage: PostgresStorage, workflow: str) -> list[str]:
    found = storage.get_workflow(workflow)
    assert found is not None
    return [record.name for record in storage.list_executions(found.workflow_id, None, 10_000, None)]


def advance(clock: Clock, workers: list[Worker], to: float) -> None:
    clock.now = to
    for worker in workers:
        worker.wake()


def tick_name(schedule: str, at: float) -> str:
    return f"{schedule}-{datetime.fromtimestamp(at, UTC).strftime('%Y%m%dT%H%M%SZ')}"


def test_two_workers_start_one_execution_per_tick_and_catch_up(
    two_workers: tuple[PostgresStorage, Clock, list[Worker]],
) -> None:
    storage, clock, workers = two_workers
    storage.save_workflow("quick", {"name": "quick"}, PASS, [], False, T0)
    body = {"name": "minutely", "workflow": "quick", "expression": "rate(1 minute)", "catch_up": 5,
            "grace_seconds": 30, "overlap": "allow"}  # fmt: skip
    control.create_schedule(storage, body, T0)
    for minute in range(1, 11):
        advance(clock, workers, T0 + minute * 60 + 0.25)
        wait_until(lambda n=minute: len(names(storage, "quick")) >= n, 20, f"tick {minute}")
    # Thirty minutes of downtime: the last five missed ticks are caught up, the tick on time runs.
    advance(clock, workers, T0 + 40 * 60 + 10)
    wait_until(lambda: len(names(storage, "quick")) >= 16, 20, "the catch-up")
    time.sleep(0.3)  # a second firing of any tick would show now
    started = names(storage, "quick")
    expected = [tick_name("minutely", T0 + m * 60) for m in [*range(1, 11), *range(35, 41)]]
    assert sorted(started) == sorted(expected)
    state = control.schedule_json(storage, control.find_schedule(storage, "minutely"), clock.now)["state"]
    assert state["started"] == 16 and state["skipped"] == 24


def test_two_workers_honour_the_skip_overlap_policy(
    two_workers: tuple[PostgresStorage, Clock, list[Worker]],
) -> None:
    storage, clock, workers = two_workers
    storage.save_workflow("waits", {"name": "waits"}, WAITING, [], False, T0)
    control.create_schedule(
        storage, {"name": "slow", "workflow": "waits", "expression": "rate(1 minute)"}, T0
    )
    advance(clock, workers, T0 + 60.25)
    wait_until(lambda: len(names(storage, "waits")) == 1, 20, "the first tick")
    for minute in (2, 3):
        advance(clock, workers, T0 + minute * 60 + 0.25)
        wait_until(
            lambda m=minute: (
                control.schedule_json(storage, control.find_schedule(storage, "slow"), clock.now)["state"][
                    "skipped"
                ]
                == m - 1
            ),
            20,
            f"tick {minute} skipped",
        )
    assert len(names(storage, "waits")) == 1
    found = storage.get_workflow("waits")
    assert found is not None
    [first] = storage.list_executions(found.workflow_id, None, 10, None)
    storage.finish_execution(first.execution_id, ExecutionStatus.ABORTED, clock.now)
    advance(clock, workers, T0 + 4 * 60 + 0.25)
    wait_until(lambda: len(names(storage, "waits")) == 2, 20, "the tick after the first ended")
    assert sorted(names(storage, "waits")) == [tick_name("slow", T0 + 60), tick_name("slow", T0 + 240)]


def tick_of(name: str) -> float:
    return datetime.strptime(name.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def test_worker_processes_killed_with_sigkill_hand_the_schedule_on(cluster: Cluster) -> None:
    cluster.environment.update(
        {
            "MACHINERY_LEASE_SECONDS": "2",
            "MACHINERY_POLL_INTERVAL": "0.1",
            "MACHINERY_SOURCE_REFRESH_SECONDS": "5",
        }
    )
    cluster.start(2)
    api = Api(cluster.api_url)
    try:
        assert api.call("POST", "/w", {"name": "quick", "definition": PASS})[0] == 201
        body = {
            "name": "every-second",
            "workflow": "quick",
            "expression": "rate(1 second)",
            "overlap": "allow",
        }
        status, created = api.call("POST", "/schedules", body)
        assert status == 201, created

        def started() -> list[str]:
            status, page = api.call("GET", "/e?workflow=quick&limit=1000")
            assert status == 200
            return [event["name"] for event in page["events"]]

        wait_until(lambda: len(started()) >= 3, 30, "ticks from two workers")
        cluster.kill("worker-1")
        count = len(started())
        wait_until(lambda: len(started()) >= count + 3, 30, "ticks from the survivor")
        cluster.kill("worker-2")  # the only worker: it may die holding the cursor's lease
        time.sleep(2.5)  # ticks fall due while no worker runs
        cluster.start_worker()
        count = len(started())
        wait_until(lambda: len(started()) >= count + 5, 30, "ticks from the new worker")
        assert api.call("POST", "/schedules/every-second/pause")[0] == 200
        time.sleep(0.5)
        final = started()
        ticks = Counter(tick_of(name) for name in final)
        assert all(count == 1 for count in ticks.values()), [t for t, c in ticks.items() if c > 1]
        # Every second from the first tick to the last has its execution: none lost in the kills.
        first, last = min(ticks), max(ticks)
        assert sorted(ticks) == [first + i for i in range(int(last - first) + 1)], cluster.log_tails()
        _, record = api.call("GET", "/schedules/every-second")
        assert record["state"]["started"] == len(final) and record["paused"] is True
    finally:
        api.close()
