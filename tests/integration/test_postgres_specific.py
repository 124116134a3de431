"""What only the PostgreSQL backend promises: several processes on one database.

Each "process" here is its own :class:`PostgresStorage` (its own pool) driven from its own thread, so the
claims, commits and notifications below really race in the server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

import psycopg
import pytest

from machinery.api import create_app, orchestrator_of
from machinery.engine.types import ACTIVE, FAILED, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost
from machinery.runtime.notify import Notifier
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.storage import open_storage
from machinery.storage.base import (
    WORK_CHILDREN,
    WORK_START,
    WORK_TIMER,
    ApiTokenRecord,
    Commit,
    ExecutionRecord,
    JoinSpec,
    WorkItem,
)
from machinery.storage.postgres import PostgresStorage

pytestmark = pytest.mark.postgres

NOW = 1_700_000_000.0
LEASE = 30.0
PROCESSES = 4
_T = TypeVar("_T")


@pytest.fixture
def open_process(postgres_url: str) -> Iterator[Callable[[], PostgresStorage]]:
    """Open another "process" on the test database; all are closed at teardown."""
    opened: list[PostgresStorage] = []

    def open_one() -> PostgresStorage:
        storage = open_storage(postgres_url, pool_min_size=1, pool_max_size=2)
        assert isinstance(storage, PostgresStorage)
        opened.append(storage)
        return storage

    try:
        yield open_one
    finally:
        for storage in opened:
            storage.close()


def in_parallel(jobs: list[Callable[[], _T]]) -> list[_T]:
    """Run the jobs in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], _T]) -> _T:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(run, job) for job in jobs]
        return [future.result(timeout=60) for future in futures]


def start_execution(storage: PostgresStorage, execution_id: str = "exec-1") -> Branch:
    """A RUNNING execution with its root branch and one due start item; the root branch."""
    root = Branch(branch_id=execution_id, execution_id=execution_id, container=())
    record = ExecutionRecord(
        execution_id=execution_id,
        workflow_id="wf-1",
        workflow_name="wf",
        workflow_version=1,
        name=execution_id,
        status="RUNNING",
        input={},
        started_at=NOW,
    )
    storage.create_execution(record, root, [WorkItem(execution_id, execution_id, WORK_START, NOW)])
    return root


def fan_out(
    storage: PostgresStorage, children: int, *, kind: str = "Map", max_concurrency: int = 0
) -> tuple[Branch, str]:
    """Start an execution whose root branch waits for ``children`` child branches; (root, join id)."""
    root = start_execution(storage)
    [start] = storage.claim_work("parent", NOW, 10, LEASE)
    join_id = f"{root.branch_id}@0"
    commit = Commit(
        execution_id=root.execution_id,
        consumed=start,
        branch=replace(root, state="Fan"),
        join=JoinSpec(join_id, root.branch_id, kind, children, max_concurrency, 0, 0.0),
        children=[
            Branch(
                branch_id=f"{join_id}/{index}",
                execution_id=root.execution_id,
                container=("Fan",),
                parent_id=root.branch_id,
                index=index,
            )
            for index in range(children)
        ],
    )
    storage.commit(commit, NOW)
    return root, join_id


def finish_child(storage: PostgresStorage, item: WorkItem, succeeded: bool = True) -> None:
    """Commit a claimed start item as its child branch's end."""
    child = storage.get_branch(item.branch_id)
    assert child is not None
    if succeeded:
        done = replace(child, status=SUCCEEDED, output={"index": child.index})
    else:
        done = replace(child, status=FAILED, error="Boom", cause=f"child {child.index}")
    history = [HistoryEvent("IterationFinished", {"index": child.index}, NOW)]
    storage.commit(Commit(item.execution_id, item, done, history=history), NOW)


def rows(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(query, params).fetchall()


# claims and fencing ----------------------------------------------------------------------------------


def test_concurrent_claims_never_hand_one_item_to_two_owners(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    items = 400
    open_process().add_work([WorkItem("exec-1", f"branch-{i}", WORK_TIMER, NOW) for i in range(items)])
    processes = [open_process() for _ in range(PROCESSES)]

    def claim_until_empty(storage: PostgresStorage, owner: str) -> Callable[[], list[WorkItem]]:
        def claim() -> list[WorkItem]:
            mine: list[WorkItem] = []
            while batch := storage.claim_work(owner, NOW, 7, LEASE):
                mine.extend(batch)
            return mine

        return claim

    claimed = in_parallel([claim_until_empty(p, f"owner-{n}") for n, p in enumerate(processes)])

    work_ids = [item.work_id for mine in claimed for item in mine]
    assert len(work_ids) == len(set(work_ids)) == items
    assert all(item.fence == 1 for mine in claimed for item in mine)
    # The database agrees: each item is owned by the one claimer that got it, claimed exactly once.
    owners = {item.work_id: f"owner-{n}" for n, mine in enumerate(claimed) for item in mine}
    stored = rows(postgres_url, "SELECT work_id, owner, fence FROM work")
    assert {work_id: (owner, fence) for work_id, owner, fence in stored} == {
        work_id: (owner, 1) for work_id, owner in owners.items()
    }


def test_a_stale_owner_cannot_commit_after_another_reclaimed_the_expired_lease(
    open_process: Callable[[], PostgresStorage],
) -> None:
    old_worker, new_worker = open_process(), open_process()
    root = start_execution(old_worker)
    [stale] = old_worker.claim_work("old", NOW, 1, lease_seconds=10)
    assert new_worker.claim_work("new", NOW + 5, 1, lease_seconds=10) == []  # the lease still holds
    [fresh] = new_worker.claim_work("new", NOW + 11, 1, lease_seconds=10)  # it expired
    assert (fresh.work_id, fresh.fence) == (stale.work_id, stale.fence + 1)

    stale_step = Commit(
        root.execution_id,
        stale,
        replace(root, state="Stale"),
        history=[HistoryEvent("ExecutionStarted", {}, NOW)],
        work=[WorkItem(root.execution_id, root.branch_id, WORK_TIMER, NOW + 100)],
    )
    with pytest.raises(LeaseLost):
        old_worker.commit(stale_step, NOW + 12)
    # Nothing of the fenced-out transition was written.
    assert old_worker.get_history(root.execution_id) == []
    branch = old_worker.get_branch(root.branch_id)
    assert branch is not None and branch.state is None

    new_step = Commit(root.execution_id, fresh, replace(root, state="Fresh"))
    new_worker.commit(new_step, NOW + 12)
    branch = new_worker.get_branch(root.branch_id)
    assert branch is not None and branch.state == "Fresh"


# wake-ups --------------------------------------------------------------------------------------------


def test_a_group_transaction_that_adds_work_for_several_executions_notifies_once(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    storage = open_process()
    for n in range(3):
        start_execution(storage, f"exec-{n}")
    items = {item.execution_id: item for item in storage.claim_work("w1", NOW, 10, LEASE)}
    commits = []
    for n, (execution_id, item) in enumerate(sorted(items.items())):
        root = Branch(branch_id=execution_id, execution_id=execution_id, container=())
        # Not claimed (others are told), each due at another time: one notification, the earliest.
        timer = WorkItem(execution_id, execution_id, WORK_TIMER, NOW + 60 + n)
        commits.append((Commit(execution_id, item, replace(root, state="Wait"), work=[timer]), NOW))
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute("LISTEN machinery_work")
        results = storage.commit_many(commits)
        assert [result.new_work for result in results] == [1, 1, 1]  # type: ignore[union-attr]
        received = list(listener.notifies(timeout=1.0))
    assert len(received) == 1 and float(received[0].payload) == NOW + 60


def test_wait_for_work_wakes_when_another_process_inserts_work(
    open_process: Callable[[], PostgresStorage],
) -> None:
    worker, api = open_process(), open_process()
    assert worker.wait_for_work(0.05) is False  # LISTENing now; nothing happened
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(worker.wait_for_work, 30.0)
        start_execution(api)
        assert waiting.result(timeout=10) is True
    assert time.monotonic() - started < 10
    assert worker.wait_for_work(0.05) is False  # the burst was drained by the one wake-up


def test_wait_for_work_reconnects_after_its_connection_dies(
    open_process: Callable[[], PostgresStorage], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    worker, api = open_process(), open_process()
    worker.wait_for_work(0.01)
    [[terminated]] = rows(
        postgres_url,
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
        " WHERE datname = current_database() AND starts_with(query, 'LISTEN machinery_work')",
    )
    assert terminated
    with caplog.at_level(logging.WARNING, logger="machinery.storage.postgres"):
        assert worker.wait_for_work(0.05) is False  # the failure: sleep out the timeout, poll instead
    assert "LISTEN connection failed" in caplog.text
    worker.wait_for_work(0.01)  # reconnects and LISTENs again
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(worker.wait_for_work, 30.0)
        api.add_work([WorkItem("exec-1", "branch-1", WORK_TIMER, NOW)])
        assert waiting.result(timeout=10) is True


def test_commits_that_add_work_notify_and_those_that_do_not_stay_quiet(
    open_process: Callable[[], PostgresStorage],
) -> None:
    worker, other = open_process(), open_process()
    root = start_execution(other)
    worker.wait_for_work(0.01)
    while worker.wait_for_work(0.01):  # drain the start item's notification
        pass
    [start] = other.claim_work("other", NOW, 1, LEASE)
    other.commit(Commit(root.execution_id, start, replace(root, state="Quiet")), NOW)
    assert worker.wait_for_work(0.1) is False
    assert other.claim_work("other", NOW, 1, LEASE) == []
    other.add_work([WorkItem(root.execution_id, root.branch_id, WORK_TIMER, NOW + 60)])
    assert worker.wait_for_work(10) is True


# joins -----------------------------------------------------------------------------------------------


def test_children_finishing_on_four_workers_close_the_join_exactly_once(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    setup = open_process()
    root, join_id = fan_out(setup, 20)
    starts = setup.claim_work("setup", NOW, 100, LEASE)
    assert len(starts) == 20
    processes = [open_process() for _ in range(PROCESSES)]

    def finish_share(storage: PostgresStorage, share: list[WorkItem]) -> Callable[[], None]:
        def finish() -> None:
            for item in share:
                finish_child(storage, item)

        return finish

    in_parallel([finish_share(p, starts[n::PROCESSES]) for n, p in enumerate(processes)])

    remaining = setup.claim_work("check", NOW, 100, LEASE)
    assert [(item.kind, item.branch_id, item.payload) for item in remaining] == [
        (WORK_CHILDREN, root.branch_id, {"join_id": join_id})
    ]
    assert [child.status for child in setup.child_results(join_id)] == [SUCCEEDED] * 20
    [(started, succeeded, failed, closed)] = rows(
        postgres_url, "SELECT started, succeeded, failed, closed FROM joins WHERE join_id = %s", join_id
    )
    assert (started, succeeded, failed, closed) == (20, 20, 0, True)
    # History ids were allocated under the execution row's lock: one sequence, no gaps, no repeats.
    assert [event.event_id for event in setup.get_history(root.execution_id)] == list(range(1, 21))


def test_a_bounded_map_starts_each_child_once_under_concurrent_completions(
    open_process: Callable[[], PostgresStorage],
) -> None:
    setup = open_process()
    root, join_id = fan_out(setup, 20, max_concurrency=3)
    processes = [open_process() for _ in range(PROCESSES)]
    joined = threading.Event()
    deadline = time.monotonic() + 60

    def work(storage: PostgresStorage, owner: str) -> Callable[[], list[WorkItem]]:
        def run() -> list[WorkItem]:
            seen: list[WorkItem] = []
            while not joined.is_set() and time.monotonic() < deadline:
                for item in storage.claim_work(owner, NOW, 1, LEASE):
                    seen.append(item)
                    if item.kind == WORK_CHILDREN:
                        joined.set()
                    else:
                        finish_child(storage, item)
            return seen

        return run

    seen = [
        item for mine in in_parallel([work(p, f"w{n}") for n, p in enumerate(processes)]) for item in mine
    ]

    started = sorted(item.branch_id for item in seen if item.kind == WORK_START)
    assert started == sorted(f"{join_id}/{index}" for index in range(20))
    assert [item.branch_id for item in seen if item.kind == WORK_CHILDREN] == [root.branch_id]
    assert [child.status for child in setup.child_results(join_id)] == [SUCCEEDED] * 20


def test_a_failing_child_closes_the_join_once_while_its_siblings_finish(
    open_process: Callable[[], PostgresStorage],
) -> None:
    """A Parallel closes on its first failure and cancels the rest: late siblings are fenced out."""
    setup = open_process()
    root, join_id = fan_out(setup, 20, kind="Parallel")
    starts = setup.claim_work("setup", NOW, 100, LEASE)
    processes = [open_process() for _ in range(PROCESSES)]

    def fail_share(storage: PostgresStorage, share: list[WorkItem]) -> Callable[[], int]:
        def fail() -> int:
            fenced_out = 0
            for item in share:
                try:
                    finish_child(storage, item, succeeded=False)
                except LeaseLost:
                    fenced_out += 1
            return fenced_out

        return fail

    fenced_out = sum(in_parallel([fail_share(p, starts[n::PROCESSES]) for n, p in enumerate(processes)]))

    remaining = setup.claim_work("check", NOW, 100, LEASE)
    assert [(item.kind, item.branch_id) for item in remaining] == [(WORK_CHILDREN, root.branch_id)]
    assert remaining[0].payload is not None and remaining[0].payload["error"] == "Boom"
    statuses = [child.status for child in setup.child_results(join_id)]
    assert statuses.count(FAILED) == 20 - fenced_out
    assert ACTIVE not in statuses


def test_cached_definitions_follow_changes_made_by_another_process(
    open_process: Callable[[], PostgresStorage],
) -> None:
    here, there = open_process(), open_process()
    here.upsert_service("upper", "http://127.0.0.1:1/a", [], [], {}, 1.0)
    assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
    assert there.get_service("upper") is there.get_service("upper")  # cached
    here.upsert_service("upper", "http://127.0.0.1:1/b", [], [], {}, 2.0)
    assert there.get_service("upper").address == "http://127.0.0.1:1/b"  # type: ignore[union-attr]
    here.save_workflow("flow", {}, {"StartAt": "A"}, [], False, 3.0)
    assert there.get_workflow("flow").version == 1  # type: ignore[union-attr]
    there.save_workflow("flow", {}, {"StartAt": "B"}, [], False, 4.0)
    assert here.get_workflow("flow").definition == {"StartAt": "B"}  # type: ignore[union-attr]


def test_definitions_follow_changes_after_the_server_drops_the_generation_connection(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    """The generation row is read on a connection of its own: when the server drops it, the next lookup
    opens another and still sees a change made meanwhile."""
    here, there = open_process(), open_process()
    here.upsert_service("upper", "http://127.0.0.1:1/a", [], [], {}, 1.0)
    assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
    [[terminated]] = rows(
        postgres_url,
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE %s",
        "%definitions_generation%",
    )
    assert terminated >= 1  # the two storages' generation connections (their last statement)
    here.upsert_service("upper", "http://127.0.0.1:1/b", [], [], {}, 2.0)
    assert there.get_service("upper").address == "http://127.0.0.1:1/b"  # type: ignore[union-attr]


def test_a_token_created_by_another_process_closes_an_open_server_at_once(
    open_process: Callable[[], PostgresStorage],
) -> None:
    here, there = open_process(), open_process()
    assert not there.has_api_tokens() and not there.has_api_tokens()
    here.create_api_token(ApiTokenRecord("tok_1", "ci", "write", "hash-1", "MKIA0000000000000001", 1.0))
    assert there.has_api_tokens()
    here.delete_api_token("tok_1")
    assert not there.has_api_tokens()


def test_a_worker_writes_one_group_at_a_time_to_a_close_server_and_several_to_a_distant_one(
    open_process: Callable[[], PostgresStorage], monkeypatch: pytest.MonkeyPatch
) -> None:
    from machinery.storage import postgres

    monkeypatch.setattr(postgres, "CLOSE_ROUND_TRIP", 10.0)  # any answer is close
    close = open_process()
    assert close.group_writers() == 1
    monkeypatch.setattr(postgres, "CLOSE_ROUND_TRIP", 0.0)  # no answer is
    assert close.group_writers() == 1  # asked once
    assert open_process().group_writers() == postgres.DISTANT_WRITERS
    gone = open_process()
    gone.close()  # cannot be asked: taken as distant
    assert gone.group_writers() == postgres.DISTANT_WRITERS


# the runtime -----------------------------------------------------------------------------------------


def test_an_idle_worker_runs_work_another_process_commits_without_polling(
    open_process: Callable[[], PostgresStorage],
) -> None:
    """The worker polls once a minute here: only the notification can make it run the execution."""
    worker_storage, api = open_process(), open_process()
    definition = {
        "StartAt": "Done",
        "States": {"Done": {"Type": "Pass", "Result": {"ok": True}, "End": True}},
    }
    workflow, _created = api.save_workflow("wf", {"name": "wf"}, definition, [], False, time.time())
    notifier = Notifier()
    worker = Worker(worker_storage, WorkerSettings(poll_interval=60.0), notifier)
    worker_storage.wait_for_work(0)  # subscribed before the insert, as a long-running worker would be
    worker.start()
    try:
        execution_id = "exec-1"
        finished = notifier.register(execution_id)
        record = ExecutionRecord(
            execution_id=execution_id,
            workflow_id=workflow.workflow_id,
            workflow_name=workflow.name,
            workflow_version=workflow.version,
            name=execution_id,
            status="RUNNING",
            input={},
            started_at=time.time(),
        )
        root = Branch(branch_id=execution_id, execution_id=execution_id, container=())
        api.create_execution(record, root, [WorkItem(execution_id, execution_id, WORK_START, time.time())])
        assert finished.wait(20), "the worker did not wake up for work committed by another process"
    finally:
        worker.stop()
    execution = api.get_execution(execution_id)
    assert execution is not None
    assert (execution.status, execution.output) == ("SUCCEEDED", {"ok": True})


def test_a_server_starting_on_postgres_leaves_other_workers_leases_alone(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    """Releasing every lease at start is right only for a single node's SQLite file."""
    elsewhere = open_process()
    elsewhere.add_work([WorkItem("exec-1", "branch-1", WORK_TIMER, NOW)])
    [leased] = elsewhere.claim_work("worker-elsewhere", NOW, 1, LEASE)
    app = create_app({"DATABASE_URL": postgres_url, "RUN_WORKER": True, "START_WORKER": False})
    orchestrator_of(app).storage.close()
    assert elsewhere.claim_work("someone-else", NOW + 1, 1, LEASE) == []
    [(owner,)] = rows(postgres_url, "SELECT owner FROM work WHERE work_id = %s", leased.work_id)
    assert owner == "worker-elsewhere"


def test_storage_survives_the_server_dropping_its_connections(
    open_process: Callable[[], PostgresStorage], postgres_url: str
) -> None:
    """A restart or failover drops every connection: the pool replaces them and calls go on."""
    storage = open_process()
    root = start_execution(storage)
    [[terminated]] = rows(
        postgres_url,
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert terminated >= 1
    execution = storage.get_execution(root.execution_id)
    assert execution is not None and execution.status == "RUNNING"
    [item] = storage.claim_work("after-restart", NOW, 1, LEASE)
    storage.commit(Commit(root.execution_id, item, replace(root, state="Resumed")), NOW)
