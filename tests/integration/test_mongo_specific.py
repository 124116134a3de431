"""What the MongoDB backend must get right on its own, beyond the shared conformance suite.

It has no multi-document transactions, so these tests aim at its substitutes: fenced intents, the
roll-forward of a transition whose writer died half-way, exactly-once join counting from threads, and
join decisions derived from atomic counters that must equal :func:`decide_join`'s serial ones. All run
against mongomock (no MongoDB server can be installed in CI).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("mongomock")

from machinery.engine.types import FAILED, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost, StorageError
from machinery.storage import open_storage
from machinery.storage.base import (
    WORK_CHILDREN,
    WORK_START,
    WORK_TASK,
    Commit,
    ExecutionRecord,
    JoinSpec,
    JoinState,
    WorkItem,
    decide_join,
)
from machinery.storage.mongo import MongoStorage
from machinery.storage.mongo_documents import join_decision

NOW = 1_700_000_000.0
LEASE = 30.0
_ids = itertools.count(1)


@pytest.fixture
def storage() -> Iterator[MongoStorage]:
    opened = open_storage("mongomock://")
    assert isinstance(opened, MongoStorage)
    try:
        yield opened
    finally:
        opened.close()


def start_execution(storage: MongoStorage, *, started_at: float = NOW, workflow_id: str | None = None) -> str:
    if workflow_id is None:
        workflow_id = storage.save_workflow(f"wf-{next(_ids)}", {}, {"StartAt": "A"}, [], False, NOW)[
            0
        ].workflow_id
    execution_id = f"exec-{next(_ids):04d}"
    record = ExecutionRecord(
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_name="wf",
        workflow_version=1,
        name=execution_id,
        status="RUNNING",
        input={"n": 1},
        started_at=started_at,
    )
    root = Branch(branch_id=execution_id, execution_id=execution_id, container=())
    storage.create_execution(record, root, [WorkItem(execution_id, execution_id, WORK_START, started_at)])
    return execution_id


def open_join(storage: MongoStorage, total: int, max_concurrency: int = 0) -> tuple[str, str]:
    execution_id = start_execution(storage)
    [item] = storage.claim_work("w1", NOW, 10, LEASE)
    parent = storage.get_branch(execution_id)
    assert parent is not None
    join_id = f"{execution_id}@0"
    children = [
        Branch(f"{join_id}/{i}", execution_id, ("Map", 0), parent_id=execution_id, index=i)
        for i in range(total)
    ]
    spec = JoinSpec(join_id, execution_id, "Map", total, max_concurrency, 0, 0.0)
    storage.commit(
        Commit(execution_id, item, replace(parent, phase="children"), children=children, join=spec), NOW
    )
    return execution_id, join_id


def finished(storage: MongoStorage, item: WorkItem, status: str = SUCCEEDED) -> Commit:
    branch = storage.get_branch(item.branch_id)
    assert branch is not None
    error = "Boom" if status == FAILED else None
    return Commit(item.execution_id, item, replace(branch, status=status, output=branch.index, error=error))


class _Crash(Exception):
    """Stands for the process dying at that point."""


def crash_before(storage: MongoStorage, monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """Make the next call of ``storage.<method>`` die, as if the process were killed right there."""
    original = getattr(storage, method)
    calls = itertools.count()

    def dying(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 0:
            raise _Crash(method)
        return original(*args, **kwargs)

    monkeypatch.setattr(storage, method, dying)


# fencing ---------------------------------------------------------------------------------------------


def test_a_stale_owner_is_fenced_out_and_writes_nothing(storage: MongoStorage) -> None:
    execution_id = start_execution(storage)
    [stale] = storage.claim_work("w1", NOW, 10, LEASE)
    [fresh] = storage.claim_work("w2", NOW + LEASE + 1, 10, LEASE)
    assert fresh.fence == stale.fence + 1
    branch = storage.get_branch(execution_id)
    assert branch is not None
    stale_commit = Commit(
        execution_id, stale, replace(branch, state="Stale"), [HistoryEvent("Stale", {}, NOW)]
    )
    with pytest.raises(LeaseLost):
        storage.commit(stale_commit, NOW)
    assert storage.get_history(execution_id) == []
    assert storage.get_branch(execution_id) == branch
    storage.commit(Commit(execution_id, fresh, replace(branch, state="Fresh")), NOW)
    with pytest.raises(LeaseLost):  # the item is consumed: committing it again is fenced out too
        storage.commit(Commit(execution_id, fresh, replace(branch, state="Again")), NOW)
    assert storage.get_branch(execution_id) == replace(branch, state="Fresh")


def test_concurrent_claims_from_threads_never_share_an_item(storage: MongoStorage) -> None:
    for _ in range(60):
        start_execution(storage)
    claimed: dict[str, list[int]] = {}
    barrier = threading.Barrier(6)

    def claim(owner: str) -> None:
        barrier.wait()
        mine = claimed.setdefault(owner, [])
        while batch := storage.claim_work(owner, NOW, 4, LEASE):
            mine.extend(item.work_id for item in batch if item.work_id is not None)

    threads = [threading.Thread(target=claim, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [work_id for ids in claimed.values() for work_id in ids]
    assert len(everything) == 60
    assert len(set(everything)) == 60


# roll-forward after a crash ----------------------------------------------------------------------------


def test_a_commit_that_died_after_its_commit_point_is_rolled_forward(
    storage: MongoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = start_execution(storage)
    [item] = storage.claim_work("w1", NOW, 10, LEASE)
    branch = storage.get_branch(execution_id)
    assert branch is not None
    moved = replace(branch, state="B", phase="task")
    task = WorkItem(execution_id, execution_id, WORK_TASK, NOW, {"resource": "upper"})
    crash_before(storage, monkeypatch, "_put_work")
    with pytest.raises(_Crash):
        storage.commit(
            Commit(execution_id, item, moved, history=[HistoryEvent("TaskScheduled", {}, NOW)], work=[task]),
            NOW,
        )
    # Half applied: the branch and history are written, the new work is not; nobody can claim it yet.
    assert storage.get_branch(execution_id) == moved
    assert storage.claim_work("w2", NOW + 1, 10, LEASE) == []
    # The writer's lease runs out: the next claim finishes the transition and hands out its work.
    claimed = storage.claim_work("w2", NOW + LEASE + 1, 10, LEASE)
    assert [(w.kind, w.payload) for w in claimed] == [(WORK_TASK, {"resource": "upper"})]
    assert [(e.event_id, e.type) for e in storage.get_history(execution_id)] == [(1, "TaskScheduled")]
    # The dead writer's own item stays consumed: the writer, were it alive, is fenced out.
    with pytest.raises(LeaseLost):
        storage.commit(Commit(execution_id, item, moved), NOW)


def test_a_half_counted_child_is_counted_once_when_rolled_forward(
    storage: MongoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, join_id = open_join(storage, total=3, max_concurrency=1)
    [first] = storage.claim_work("w1", NOW, 10, LEASE)
    crash_before(storage, monkeypatch, "_put_work")  # after the join count, before the admitted child's start
    with pytest.raises(_Crash):
        storage.commit(finished(storage, first), NOW)
    later = NOW + LEASE + 1
    [second] = storage.claim_work("w2", later, 10, LEASE)
    assert second.branch_id == f"{join_id}/1"
    storage.commit(finished(storage, second), later)
    [third] = storage.claim_work("w2", later, 10, LEASE)
    assert third.branch_id == f"{join_id}/2"
    storage.commit(finished(storage, third), later)
    [closing] = storage.claim_work("w2", later, 10, LEASE)
    assert (closing.kind, closing.branch_id, closing.payload) == (
        WORK_CHILDREN,
        execution_id,
        {"join_id": join_id},
    )
    join = storage.database["joins"].find_one({"_id": join_id})
    assert join is not None
    assert (join["succeeded"], join["failed"], join["closed"]) == (3, 0, True)


def test_create_execution_that_died_half_way_is_completed_by_a_claim(
    storage: MongoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_before(storage, monkeypatch, "_put_work")
    with pytest.raises(_Crash):
        start_execution(storage)
    [execution] = storage.list_executions(None, None, 10, None)
    assert storage.claim_work("w1", NOW, 10, LEASE) == []
    claimed = storage.claim_work("w1", NOW + LEASE + 1, 10, LEASE)
    assert [(w.kind, w.execution_id) for w in claimed] == [(WORK_START, execution.execution_id)]


def test_replaying_a_completed_intent_changes_nothing(
    storage: MongoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stalled applier that resumes after another one completed the same transition."""
    execution_id, join_id = open_join(storage, total=2)
    first, second = sorted(storage.claim_work("w1", NOW, 10, LEASE), key=lambda w: w.branch_id)
    storage.commit(finished(storage, first), NOW)
    applied: list[tuple[int, str]] = []
    run_intent = storage._run_intent

    def recording(anchor_id: int, text: str) -> Any:
        applied.append((anchor_id, text))
        return run_intent(anchor_id, text)

    monkeypatch.setattr(storage, "_run_intent", recording)
    storage.commit(finished(storage, second), NOW)
    snapshot = (list(storage.database["joins"].find()), storage.get_history(execution_id))
    [(anchor_id, text)] = applied
    storage._run_intent(anchor_id, text)
    [closing] = storage.claim_work("w1", NOW, 10, LEASE)
    assert (closing.kind, closing.payload) == (WORK_CHILDREN, {"join_id": join_id})
    storage.complete_work(closing)
    storage._run_intent(anchor_id, text)  # the consumed children item is not resurrected either
    assert storage.claim_work("w1", NOW + 1000, 10, LEASE) == []
    assert (list(storage.database["joins"].find()), storage.get_history(execution_id)) == snapshot


# joins from threads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_concurrency", [0, 3])
def test_children_finishing_on_threads_close_the_join_exactly_once(
    storage: MongoStorage, max_concurrency: int
) -> None:
    total = 24
    execution_id, join_id = open_join(storage, total=total, max_concurrency=max_concurrency)
    closings: list[WorkItem] = []
    started: list[str] = []
    lock = threading.Lock()

    def work(owner: str) -> None:
        idle = 0
        while idle < 50:
            batch = storage.claim_work(owner, NOW, 2, LEASE)
            idle = 0 if batch else idle + 1
            for item in batch:
                if item.kind == WORK_CHILDREN:
                    with lock:
                        closings.append(item)
                    continue
                with lock:
                    started.append(item.branch_id)
                storage.commit(finished(storage, item), NOW)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(started) == sorted(f"{join_id}/{i}" for i in range(total))
    assert [(c.branch_id, c.payload) for c in closings] == [(execution_id, {"join_id": join_id})]
    assert [b.status for b in storage.child_results(join_id)] == [SUCCEEDED] * total


# join decisions from counters equal the serial rule -------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["Map", "Parallel"]),
    total=st.integers(0, 7),
    max_concurrency=st.integers(0, 3),
    tolerated_count=st.integers(0, 3),
    tolerated_pct=st.sampled_from([0.0, 20.0, 50.0]),
    choices=st.lists(st.tuples(st.integers(0, 100), st.booleans()), max_size=10),
)
def test_decisions_from_counters_equal_decide_join(
    kind: str,
    total: int,
    max_concurrency: int,
    tolerated_count: int,
    tolerated_pct: float,
    choices: list[tuple[int, bool]],
) -> None:
    """Children finish in any admissible order (also after the join closed, as racing commits do)."""
    spec = JoinSpec("j", "p", kind, total, max_concurrency, tolerated_count, tolerated_pct)
    initially = spec.initially_started
    serial = JoinState(spec, started=initially)
    running = list(range(initially))
    succeeded = failed = 0
    for pick, ok in choices:
        if not running:
            break
        running.pop(pick % len(running))
        expected = decide_join(serial, ok, "E", "C")
        succeeded, failed = succeeded + ok, failed + (not ok)
        derived = join_decision(spec, initially, succeeded, failed, ok, "E", "C")
        assert derived == expected
        running.extend(expected.start_indexes)


# storage details --------------------------------------------------------------------------------------


def test_list_executions_pages_newest_first(storage: MongoStorage) -> None:
    workflow_id = storage.save_workflow("paged", {}, {"StartAt": "A"}, [], False, NOW)[0].workflow_id
    ids = [start_execution(storage, workflow_id=workflow_id) for _ in range(7)]
    pages: list[list[str]] = []
    after: str | None = None
    while page := storage.list_executions(workflow_id, None, 3, after):
        pages.append([record.execution_id for record in page])
        after = page[-1].execution_id
    assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]
    assert storage.list_executions(workflow_id, "SUCCEEDED", 3, None) == []
    assert storage.list_executions(None, None, 3, "no-such-execution") == []


def test_json_keys_mongodb_forbids_are_stored_as_they_are(storage: MongoStorage) -> None:
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Parameters": {"x.$": "$.y", "$weird": 1}}},
    }
    record, _ = storage.save_workflow("dollars", {"a.b": {"$c": 1}}, definition, [], False, NOW)
    stored = storage.get_workflow(record.workflow_id)
    assert stored is not None
    assert (stored.spec, stored.definition) == ({"a.b": {"$c": 1}}, definition)


def test_driver_errors_are_storage_errors(storage: MongoStorage) -> None:
    storage.upsert_service("a", "http://a", [], [], {}, NOW)
    b, _ = storage.upsert_service("b", "http://b", [], [], {}, NOW)
    with pytest.raises(StorageError, match="MongoDB"):
        storage.upsert_service("a", "http://b", [], [], {}, NOW, ref=b.service_id)


def test_open_storage_names_a_database_and_migrates_twice(storage: MongoStorage) -> None:
    named = open_storage("mongomock:///elsewhere")
    assert isinstance(named, MongoStorage)
    assert named.database.name == "elsewhere"
    named.migrate()
    assert storage.database.name == "machinery"
    assert storage.get_branch("nothing") is None
