"""One suite every storage backend passes (huey's ``StorageTests``): the contract of
:class:`machinery.storage.base.Storage` as the API and the runtime rely on it.

Backends are listed in :data:`BACKENDS`. To add one (PostgreSQL, MongoDB), append a ``Backend`` whose
``open`` builds a fresh, migrated, empty storage for one test; a backend that needs a server can take its
URL from a fixture with ``request.getfixturevalue`` and should skip when the server is missing.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from machinery.engine.types import ACTIVE, CANCELLED, FAILED, SUCCEEDED, Branch, HistoryEvent
from machinery.errors import LeaseLost, MachineryError
from machinery.runtime.starts import new_execution
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    HEARTBEAT_TIMEOUT,
    WORK_CHILDREN,
    WORK_SCHEDULE,
    WORK_START,
    WORK_TASK,
    WORK_TIMER,
    WORK_TOKEN,
    WORK_WEBHOOK,
    ApiTokenRecord,
    ClaimedStart,
    Commit,
    CommitResult,
    ExecutionRecord,
    JoinSpec,
    NewExecution,
    RedrivePlan,
    Storage,
    WorkCounts,
    WorkItem,
)
from machinery.storage.memory import MemoryStorage
from machinery.storage.sqlite import SQLiteStorage

NOW = 1_700_000_000.0
LEASE = 30.0


@dataclass(frozen=True)
class Backend:
    """How to open one fresh, migrated, empty storage for a test."""

    name: str
    open: Callable[[pytest.FixtureRequest, Path], Storage]
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _open_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return MemoryStorage()


def _open_sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    storage = SQLiteStorage(str(tmp_path / "machinery.db"))
    storage.migrate()
    return storage


def _open_mongomock(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """MongoDB through mongomock (no server can be installed in CI); each ``mongomock://`` starts empty."""
    pytest.importorskip("mongomock")
    from machinery.storage import open_storage

    return open_storage("mongomock://")


def _open_from_url_fixture(fixture: str) -> Callable[[pytest.FixtureRequest, Path], Storage]:
    """A backend whose database URL comes from a fixture of ``tests/integration/conftest.py``."""

    def open_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
        from machinery.storage import open_storage

        try:
            url = request.getfixturevalue(fixture)
        except pytest.FixtureLookupError:
            pytest.skip(f"no '{fixture}' fixture yet (tests/integration/conftest.py)")
        return open_storage(str(url))

    return open_backend


# HOOK for the PostgreSQL and MongoDB backends: each entry runs the whole suite. The postgres entry
# needs the ``postgres_url`` fixture (a fresh database per test) in tests/integration/conftest.py and
# skips without it; mongo runs on mongomock, which needs no server.
BACKENDS: list[Backend] = [
    Backend("memory", _open_memory),
    Backend("sqlite", _open_sqlite),
    Backend("postgres", _open_from_url_fixture("postgres_url"), (pytest.mark.postgres,)),
    Backend("mongo", _open_mongomock),
]


@pytest.fixture(params=[pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    backend: Backend = request.param
    opened = backend.open(request, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


# helpers -------------------------------------------------------------------------------------------

_ids = itertools.count(1)


def make_workflow(storage: Storage, name: str = "wf", services: list[str] | None = None) -> str:
    record, _ = storage.save_workflow(
        name, {"name": name}, {"StartAt": "A", "States": {}}, services or [], False, NOW
    )
    return record.workflow_id


def start_execution(
    storage: Storage,
    workflow_id: str,
    *,
    callback_url: str | None = None,
    due_at: float = NOW,
    started_at: float | None = None,
) -> str:
    """Create a RUNNING execution with its root branch and one start work item."""
    execution_id = f"exec-{next(_ids):04d}"
    workflow = storage.get_workflow(workflow_id)
    assert workflow is not None
    record = ExecutionRecord(
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_name=workflow.name,
        workflow_version=workflow.version,
        name=execution_id,
        status="RUNNING",
        input={"n": 1},
        started_at=NOW if started_at is None else started_at,
        callback_url=callback_url,
    )
    root = Branch(branch_id=execution_id, execution_id=execution_id, container=(), state_input={"n": 1})
    storage.create_execution(record, root, [WorkItem(execution_id, execution_id, WORK_START, due_at)])
    return execution_id


def claim_one(storage: Storage, owner: str = "w1", now: float = NOW) -> WorkItem:
    claimed = storage.claim_work(owner, now, 10, LEASE)
    assert len(claimed) == 1, claimed
    return claimed[0]


def history(n: int, kind: str = "PassStateEntered") -> list[HistoryEvent]:
    return [HistoryEvent(kind, {"i": i}, NOW + i) for i in range(n)]


def root_of(storage: Storage, execution_id: str) -> Branch:
    branch = storage.get_branch(execution_id)
    assert branch is not None
    return branch


def children_of(parent: Branch, join_id: str, count: int) -> list[Branch]:
    return [
        Branch(
            branch_id=f"{join_id}/{index}",
            execution_id=parent.execution_id,
            container=("Par", index),
            parent_id=parent.branch_id,
            index=index,
            state_input={"i": index},
        )
        for index in range(count)
    ]


def open_join(
    storage: Storage,
    *,
    total: int,
    max_concurrency: int = 0,
    kind: str = "Parallel",
    tolerated_count: int = 0,
    tolerated_pct: float = 0.0,
) -> tuple[str, str, list[Branch]]:
    """An execution whose root branch started ``total`` children; returns (execution, join, children)."""
    execution_id = start_execution(storage, make_workflow(storage, f"wf-{next(_ids)}"))
    item = claim_one(storage)
    parent = root_of(storage, execution_id)
    join_id = f"{execution_id}@0"
    children = children_of(parent, join_id, total)
    spec = JoinSpec(join_id, parent.branch_id, kind, total, max_concurrency, tolerated_count, tolerated_pct)
    storage.commit(
        Commit(execution_id, item, replace(parent, phase="children"), children=children, join=spec), NOW
    )
    return execution_id, join_id, children


def finish_child(storage: Storage, item: WorkItem, status: str, error: str | None = None) -> None:
    branch = storage.get_branch(item.branch_id)
    assert branch is not None
    done = replace(branch, status=status, output={"done": branch.index} if status == SUCCEEDED else None)
    if error is not None:
        done = replace(done, error=error, cause=f"cause of {error}")
    storage.commit(Commit(item.execution_id, item, done), NOW)


def claim_all(storage: Storage, owner: str = "w1", now: float = NOW) -> list[WorkItem]:
    return storage.claim_work(owner, now, 100, LEASE)


# the suite -----------------------------------------------------------------------------------------


class TestServices:
    def test_upsert_creates_then_updates_in_place(self, storage: Storage) -> None:
        first, created = storage.upsert_service("upper", "http://a/event", [], [], {}, NOW)
        assert created
        second, created_again = storage.upsert_service(
            "upper", "http://b/event", [{"name": "message", "type": "string"}], [], {"method": "PUT"}, NOW + 1
        )
        assert not created_again
        assert second.service_id == first.service_id
        assert second.address == "http://b/event"
        assert second.inputs == [{"name": "message", "type": "string"}]
        assert second.settings == {"method": "PUT"}
        assert second.created_at == NOW
        assert second.updated_at == NOW + 1
        assert [s.name for s in storage.list_services()] == ["upper"]

    def test_get_by_id_or_name(self, storage: Storage) -> None:
        service, _ = storage.upsert_service("upper", "http://a/event", [], [], {}, NOW)
        assert storage.get_service(service.service_id) == service
        assert storage.get_service("upper") == service
        assert storage.get_service("nope") is None

    def test_update_by_ref_can_rename(self, storage: Storage) -> None:
        service, _ = storage.upsert_service("upper", "http://a/event", [], [], {}, NOW)
        renamed, created = storage.upsert_service(
            "shout", "http://a/event", [], [], {}, NOW, ref=service.service_id
        )
        assert not created
        assert renamed.service_id == service.service_id
        assert storage.get_service("upper") is None
        assert storage.get_service("shout") == renamed

    def test_list_is_sorted_by_name_and_delete_removes(self, storage: Storage) -> None:
        for name in ("b", "c", "a"):
            storage.upsert_service(name, "http://x/event", [], [], {}, NOW)
        assert [s.name for s in storage.list_services()] == ["a", "b", "c"]
        b = storage.get_service("b")
        assert b is not None
        storage.delete_service(b.service_id)
        assert storage.get_service("b") is None
        assert [s.name for s in storage.list_services()] == ["a", "c"]


class TestWorkflows:
    def test_versions_increment_and_stay_immutable(self, storage: Storage) -> None:
        v1, created = storage.save_workflow("wf", {"rev": 1}, {"StartAt": "A"}, ["upper"], False, NOW)
        v2, created_again = storage.save_workflow(
            "wf", {"rev": 2}, {"StartAt": "B"}, ["reverse"], True, NOW + 1
        )
        assert created and not created_again
        assert (v1.version, v2.version) == (1, 2)
        assert v2.workflow_id == v1.workflow_id
        old = storage.get_workflow("wf", 1)
        assert old is not None
        assert (old.spec, old.definition, old.services, old.express) == (
            {"rev": 1},
            {"StartAt": "A"},
            ["upper"],
            False,
        )
        latest = storage.get_workflow(v1.workflow_id)
        assert latest is not None
        assert (latest.version, latest.spec, latest.express) == (2, {"rev": 2}, True)
        assert [v.version for v in storage.list_versions(v1.workflow_id)] == [1, 2]
        assert [v.spec for v in storage.list_versions(v1.workflow_id)] == [{"rev": 1}, {"rev": 2}]

    def test_get_by_id_or_name_and_unknown(self, storage: Storage) -> None:
        record, _ = storage.save_workflow("wf", {}, {}, [], False, NOW)
        by_id = storage.get_workflow(record.workflow_id)
        by_name = storage.get_workflow("wf")
        assert by_id is not None and by_name is not None
        assert by_id.workflow_id == by_name.workflow_id == record.workflow_id
        assert storage.get_workflow("nope") is None
        assert storage.get_workflow("wf", 2) is None
        assert storage.list_versions("nope") == []

    def test_update_by_ref_keeps_id(self, storage: Storage) -> None:
        record, _ = storage.save_workflow("wf", {}, {}, [], False, NOW)
        renamed, created = storage.save_workflow("wf2", {}, {}, [], False, NOW, ref=record.workflow_id)
        assert not created
        assert (renamed.workflow_id, renamed.name, renamed.version) == (record.workflow_id, "wf2", 2)
        assert storage.get_workflow("wf") is None

    def test_workflows_using_looks_at_latest_versions(self, storage: Storage) -> None:
        storage.save_workflow("one", {}, {}, ["upper", "reverse"], False, NOW)
        storage.save_workflow("two", {}, {}, ["upper"], False, NOW)
        storage.save_workflow("two", {}, {}, ["reverse"], False, NOW)
        assert sorted(storage.workflows_using("upper")) == ["one"]
        assert sorted(storage.workflows_using("reverse")) == ["one", "two"]
        assert storage.workflows_using("space-counter") == []

    def test_list_and_delete(self, storage: Storage) -> None:
        storage.save_workflow("b", {}, {}, ["upper"], False, NOW)
        a, _ = storage.save_workflow("a", {}, {}, [], False, NOW)
        assert [w.name for w in storage.list_workflows()] == ["a", "b"]
        b = storage.get_workflow("b")
        assert b is not None
        storage.delete_workflow(b.workflow_id)
        assert storage.get_workflow("b") is None
        assert [w.workflow_id for w in storage.list_workflows()] == [a.workflow_id]
        assert storage.workflows_using("upper") == []


class TestExecutions:
    def test_create_and_get(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        execution_id = start_execution(storage, workflow_id, callback_url="http://hook/x")
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.workflow_id, record.workflow_version) == ("RUNNING", workflow_id, 1)
        assert (record.input, record.output, record.callback_url) == ({"n": 1}, None, "http://hook/x")
        assert root_of(storage, execution_id).state_input == {"n": 1}
        assert storage.get_execution("nope") is None
        assert storage.get_history(execution_id) == []

    def test_list_newest_first_with_filters_and_cursor(self, storage: Storage) -> None:
        wf_a, wf_b = make_workflow(storage, "a"), make_workflow(storage, "b")
        ids = [start_execution(storage, wf_a if i % 2 == 0 else wf_b) for i in range(7)]
        # finish two of a's executions
        for execution_id in ids[0:4:2]:
            assert storage.finish_execution(execution_id, "ABORTED", NOW)
        everything = storage.list_executions(None, None, 100, None)
        assert [r.execution_id for r in everything] == ids[::-1]
        of_a = [r.execution_id for r in storage.list_executions(wf_a, None, 100, None)]
        assert of_a == [ids[6], ids[4], ids[2], ids[0]]
        aborted = [r.execution_id for r in storage.list_executions(None, "ABORTED", 100, None)]
        assert aborted == [ids[2], ids[0]]
        running_a = [r.execution_id for r in storage.list_executions(wf_a, "RUNNING", 100, None)]
        assert running_a == [ids[6], ids[4]]

        pages, after = [], None
        while True:
            page = storage.list_executions(None, None, 3, after)
            if not page:
                break
            pages.append([r.execution_id for r in page])
            after = page[-1].execution_id
        assert pages == [ids[6:3:-1], ids[3:0:-1], ids[0:1]]
        page = storage.list_executions(wf_a, None, 2, ids[4])
        assert [r.execution_id for r in page] == [ids[2], ids[0]]

    def test_history_ids_are_sequential_across_commits(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = root_of(storage, execution_id)
        storage.commit(
            Commit(
                execution_id,
                item,
                branch,
                history=history(3),
                work=[WorkItem(execution_id, execution_id, WORK_TIMER, NOW)],
            ),
            NOW,
        )
        item = claim_one(storage)
        storage.commit(Commit(execution_id, item, branch, history=history(2, "WaitStateExited")), NOW)
        events = storage.get_history(execution_id)
        assert [e.event_id for e in events] == [1, 2, 3, 4, 5]
        assert [e.type for e in events] == ["PassStateEntered"] * 3 + ["WaitStateExited"] * 2
        assert events[1].details == {"i": 1}
        assert events[1].timestamp == NOW + 1

    def test_group_writers_is_at_least_one_and_stays_the_same(self, storage: Storage) -> None:
        writers = storage.group_writers()
        assert isinstance(writers, int) and writers >= 1
        assert storage.group_writers() == writers

    def test_history_keeps_each_events_details_and_time_as_written(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        details = [
            {"z": 1, "a": [1, "é", 1e-7, 2.5], "big": 2**70 + 1, "neg": -(2**63) - 1, "none": None},
            {"b": {"y": "\u2028", "x": [{"k": True}]}},
            {},
        ]
        events = [HistoryEvent(f"Kind{n}", d, NOW + n / 3) for n, d in enumerate(details)]
        storage.commit(
            Commit(execution_id, claim_one(storage), root_of(storage, execution_id), history=events), NOW
        )
        stored = storage.get_history(execution_id)
        assert [(e.event_id, e.type, e.timestamp) for e in stored] == [
            (n + 1, f"Kind{n}", NOW + n / 3) for n in range(3)
        ]
        assert [e.details for e in stored] == details
        assert [list(e.details) for e in stored] == [list(d) for d in details]  # key order

    def test_a_refused_commit_appends_no_history(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = root_of(storage, execution_id)
        stale = replace(item, fence=item.fence + 1)
        with pytest.raises(LeaseLost):
            storage.commit(Commit(execution_id, stale, branch, history=history(2)), NOW)
        assert storage.get_history(execution_id) == []
        storage.commit(Commit(execution_id, item, branch, history=history(1)), NOW)
        assert [e.event_id for e in storage.get_history(execution_id)] == [1]  # no id was used up

    def test_count_executions_by_workflow_and_status(self, storage: Storage) -> None:
        wf_a, wf_b = make_workflow(storage, "a"), make_workflow(storage, "b")
        ids = [start_execution(storage, wf_a) for _ in range(3)] + [start_execution(storage, wf_b)]
        assert storage.finish_execution(ids[0], "FAILED", NOW)
        assert storage.finish_execution(ids[1], "ABORTED", NOW)
        assert storage.count_executions() == {
            wf_a: {"RUNNING": 1, "FAILED": 1, "ABORTED": 1},
            wf_b: {"RUNNING": 1},
        }

    def test_history_pages_forwards_and_backwards(self, storage: Storage) -> None:
        record = storage.get_execution(start_execution(storage, make_workflow(storage)))
        assert record is not None
        for execution_id, count in (("paged", 7), ("beside", 3)):
            finished = replace(record, execution_id=execution_id, status="SUCCEEDED")
            storage.store_finished_execution(finished, history(count))

        def ids(**kwargs: Any) -> list[int]:
            return [e.event_id for e in storage.get_history("paged", **kwargs)]

        assert ids() == [1, 2, 3, 4, 5, 6, 7]
        assert ids(limit=3) == [1, 2, 3]
        assert ids(after=3, limit=3) == [4, 5, 6]
        assert ids(after=6, limit=3) == [7]
        assert ids(after=7) == []
        assert ids(after=2) == [3, 4, 5, 6, 7]
        assert ids(reverse=True) == [7, 6, 5, 4, 3, 2, 1]
        assert ids(reverse=True, limit=3) == [7, 6, 5]
        assert ids(reverse=True, after=5, limit=3) == [4, 3, 2]
        assert ids(reverse=True, after=2) == [1]
        assert ids(reverse=True, after=1) == []
        page = storage.get_history("paged", after=4, limit=1)
        assert (page[0].type, page[0].details, page[0].timestamp) == ("PassStateEntered", {"i": 4}, NOW + 4)
        assert storage.get_history("nope", limit=5) == []

    def test_store_finished_execution(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        record = ExecutionRecord(
            "express-1",
            workflow_id,
            "wf",
            1,
            "express-1",
            "SUCCEEDED",
            {"a": 1},
            NOW,
            output={"b": 2},
            finished_at=NOW + 1,
            callback_url="http://hook/x",
            express=True,
        )
        storage.store_finished_execution(record, history(2, "ExecutionStarted"))
        assert storage.get_execution("express-1") == record
        assert [e.event_id for e in storage.get_history("express-1")] == [1, 2]
        webhooks = claim_all(storage, now=NOW + 1)
        assert [(w.kind, w.execution_id) for w in webhooks] == [(WORK_WEBHOOK, "express-1")]
        # the history goes on after the stored events: the webhook's delivery is event 3
        storage.complete_work(webhooks[0], history=[HistoryEvent("WebhookDelivered", {}, NOW + 2)])
        assert [(e.event_id, e.type) for e in storage.get_history("express-1")][2:] == [
            (3, "WebhookDelivered")
        ]

    def test_store_finished_executions_stores_each_and_reports_each(self, storage: Storage) -> None:
        """The express executions of one tick: each stored with its history; one that cannot be stored
        (its id is taken) is reported alone."""
        workflow_id = make_workflow(storage)
        taken = start_execution(storage, workflow_id)

        def finished(execution_id: str) -> ExecutionRecord:
            return ExecutionRecord(
                execution_id, workflow_id, "wf", 1, execution_id, "SUCCEEDED", {"a": 1}, NOW,
                output={"id": execution_id}, finished_at=NOW + 1, express=True,
            )  # fmt: skip

        records = [finished("express-a"), finished(taken), finished("express-b")]
        results = storage.store_finished_executions([(r, history(3, "ExecutionStarted")) for r in records])
        assert results[0] is None and results[2] is None and isinstance(results[1], MachineryError)
        for execution_id in ("express-a", "express-b"):
            assert storage.get_execution(execution_id) == finished(execution_id)
            assert [e.event_id for e in storage.get_history(execution_id)] == [1, 2, 3]
        still = storage.get_execution(taken)
        assert still is not None and still.status == "RUNNING"

    def test_commit_group_stores_starts_with_the_commits(self, storage: Storage) -> None:
        """New executions claimed by their worker, written with the steps of the same tick; a step whose
        fence was lost is refused alone."""
        workflow_id = make_workflow(storage)
        running = start_execution(storage, workflow_id)
        item = claim_one(storage)
        stale = replace(item, fence=item.fence + 3)
        moved = replace(root_of(storage, running), state="Call", phase="task")
        workflow = storage.get_workflow(workflow_id)
        assert workflow is not None
        starts = [ClaimedStart(new_execution(workflow, {"n": n}, NOW), "w1", NOW + LEASE) for n in range(2)]
        created, results = storage.commit_group(starts, [(Commit(running, stale, moved), NOW + 1)])
        assert isinstance(results[0], LeaseLost)
        assert root_of(storage, running).state is None
        for start, claimed in zip(starts, created, strict=True):
            assert not isinstance(claimed, Exception)
            record = storage.get_execution(start.new.record.execution_id)
            assert record is not None and record.input == start.new.record.input
        others = storage.claim_work("w2", NOW + 1, 10, LEASE)  # the running one's item stays w1's
        new_ids = sorted(start.new.record.execution_id for start in starts)
        if all(created):  # the starts' work is w1's too
            assert [[(c.kind, c.owner) for c in claimed] for claimed in created] == [[(WORK_START, "w1")]] * 2
            assert others == []
        else:  # a backend that claims nothing (as create_execution_claimed may) leaves it claimable
            assert sorted(o.execution_id for o in others) == new_ids


class TestClaims:
    def test_claim_respects_due_at(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        soon = start_execution(storage, workflow_id, due_at=NOW)
        later = start_execution(storage, workflow_id, due_at=NOW + 10)
        assert [w.execution_id for w in claim_all(storage, now=NOW - 1)] == []
        assert [w.execution_id for w in claim_all(storage, now=NOW)] == [soon]
        assert [w.execution_id for w in claim_all(storage, now=NOW + 5)] == []
        claimed = claim_all(storage, now=NOW + 10)
        assert [w.execution_id for w in claimed] == [later]
        assert (claimed[0].kind, claimed[0].owner, claimed[0].due_at) == (WORK_START, "w1", NOW + 10)

    def test_claim_limit_and_oldest_first(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        ids = [start_execution(storage, workflow_id, due_at=NOW - i) for i in range(5)]
        first = storage.claim_work("w1", NOW, 2, LEASE)
        assert {w.execution_id for w in first} == {ids[4], ids[3]}
        second = storage.claim_work("w2", NOW, 10, LEASE)
        assert {w.execution_id for w in second} == {ids[2], ids[1], ids[0]}

    def test_two_claims_never_return_the_same_item(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        for _ in range(6):
            start_execution(storage, workflow_id)
        seen: list[int | None] = []
        for owner in ("w1", "w2", "w3", "w4"):
            seen += [w.work_id for w in storage.claim_work(owner, NOW, 2, LEASE)]
        assert len(seen) == 6
        assert len(set(seen)) == 6
        assert storage.claim_work("w5", NOW + LEASE - 1, 10, LEASE) == []

    def test_concurrent_claims_never_share_an_item(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        for _ in range(40):
            start_execution(storage, workflow_id)
        barrier = threading.Barrier(4)

        def drain(owner: str) -> list[int | None]:
            barrier.wait(10)
            mine: list[int | None] = []
            while batch := storage.claim_work(owner, NOW, 3, LEASE):
                mine += [w.work_id for w in batch]
            return mine

        with ThreadPoolExecutor(4) as pool:
            claimed = [i for part in pool.map(drain, ["w1", "w2", "w3", "w4"]) for i in part]
        assert len(claimed) == 40
        assert len(set(claimed)) == 40

    def test_expired_lease_is_reclaimed_and_the_old_owner_is_fenced_out(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        stale = claim_one(storage, "w1", NOW)
        assert storage.claim_work("w2", NOW + LEASE / 2, 10, LEASE) == []
        fresh = claim_one(storage, "w2", NOW + LEASE + 1)
        assert fresh.work_id == stale.work_id
        assert fresh.fence > stale.fence
        branch = root_of(storage, execution_id)
        with pytest.raises(LeaseLost):
            storage.commit(
                Commit(execution_id, stale, replace(branch, state="Stale"), history=history(1)), NOW + 31
            )
        # nothing of the stale commit was written
        assert root_of(storage, execution_id).state is None
        assert storage.get_history(execution_id) == []
        storage.commit(
            Commit(execution_id, fresh, replace(branch, state="Fresh"), history=history(1)), NOW + 32
        )
        assert root_of(storage, execution_id).state == "Fresh"
        assert [e.event_id for e in storage.get_history(execution_id)] == [1]

    def test_renewed_lease_is_not_reclaimed(self, storage: Storage) -> None:
        start_execution(storage, make_workflow(storage))
        item = claim_one(storage, "w1", NOW)
        assert item.work_id is not None
        storage.renew_leases("w1", [item.work_id], NOW + 100)
        assert storage.claim_work("w2", NOW + LEASE + 1, 10, LEASE) == []
        assert len(storage.claim_work("w2", NOW + 101, 10, LEASE)) == 1

    def test_release_leases_of_one_owner_or_all(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        for _ in range(3):
            start_execution(storage, workflow_id)
        storage.claim_work("w1", NOW, 2, LEASE)
        storage.claim_work("w2", NOW, 2, LEASE)
        assert storage.claim_work("w3", NOW, 10, LEASE) == []
        assert storage.release_leases("w1") == 2
        assert len(storage.claim_work("w3", NOW, 10, LEASE)) == 2
        assert storage.release_leases() == 3
        assert storage.release_leases() == 0
        assert len(storage.claim_work("w4", NOW, 10, LEASE)) == 3

    def test_next_due_is_the_earliest_unclaimed_item(self, storage: Storage) -> None:
        assert storage.next_due() is None
        workflow_id = make_workflow(storage)
        start_execution(storage, workflow_id, due_at=NOW + 20)
        start_execution(storage, workflow_id, due_at=NOW + 10)
        assert storage.next_due() == NOW + 10
        claim_one(storage, now=NOW + 10)
        assert storage.next_due() == NOW + 20

    def test_count_work_by_state(self, storage: Storage) -> None:
        assert storage.count_work(NOW) == WorkCounts(0, 0, 0)
        workflow_id = make_workflow(storage)
        for due in (NOW - 1, NOW, NOW + 10):
            start_execution(storage, workflow_id, due_at=due)
        assert storage.count_work(NOW) == WorkCounts(due=2, scheduled=1, claimed=0)
        claim_one(storage, now=NOW - 1)
        assert storage.count_work(NOW) == WorkCounts(due=1, scheduled=1, claimed=1)
        # An expired lease is no longer a claim: the item is due again.
        assert storage.count_work(NOW + LEASE) == WorkCounts(due=3, scheduled=0, claimed=0)

    def test_count_running_by_workflow(self, storage: Storage) -> None:
        assert storage.count_running() == {}
        first, second = make_workflow(storage, "first"), make_workflow(storage, "second")
        start_execution(storage, first)
        start_execution(storage, first)
        finished = start_execution(storage, second)
        assert storage.count_running() == {"first": 2, "second": 1}
        assert storage.finish_execution(finished, ExecutionStatus.ABORTED, NOW + 1)
        assert storage.count_running() == {"first": 2}

    def test_complete_work_deletes_or_reschedules(self, storage: Storage) -> None:
        start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        storage.complete_work(item, reschedule_at=NOW + 50)
        assert storage.next_due() == NOW + 50
        again = claim_one(storage, now=NOW + 50)
        assert again.work_id == item.work_id
        storage.complete_work(item)  # stale fence: no effect
        assert storage.claim_work("w2", NOW + 50 + LEASE + 1, 10, LEASE) != []
        assert storage.release_leases() == 1
        last = claim_one(storage, now=NOW + 200)
        storage.complete_work(last)
        assert storage.next_due() is None
        assert claim_all(storage, now=NOW + 1000) == []

    def test_wait_for_work_without_work_times_out(self, storage: Storage) -> None:
        # Backends without push wake-ups answer False at once; the others after the (short) timeout.
        assert storage.wait_for_work(0.05) is False

    def test_add_work(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        claim_one(storage)
        storage.add_work([WorkItem(execution_id, execution_id, WORK_TASK, NOW + 1, {"x": [1, "y"]})])
        item = claim_one(storage, now=NOW + 1)
        assert (item.kind, item.payload) == (WORK_TASK, {"x": [1, "y"]})

    def test_extend_heartbeat_moves_only_the_unclaimed_heartbeat_of_the_token(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        claim_one(storage)
        heartbeat = {"error": HEARTBEAT_TIMEOUT, "cause": "", "token": "tok-1"}
        timeout = {"error": "States.Timeout", "cause": "", "token": "tok-1"}
        storage.add_work(
            [
                WorkItem(execution_id, execution_id, WORK_TOKEN, NOW + 2, heartbeat),
                WorkItem(execution_id, execution_id, WORK_TOKEN, NOW + 60, timeout),
            ]
        )
        assert storage.extend_heartbeat(execution_id, execution_id, "tok-1", NOW + 5) is True
        assert storage.next_due() == NOW + 5
        assert storage.extend_heartbeat(execution_id, execution_id, "tok-2", NOW + 9) is False
        assert storage.extend_heartbeat(execution_id, "other-branch", "tok-1", NOW + 9) is False
        assert claim_all(storage, now=NOW + 4) == []
        fired = claim_one(storage, now=NOW + 5)
        assert fired.payload == heartbeat
        # Once claimed, the heartbeat timeout is firing: it can no longer be pushed back.
        assert storage.extend_heartbeat(execution_id, execution_id, "tok-1", NOW + 20) is False
        assert storage.next_due() == NOW + 60


class TestCommit:
    def test_commit_may_hand_due_work_straight_back(self, storage: Storage) -> None:
        """Backends that honour ``claim_owner`` return the due work claimed; others leave it claimable.

        Either way each item is run once: claimed items are not claimable by others while leased.
        """
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = replace(root_of(storage, execution_id), phase="task")
        due = WorkItem(execution_id, execution_id, WORK_TASK, NOW, {"n": 1})
        later = WorkItem(execution_id, execution_id, WORK_TIMER, NOW + 50)
        commit = Commit(
            execution_id, item, branch, work=[due, later], claim_owner="w1", lease_until=NOW + LEASE
        )
        result = storage.commit(commit, NOW)
        others = storage.claim_work("w2", NOW, 10, LEASE)
        if result.claimed:
            [claimed] = result.claimed
            assert (claimed.kind, claimed.payload, claimed.owner) == (WORK_TASK, {"n": 1}, "w1")
            assert others == []
            storage.commit(Commit(execution_id, claimed, branch), NOW)  # its fence is valid
        else:
            assert [(o.kind, o.payload) for o in others] == [(WORK_TASK, {"n": 1})]
        assert storage.next_due() == NOW + 50  # the timer was never handed out

    def test_create_execution_claimed(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        workflow = storage.get_workflow(workflow_id)
        assert workflow is not None
        record = ExecutionRecord("exec-claimed", workflow_id, workflow.name, 1, "n", "RUNNING", {}, NOW)
        root = Branch(branch_id="exec-claimed", execution_id="exec-claimed", container=())
        start = WorkItem("exec-claimed", "exec-claimed", WORK_START, NOW)
        claimed = storage.create_execution_claimed(record, root, [start], "w1", NOW + LEASE)
        assert storage.get_execution("exec-claimed") is not None
        others = storage.claim_work("w2", NOW, 10, LEASE)
        if claimed:
            assert [(c.kind, c.owner) for c in claimed] == [(WORK_START, "w1")]
            assert others == []
        else:
            assert [o.kind for o in others] == [WORK_START]

    def test_commit_writes_branch_history_and_work(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = replace(root_of(storage, execution_id), state="Call", phase="task")
        result = storage.commit(
            Commit(
                execution_id,
                item,
                branch,
                history=history(2),
                work=[WorkItem(execution_id, execution_id, WORK_TASK, NOW, {"resource": "upper"})],
            ),
            NOW,
        )
        assert not result.execution_finished
        assert result.new_work == 1
        assert root_of(storage, execution_id) == branch
        task = claim_one(storage)
        assert (task.kind, task.payload) == (WORK_TASK, {"resource": "upper"})
        with pytest.raises(LeaseLost):  # the start item was consumed
            storage.commit(Commit(execution_id, item, branch), NOW)

    def test_commit_many_writes_each_commit_on_its_own(self, storage: Storage) -> None:
        """A group commit: the commit whose fence was lost fails alone; the others are written, each with
        its own history and the work it hands back to its worker."""
        workflow_id = make_workflow(storage)
        ids = [start_execution(storage, workflow_id) for _ in range(3)]
        items = {item.execution_id: item for item in storage.claim_work("w1", NOW, 10, LEASE)}
        assert set(items) == set(ids)
        stale = replace(items[ids[1]], fence=items[ids[1]].fence + 7)
        commits = []
        for execution_id in ids:
            branch = replace(root_of(storage, execution_id), state="Call", phase="task")
            work = [WorkItem(execution_id, execution_id, WORK_TASK, NOW, {"resource": execution_id})]
            consumed = stale if execution_id == ids[1] else items[execution_id]
            commit = Commit(execution_id, consumed, branch, history=history(2), work=work)
            commit.claim_owner, commit.lease_until = "w1", NOW + LEASE
            commits.append((commit, NOW + 1))
        results = storage.commit_many(commits)
        assert isinstance(results[1], LeaseLost)
        for index in (0, 2):
            result = results[index]
            assert not isinstance(result, Exception)
            assert [(c.kind, c.payload, c.owner) for c in result.claimed] in (
                [(WORK_TASK, {"resource": ids[index]}, "w1")],
                [],  # a backend that ignores claim_owner leaves the work claimable
            )
            assert root_of(storage, ids[index]).state == "Call"
            assert [e.event_id for e in storage.get_history(ids[index])] == [1, 2]
        assert root_of(storage, ids[1]).state is None
        assert storage.get_history(ids[1]) == []

    def test_execution_update_finishes_once(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = root_of(storage, execution_id)
        storage.add_work([WorkItem(execution_id, execution_id, WORK_TIMER, NOW + 100)])
        done = replace(branch, status=SUCCEEDED, output={"ok": True})
        update = {"status": "SUCCEEDED", "output": {"ok": True}, "error": None, "cause": None}
        result = storage.commit(Commit(execution_id, item, done, execution_update=update), NOW + 1)
        assert result.execution_finished
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.output, record.finished_at) == ("SUCCEEDED", {"ok": True}, NOW + 1)
        # the execution's other work is gone
        assert storage.next_due() is None
        again = storage.commit(
            Commit(execution_id, None, done, execution_update={"status": "FAILED", "error": "X"}), NOW + 2
        )
        assert not again.execution_finished
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.error, record.finished_at) == ("SUCCEEDED", None, NOW + 1)
        assert not storage.finish_execution(execution_id, "ABORTED", NOW + 3)

    def test_failed_execution_keeps_error_and_cause(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        failed = replace(root_of(storage, execution_id), status=FAILED, error="E", cause="C")
        storage.commit(
            Commit(
                execution_id, item, failed, execution_update={"status": "FAILED", "error": "E", "cause": "C"}
            ),
            NOW,
        )
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.output, record.error, record.cause) == ("FAILED", None, "E", "C")

    def test_webhook_work_appears_when_callback_url_is_set(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        hooked = start_execution(storage, workflow_id, callback_url="http://hook/done")
        plain = start_execution(storage, workflow_id)
        items = {w.execution_id: w for w in claim_all(storage)}
        for execution_id in (hooked, plain):
            done = replace(root_of(storage, execution_id), status=SUCCEEDED, output=1)
            storage.commit(
                Commit(
                    execution_id,
                    items[execution_id],
                    done,
                    execution_update={"status": "SUCCEEDED", "output": 1},
                ),
                NOW,
            )
        webhooks = claim_all(storage)
        assert [(w.kind, w.execution_id) for w in webhooks] == [(WORK_WEBHOOK, hooked)]

    def test_a_rescheduled_webhook_keeps_its_new_payload_and_appends_history(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        hooked = start_execution(storage, workflow_id, callback_url="http://hook/done")
        (start,) = claim_all(storage)
        done = replace(root_of(storage, hooked), status=SUCCEEDED, output=1)
        storage.commit(Commit(hooked, start, done, execution_update={"status": "SUCCEEDED"}), NOW)
        (webhook,) = claim_all(storage)
        before = len(storage.get_history(hooked))
        failed = HistoryEvent("WebhookAttemptFailed", {"attempt": 1, "error": "refused"}, NOW + 1)
        storage.complete_work(webhook, reschedule_at=NOW + 5, payload={"attempt": 1}, history=[failed])
        assert claim_all(storage, now=NOW + 4) == []
        (again,) = claim_all(storage, now=NOW + 5)
        assert (again.work_id, again.payload) == (webhook.work_id, {"attempt": 1})
        history = storage.get_history(hooked)
        assert [(e.type, e.details) for e in history[before:]] == [
            ("WebhookAttemptFailed", {"attempt": 1, "error": "refused"})
        ]
        # a stale claim (the first one) changes nothing: neither the item nor the history
        stale = HistoryEvent("WebhookDelivered", {"attempts": 1}, NOW + 6)
        storage.complete_work(webhook, history=[stale])
        assert len(storage.get_history(hooked)) == before + 1
        delivered = HistoryEvent("WebhookDelivered", {"attempts": 2}, NOW + 6)
        storage.complete_work(again, history=[delivered])
        assert storage.get_history(hooked, limit=1, reverse=True)[0].type == "WebhookDelivered"
        assert claim_all(storage, now=NOW + 1000) == []

    def test_finish_execution_cancels_branches_and_work(self, storage: Storage) -> None:
        execution_id, join_id, _children = open_join(storage, total=2)
        other = start_execution(storage, make_workflow(storage, "other"), callback_url="http://hook/x")
        assert storage.finish_execution(execution_id, "ABORTED", NOW + 5, "Stopped", "by a test")
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.error, record.cause, record.finished_at) == (
            "ABORTED",
            "Stopped",
            "by a test",
            NOW + 5,
        )
        assert [w.execution_id for w in claim_all(storage)] == [other]
        assert root_of(storage, execution_id).status == CANCELLED
        assert [c.status for c in storage.child_results(join_id)] == [CANCELLED, CANCELLED]
        assert storage.get_history(execution_id)[-1].type == "ExecutionAborted"
        assert not storage.finish_execution(execution_id, "ABORTED", NOW + 6)
        assert len(storage.get_history(execution_id)) == 1
        # an outside finish of an execution with a callback queues its webhook
        assert storage.finish_execution(other, "TIMED_OUT", NOW + 7, "States.Timeout", "")
        assert storage.get_history(other)[-1].type == "ExecutionTimedOut"
        assert [(w.kind, w.execution_id) for w in claim_all(storage, now=NOW + 7)] == [(WORK_WEBHOOK, other)]


class TestJoins:
    def test_all_children_start_without_max_concurrency(self, storage: Storage) -> None:
        _execution_id, join_id, children = open_join(storage, total=3)
        starts = claim_all(storage)
        assert sorted(w.branch_id for w in starts) == [c.branch_id for c in children]
        assert all(w.kind == WORK_START for w in starts)
        assert [c.branch_id for c in storage.child_results(join_id)] == [c.branch_id for c in children]
        assert storage.child_results(join_id)[1].state_input == {"i": 1}

    def test_children_succeeding_close_the_join_with_one_children_item(self, storage: Storage) -> None:
        execution_id, join_id, _ = open_join(storage, total=3)
        for item in claim_all(storage):
            finish_child(storage, item, SUCCEEDED)
        done = claim_all(storage)
        assert [(w.kind, w.branch_id) for w in done] == [(WORK_CHILDREN, execution_id)]
        assert done[0].payload == {"join_id": join_id}
        results = storage.child_results(join_id)
        assert [(c.status, c.output) for c in results] == [(SUCCEEDED, {"done": i}) for i in range(3)]

    def test_max_concurrency_admits_the_next_child_when_one_finishes(self, storage: Storage) -> None:
        execution_id, _join_id, children = open_join(storage, total=5, max_concurrency=2)
        running = claim_all(storage)
        assert sorted(w.branch_id for w in running) == [children[0].branch_id, children[1].branch_id]
        assert claim_all(storage, "w2") == []
        started = sorted(w.branch_id for w in running)
        others: list[WorkItem] = []
        while running:
            item, *running = running
            finish_child(storage, item, SUCCEEDED)
            claimed = claim_all(storage)
            admitted = [w for w in claimed if w.kind == WORK_START]
            others += [w for w in claimed if w.kind != WORK_START]
            assert len(admitted) <= 1
            running += admitted
            started += [w.branch_id for w in admitted]
            assert len(running) <= 2
        assert started == [c.branch_id for c in children]
        assert [(w.kind, w.branch_id) for w in others] == [(WORK_CHILDREN, execution_id)]

    def test_a_failing_child_closes_the_join_and_cancels_its_siblings(self, storage: Storage) -> None:
        execution_id, join_id, _children = open_join(storage, total=4, max_concurrency=3)
        first, second, third = sorted(claim_all(storage), key=lambda w: w.branch_id)
        finish_child(storage, first, SUCCEEDED)
        fourth = claim_one(storage)
        finish_child(storage, second, FAILED, error="Boom")
        closing = claim_all(storage)
        assert [(w.kind, w.branch_id) for w in closing] == [(WORK_CHILDREN, execution_id)]
        assert closing[0].payload == {"join_id": join_id, "error": "Boom", "cause": "cause of Boom"}
        statuses = [c.status for c in storage.child_results(join_id)]
        assert statuses == [SUCCEEDED, FAILED, CANCELLED, CANCELLED]
        # the siblings' claimed work was deleted: their owners are fenced out
        for sibling in (third, fourth):
            with pytest.raises(LeaseLost):
                finish_child(storage, sibling, SUCCEEDED)
        assert [w.work_id for w in claim_all(storage, now=NOW + 1000)] == [closing[0].work_id]

    def test_children_finishing_after_close_add_no_second_children_item(self, storage: Storage) -> None:
        execution_id, _join_id, children = open_join(storage, total=2)
        first, _second = sorted(claim_all(storage), key=lambda w: w.branch_id)
        finish_child(storage, first, FAILED, error="Boom")
        late = replace(children[1], status=SUCCEEDED, output=1)
        storage.commit(Commit(execution_id, None, late), NOW)
        assert [w.kind for w in claim_all(storage)] == [WORK_CHILDREN]

    def test_map_tolerates_failures_up_to_the_count(self, storage: Storage) -> None:
        _execution_id, join_id, _ = open_join(
            storage, total=3, kind="Map", tolerated_count=1, max_concurrency=1
        )
        finish_child(storage, claim_one(storage), FAILED, error="Boom")
        finish_child(storage, claim_one(storage), SUCCEEDED)
        finish_child(storage, claim_one(storage), SUCCEEDED)
        done = claim_all(storage)
        assert [(w.kind, w.payload) for w in done] == [(WORK_CHILDREN, {"join_id": join_id})]
        assert [c.status for c in storage.child_results(join_id)] == [FAILED, SUCCEEDED, SUCCEEDED]

    def test_map_over_the_tolerated_count_fails_with_the_threshold_error(self, storage: Storage) -> None:
        _execution_id, join_id, _ = open_join(storage, total=4, kind="Map", tolerated_count=1)
        items = sorted(claim_all(storage), key=lambda w: w.branch_id)
        finish_child(storage, items[0], FAILED, error="Boom")
        assert claim_all(storage) == []
        finish_child(storage, items[1], FAILED, error="Boom")
        done = claim_all(storage)
        assert [w.kind for w in done] == [WORK_CHILDREN]
        assert done[0].payload["error"] == "States.ExceedToleratedFailureThreshold"
        assert [c.status for c in storage.child_results(join_id)] == [FAILED, FAILED, CANCELLED, CANCELLED]

    def test_map_tolerated_percentage(self, storage: Storage) -> None:
        _execution_id, join_id, _ = open_join(storage, total=4, kind="Map", tolerated_pct=50)
        items = sorted(claim_all(storage), key=lambda w: w.branch_id)
        finish_child(storage, items[0], FAILED, error="Boom")
        finish_child(storage, items[1], FAILED, error="Boom")
        assert claim_all(storage) == []
        finish_child(storage, items[2], SUCCEEDED)
        finish_child(storage, items[3], SUCCEEDED)
        done = claim_all(storage)
        assert [(w.kind, w.payload) for w in done] == [(WORK_CHILDREN, {"join_id": join_id})]

    def test_empty_join_state_is_readable(self, storage: Storage) -> None:
        assert storage.child_results("nope@0") == []
        assert storage.get_branch("nope") is None


def open_child_executions(
    storage: Storage, *, total: int, max_concurrency: int = 0, tolerated_count: int = 0
) -> tuple[str, str, list[str]]:
    """A DISTRIBUTED Map: the root branch started ``total`` child executions; (parent, join, children)."""
    parent_id = start_execution(storage, make_workflow(storage, f"wf-{next(_ids)}"))
    item = claim_one(storage)
    parent = root_of(storage, parent_id)
    workflow = storage.get_workflow(storage.get_execution(parent_id).workflow_id)  # type: ignore[union-attr]
    assert workflow is not None
    join_id = f"{parent_id}@1"
    children, records = [], []
    for index in range(total):
        child_id = f"{parent_id}-child-{index}"
        records.append(
            ExecutionRecord(
                execution_id=child_id,
                workflow_id=workflow.workflow_id,
                workflow_name=workflow.name,
                workflow_version=workflow.version,
                name=f"{parent_id}/Map/{index}",
                status="RUNNING",
                input={"i": index},
                started_at=NOW + index,
                parent_execution_id=parent_id,
            )
        )
        children.append(
            Branch(
                branch_id=f"{join_id}/{index}",
                execution_id=child_id,
                container=("Map", "items"),
                parent_id=parent.branch_id,
                index=index,
                state_input={"i": index},
                execution_root=True,
            )
        )
    spec = JoinSpec(join_id, parent.branch_id, "Map", total, max_concurrency, tolerated_count, 0.0)
    commit = Commit(
        parent_id,
        item,
        replace(parent, phase="children"),
        children=children,
        child_executions=records,
        join=spec,
    )
    storage.commit(commit, NOW)
    return parent_id, join_id, [record.execution_id for record in records]


def end_child_execution(storage: Storage, item: WorkItem, status: str) -> None:
    """The root branch of a child execution ends, and with it its execution."""
    branch = storage.get_branch(item.branch_id)
    assert branch is not None
    output = {"done": branch.index} if status == SUCCEEDED else None
    error = None if status == SUCCEEDED else "Boom"
    done = replace(branch, status=status, output=output, error=error, cause=error and "cause of Boom")
    update = {"status": status, "output": output, "error": error, "cause": done.cause}
    storage.commit(Commit(item.execution_id, item, done, execution_update=update), NOW + 1)


class TestChildExecutions:
    def test_children_are_executions_listed_under_their_parent_only(self, storage: Storage) -> None:
        parent_id, join_id, child_ids = open_child_executions(storage, total=3)
        child = storage.get_execution(child_ids[1])
        assert child is not None
        assert (child.parent_execution_id, child.status, child.input) == (parent_id, "RUNNING", {"i": 1})
        assert storage.get_execution(parent_id).parent_execution_id is None  # type: ignore[union-attr]
        top = [r.execution_id for r in storage.list_executions(None, None, 100, None)]
        assert parent_id in top and not set(child_ids) & set(top)
        listed = storage.list_executions(None, None, 100, None, parent_id)
        assert [r.execution_id for r in listed] == child_ids[::-1]
        page = storage.list_executions(None, "RUNNING", 1, child_ids[2], parent_id)
        assert [r.execution_id for r in page] == [child_ids[1]]
        starts = claim_all(storage)
        assert sorted((w.execution_id, w.branch_id) for w in starts) == [
            (child_ids[i], f"{join_id}/{i}") for i in range(3)
        ]
        assert [c.execution_id for c in storage.child_results(join_id)] == child_ids

    def test_join_accounting_across_executions(self, storage: Storage) -> None:
        parent_id, join_id, child_ids = open_child_executions(storage, total=3, max_concurrency=1)
        for index in range(3):
            start = claim_one(storage, now=NOW + 10)
            assert (start.kind, start.execution_id) == (WORK_START, child_ids[index])
            end_child_execution(storage, start, SUCCEEDED)
            record = storage.get_execution(child_ids[index])
            assert record is not None and (record.status, record.output) == ("SUCCEEDED", {"done": index})
        done = claim_one(storage, now=NOW + 10)
        assert (done.kind, done.execution_id, done.branch_id) == (WORK_CHILDREN, parent_id, parent_id)
        assert done.payload == {"join_id": join_id}
        assert [c.output for c in storage.child_results(join_id)] == [{"done": i} for i in range(3)]
        assert storage.get_execution(parent_id).status == "RUNNING"  # type: ignore[union-attr]

    def test_a_join_over_its_tolerance_aborts_the_running_children(self, storage: Storage) -> None:
        parent_id, join_id, child_ids = open_child_executions(storage, total=3, tolerated_count=0)
        starts = sorted(claim_all(storage), key=lambda w: w.branch_id)
        end_child_execution(storage, starts[0], FAILED)
        assert storage.get_execution(child_ids[0]).status == "FAILED"  # type: ignore[union-attr]
        for child_id in child_ids[1:]:
            assert storage.get_execution(child_id).status == "ABORTED"  # type: ignore[union-attr]
            assert storage.get_history(child_id)[-1].type == "ExecutionAborted"
        closing = claim_all(storage, now=NOW + 10)
        assert [(w.kind, w.execution_id) for w in closing] == [(WORK_CHILDREN, parent_id)]
        assert closing[0].payload == {"join_id": join_id, "error": "Boom", "cause": "cause of Boom"}
        with pytest.raises(LeaseLost):
            end_child_execution(storage, starts[1], SUCCEEDED)

    def test_stopping_the_parent_stops_its_children_and_theirs(self, storage: Storage) -> None:
        parent_id, _join_id, child_ids = open_child_executions(storage, total=2)
        starts = sorted(claim_all(storage), key=lambda w: w.branch_id)
        end_child_execution(storage, starts[0], SUCCEEDED)
        claim_all(storage, now=NOW + 10)
        assert storage.finish_execution(parent_id, "ABORTED", NOW + 5, "Stopped", "by a test")
        assert storage.get_execution(child_ids[0]).status == "SUCCEEDED"  # type: ignore[union-attr]
        stopped = storage.get_execution(child_ids[1])
        assert stopped is not None and (stopped.status, stopped.finished_at) == ("ABORTED", NOW + 5)
        assert [e.type for e in storage.get_history(child_ids[1])] == ["ExecutionAborted"]
        assert root_of(storage, parent_id).status == CANCELLED
        assert storage.get_branch(starts[1].branch_id).status == CANCELLED  # type: ignore[union-attr]
        assert claim_all(storage, now=NOW + 100) == []
        with pytest.raises(LeaseLost):
            end_child_execution(storage, starts[1], SUCCEEDED)

    def test_a_parent_that_ends_aborts_its_running_children(self, storage: Storage) -> None:
        parent_id, _join_id, child_ids = open_child_executions(storage, total=2)
        claim_all(storage)
        parent = root_of(storage, parent_id)
        failed = replace(parent, status=FAILED, error="States.Timeout")
        update = {"status": FAILED, "error": "States.Timeout", "cause": ""}
        storage.commit(Commit(parent_id, None, failed, execution_update=update), NOW + 2)
        assert [storage.get_execution(c).status for c in child_ids] == ["ABORTED", "ABORTED"]  # type: ignore[union-attr]


def handed_back(storage: Storage, result: CommitResult, now: float) -> WorkItem:
    """The one due item a commit with ``claim_owner="w1"`` handed back, or (a backend that ignores
    ``claim_owner``) claimed by w1 now."""
    claimed = result.claimed or storage.claim_work("w1", now, 10, LEASE)
    assert len(claimed) == 1, claimed
    return claimed[0]


class TestSteps:
    """Commits as the worker makes them: with history and the item they consume (PostgreSQL writes such a
    plain step in one statement: the same outcome as part by part)."""

    def test_a_step_appends_consumes_writes_and_hands_its_next_item_back_claimed(
        self, storage: Storage
    ) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        branch = replace(root_of(storage, execution_id), state="B")
        following = WorkItem(execution_id, execution_id, WORK_START, NOW + 1, {"p": 1})
        commit = Commit(
            execution_id,
            item,
            branch,
            history=history(2),
            work=[following],
            claim_owner="w1",
            lease_until=NOW + 60,
        )
        result = storage.commit(commit, NOW + 1)
        assert not result.execution_finished and result.new_work == 1
        claimed = handed_back(storage, result, NOW + 1)
        assert (claimed.owner, claimed.kind, claimed.payload) == ("w1", WORK_START, {"p": 1})
        assert claimed.work_id != item.work_id
        assert storage.claim_work("w2", NOW + 2, 10, LEASE) == []  # its lease holds
        assert root_of(storage, execution_id).state == "B"
        assert [(e.event_id, e.details) for e in storage.get_history(execution_id)] == [
            (1, {"i": 0}),
            (2, {"i": 1}),
        ]
        # the claimed item is the next step's to consume, under its fence
        again = storage.commit(Commit(execution_id, claimed, branch, history=history(1)), NOW + 2)
        assert again.claimed == [] and storage.next_due() is None
        assert [e.event_id for e in storage.get_history(execution_id)] == [1, 2, 3]
        with pytest.raises(LeaseLost):
            storage.commit(Commit(execution_id, claimed, branch, history=history(1)), NOW + 3)
        assert len(storage.get_history(execution_id)) == 3

    def test_a_next_item_due_later_is_left_for_any_worker(self, storage: Storage) -> None:
        execution_id = start_execution(storage, make_workflow(storage))
        item = claim_one(storage)
        timer = WorkItem(execution_id, execution_id, WORK_TIMER, NOW + 50)
        commit = Commit(
            execution_id,
            item,
            root_of(storage, execution_id),
            history=history(1),
            work=[timer],
            claim_owner="w1",
        )
        assert storage.commit(commit, NOW).claimed == []
        assert storage.next_due() == NOW + 50
        assert [(w.kind, w.owner) for w in storage.claim_work("w2", NOW + 50, 10, LEASE)] == [
            (WORK_TIMER, "w2")
        ]

    def test_a_last_step_ends_the_execution_drops_its_work_and_claims_its_webhook(
        self, storage: Storage
    ) -> None:
        execution_id = start_execution(storage, make_workflow(storage), callback_url="http://hook/done")
        item = claim_one(storage)
        storage.add_work([WorkItem(execution_id, execution_id, WORK_TIMER, NOW + 100)])
        done = replace(root_of(storage, execution_id), status=SUCCEEDED, output={"ok": 1})
        update = {"status": "SUCCEEDED", "output": {"ok": 1}, "error": None, "cause": None}
        commit = Commit(
            execution_id,
            item,
            done,
            history=history(2),
            execution_update=update,
            claim_owner="w1",
            lease_until=NOW + 60,
        )
        result = storage.commit(commit, NOW + 1)
        assert result.execution_finished and result.new_work == 1
        webhook = handed_back(storage, result, NOW + 1)
        assert (webhook.kind, webhook.owner) == (WORK_WEBHOOK, "w1")
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.output, record.finished_at) == ("SUCCEEDED", {"ok": 1}, NOW + 1)
        assert root_of(storage, execution_id).status == SUCCEEDED
        assert len(storage.get_history(execution_id)) == 2
        assert storage.next_due() is None  # the timer is gone, the webhook is w1's
        with pytest.raises(LeaseLost):
            storage.commit(commit, NOW + 2)
        assert len(storage.get_history(execution_id)) == 2

    def test_a_last_step_that_fails_keeps_its_error_and_aborts_running_children(
        self, storage: Storage
    ) -> None:
        parent_id, _join_id, child_ids = open_child_executions(storage, total=2)
        storage.add_work([WorkItem(parent_id, parent_id, WORK_TIMER, NOW + 1)])
        [item] = [w for w in claim_all(storage, now=NOW + 1) if w.execution_id == parent_id]
        failed = replace(root_of(storage, parent_id), status=FAILED, error="States.Timeout", cause="late")
        update = {"status": FAILED, "error": "States.Timeout", "cause": "late"}
        result = storage.commit(
            Commit(parent_id, item, failed, history=history(1), execution_update=update), NOW + 2
        )
        assert result.execution_finished
        record = storage.get_execution(parent_id)
        assert record is not None
        assert (record.status, record.output, record.error, record.cause) == (
            FAILED,
            None,
            "States.Timeout",
            "late",
        )
        assert [storage.get_execution(c).status for c in child_ids] == ["ABORTED", "ABORTED"]  # type: ignore[union-attr]


class TestRetention:
    def test_purge_deletes_finished_executions_with_all_they_own(self, storage: Storage) -> None:
        old = start_execution(storage, make_workflow(storage, "old"), callback_url="http://127.0.0.1:9/hook")
        storage.finish_execution(old, "ABORTED", NOW + 1)
        parent_id, join_id, child_ids = open_child_executions(storage, total=2)
        starts = sorted(claim_all(storage), key=lambda w: w.branch_id)
        end_child_execution(storage, starts[0], SUCCEEDED)
        storage.finish_execution(parent_id, "ABORTED", NOW + 2)
        recent = start_execution(storage, make_workflow(storage, "recent"))
        storage.finish_execution(recent, "ABORTED", NOW + 100)
        running = start_execution(storage, make_workflow(storage, "running"))
        assert storage.get_history(old) and storage.child_results(join_id)

        assert storage.purge_executions(NOW + 50, 10) == 2

        for gone in (old, parent_id, *child_ids):
            assert storage.get_execution(gone) is None
            assert storage.get_history(gone) == []
            assert storage.get_branch(gone) is None
        assert storage.child_results(join_id) == []
        assert storage.get_branch(f"{join_id}/0") is None
        # The old execution's webhook delivery went with it; the running one's start is still due.
        due = claim_all(storage, now=NOW + 1000)
        assert [(item.kind, item.execution_id) for item in due] == [(WORK_START, running)]
        assert storage.get_execution(recent) is not None and storage.get_history(recent)
        assert storage.get_execution(running) is not None
        assert storage.purge_executions(NOW + 50, 10) == 0

    def test_purge_takes_the_oldest_first_in_batches(self, storage: Storage) -> None:
        ids = [start_execution(storage, make_workflow(storage, f"batch-{i}")) for i in range(5)]
        for offset, execution_id in enumerate(reversed(ids)):
            storage.finish_execution(execution_id, "ABORTED", NOW + offset)
        assert [storage.purge_executions(NOW + 100, 2) for _ in range(4)] == [2, 2, 1, 0]
        assert all(storage.get_execution(execution_id) is None for execution_id in ids)

        kept = start_execution(storage, make_workflow(storage, "kept"))
        storage.finish_execution(kept, "ABORTED", NOW + 10)
        newest_first = [start_execution(storage, make_workflow(storage, f"n-{i}")) for i in range(2)]
        for offset, execution_id in enumerate(newest_first):
            storage.finish_execution(execution_id, "ABORTED", NOW + 1 + offset)
        assert storage.purge_executions(NOW + 100, 2) == 2
        assert [storage.get_execution(i) is None for i in (*newest_first, kept)] == [True, True, False]

    def test_children_of_a_running_execution_are_kept(self, storage: Storage) -> None:
        _parent_id, join_id, child_ids = open_child_executions(storage, total=2)
        starts = sorted(claim_all(storage), key=lambda w: w.branch_id)
        end_child_execution(storage, starts[0], SUCCEEDED)
        assert storage.purge_executions(NOW + 10**9, 10) == 0
        assert storage.get_execution(child_ids[0]).status == "SUCCEEDED"  # type: ignore[union-attr]
        assert [c.status for c in storage.child_results(join_id)] == [SUCCEEDED, ACTIVE]


def _token(name: str, n: int) -> ApiTokenRecord:
    return ApiTokenRecord(f"tok_{n}", name, "write", f"hash-{n}", f"MKIA{n:016d}", NOW + n)


class TestApiTokens:
    def test_tokens_are_found_by_each_field_listed_and_deleted(self, storage: Storage) -> None:
        assert storage.list_api_tokens() == []
        first, second = _token("ci", 1), _token("alice", 2)
        assert storage.create_api_token(first) and storage.create_api_token(second)
        for field in ("token_id", "name", "token_hash", "access_key_id"):
            assert storage.find_api_token(field, getattr(second, field)) == second
            assert storage.find_api_token(field, "nothing") is None
        assert storage.list_api_tokens() == [first, second]
        assert storage.delete_api_token(first.token_id)
        assert not storage.delete_api_token(first.token_id)
        assert storage.list_api_tokens() == [second]
        assert storage.find_api_token("token_hash", first.token_hash) is None

    def test_whether_any_token_exists_follows_each_creation_and_revocation(self, storage: Storage) -> None:
        assert not storage.has_api_tokens()
        assert not storage.has_api_tokens()  # asked again (from a cache, where there is one)
        assert storage.create_api_token(_token("ci", 1))
        assert storage.has_api_tokens()
        assert not storage.create_api_token(_token("ci", 2))  # refused: still one token
        assert storage.delete_api_token("tok_1")
        assert not storage.has_api_tokens()

    def test_a_taken_name_stores_nothing(self, storage: Storage) -> None:
        assert storage.create_api_token(_token("ci", 1))
        assert not storage.create_api_token(_token("ci", 2))
        assert storage.list_api_tokens() == [_token("ci", 1)]
        assert storage.find_api_token("token_hash", "hash-2") is None


class TestLookupsAndResources:
    """Executions by name (AWS execution ARNs) and the front doors' resource documents."""

    def test_find_execution_by_workflow_and_name(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage, "orders")
        first = start_execution(storage, workflow_id)
        found = storage.find_execution("orders", first)
        assert found is not None and found.execution_id == first
        assert storage.find_execution("orders", "nope") is None
        assert storage.find_execution("other", first) is None

    def test_find_execution_gives_the_newest_of_a_name(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage, "orders")
        workflow = storage.get_workflow(workflow_id)
        assert workflow is not None
        ids = []
        for number in range(2):
            execution_id = f"named-{number}-{next(_ids)}"
            record = ExecutionRecord(
                execution_id, workflow_id, "orders", workflow.version, "same", "RUNNING", {}, NOW + number
            )
            root = Branch(branch_id=execution_id, execution_id=execution_id, container=())
            storage.create_execution(record, root, [])
            ids.append(execution_id)
        found = storage.find_execution("orders", "same")
        assert found is not None and found.execution_id == ids[1]

    def test_resources_put_get_list_delete(self, storage: Storage) -> None:
        assert storage.get_resource("tag", "a") is None
        storage.put_resource("tag", "b/1", {"v": 1})
        storage.put_resource("tag", "a/2", {"v": 2, "nested": {"k": ["x"]}})
        storage.put_resource("tag", "a/1", {"v": 3})
        storage.put_resource("other", "a/9", {"v": 4})
        storage.put_resource("tag", "a/1", {"v": 5})  # replaces
        assert storage.get_resource("tag", "a/1") == {"v": 5}
        assert storage.list_resources("tag", "a/") == [
            ("a/1", {"v": 5}),
            ("a/2", {"v": 2, "nested": {"k": ["x"]}}),
        ]
        assert [key for key, _ in storage.list_resources("tag")] == ["a/1", "a/2", "b/1"]
        assert storage.list_resources("tag", "a%") == [] and storage.list_resources("tag", "a_") == []
        assert storage.delete_resource("tag", "a/1") is True
        assert storage.delete_resource("tag", "a/1") is False
        assert storage.get_resource("tag", "a/1") is None
        assert storage.get_resource("other", "a/9") == {"v": 4}

    def test_insert_resource_only_once(self, storage: Storage) -> None:
        assert storage.insert_resource("version", "wf/1", {"n": 1}) is True
        assert storage.insert_resource("version", "wf/1", {"n": 2}) is False
        assert storage.get_resource("version", "wf/1") == {"n": 1}

    def test_take_resource_in_key_order_once(self, storage: Storage) -> None:
        for number in (3, 1, 2):
            storage.put_resource("task", f"act/{number}", {"n": number})
        storage.put_resource("task", "other/0", {"n": 0})
        assert storage.take_resource("task", "act/") == ("act/1", {"n": 1})
        taken: list[tuple[str, dict[str, Any]] | None] = []
        with ThreadPoolExecutor(4) as pool:
            taken = list(pool.map(lambda _: storage.take_resource("task", "act/"), range(4)))
        assert sorted(t[0] for t in taken if t is not None) == ["act/2", "act/3"]
        assert taken.count(None) == 2
        assert storage.take_resource("task", "act/") is None
        assert storage.get_resource("task", "other/0") == {"n": 0}


class TestRedrive:
    """Reopening a finished execution: status, counters, branches, joins, history and work at once."""

    def _failed_join(self, storage: Storage) -> tuple[str, str, list[Branch]]:
        """A Parallel of three children whose child 1 failed (child 0 succeeded, child 2 cancelled)."""
        execution_id, join_id, children = open_join(storage, total=3)
        items = {item.branch_id: item for item in claim_all(storage)}
        finish_child(storage, items[children[0].branch_id], SUCCEEDED)
        finish_child(storage, items[children[1].branch_id], FAILED, error="Boom")
        parent_item = claim_one(storage)
        parent = root_of(storage, execution_id)
        update = {"status": FAILED, "error": "Boom", "cause": "cause of Boom"}
        failed = replace(parent, status=FAILED, error="Boom")
        storage.commit(Commit(execution_id, parent_item, failed, execution_update=update), NOW + 1)
        return execution_id, join_id, children

    def test_get_join(self, storage: Storage) -> None:
        _execution_id, join_id, children = self._failed_join(storage)
        join = storage.get_join(join_id)
        assert join is not None
        assert (join.spec.total, join.succeeded, join.failed, join.closed) == (3, 1, 1, True)
        assert join.spec.parent_id == children[0].parent_id
        assert storage.get_join("nope") is None

    def test_redrive_reopens_what_the_plan_says(self, storage: Storage) -> None:
        execution_id, join_id, children = self._failed_join(storage)
        record = storage.get_execution(execution_id)
        assert record is not None and record.status == FAILED and record.redrive_count == 0
        join = storage.get_join(join_id)
        assert join is not None
        parent = root_of(storage, execution_id)
        rerun = [replace(storage.get_branch(c.branch_id), status="ACTIVE", error=None) for c in children[1:]]  # type: ignore[type-var]
        plan = RedrivePlan(
            executions=[(execution_id, FAILED)],
            branches=[(replace(parent, status="ACTIVE", error=None), None), *((b, join_id) for b in rerun)],
            joins=[replace(join, started=3, succeeded=1, failed=0, closed=False)],
            work=[WorkItem(execution_id, b.branch_id, WORK_START, NOW + 2) for b in rerun],
            history={execution_id: [HistoryEvent("ExecutionRedriven", {"redriveCount": 1}, NOW + 2)]},
        )
        assert storage.redrive_execution(plan, NOW + 2) is True
        record = storage.get_execution(execution_id)
        assert record is not None
        assert (record.status, record.redrive_count, record.redrive_date) == ("RUNNING", 1, NOW + 2)
        assert (record.error, record.cause, record.finished_at) == (None, None, None)
        assert [b.status for b in storage.child_results(join_id)] == [SUCCEEDED, "ACTIVE", "ACTIVE"]
        reopened = storage.get_join(join_id)
        assert reopened is not None and (reopened.started, reopened.succeeded, reopened.failed) == (3, 1, 0)
        assert not reopened.closed
        assert storage.get_history(execution_id)[-1].type == "ExecutionRedriven"
        assert sorted(item.branch_id for item in claim_all(storage, now=NOW + 3)) == [
            children[1].branch_id,
            children[2].branch_id,
        ]
        # The reopened join counts the rerun children as any join does.
        for item in storage.claim_work("w1", NOW + 100, 10, LEASE):
            finish_child(storage, item, SUCCEEDED)
        (parent_item,) = storage.claim_work("w1", NOW + 200, 10, LEASE)
        assert parent_item.kind == WORK_CHILDREN and parent_item.payload.get("error") is None

    def test_update_join_limits_admits_more_children(self, storage: Storage) -> None:
        _execution_id, join_id, children = open_join(storage, total=5, max_concurrency=1, kind="Map")
        assert [item.branch_id for item in claim_all(storage)] == [children[0].branch_id]
        assert storage.update_join_limits(join_id, 3, 1, 20.0, NOW + 1) is True
        join = storage.get_join(join_id)
        assert join is not None
        assert (join.spec.max_concurrency, join.spec.tolerated_failure_count, join.started) == (3, 1, 3)
        assert join.spec.tolerated_failure_percentage == 20.0
        started = sorted(item.branch_id for item in claim_all(storage, now=NOW + 2))
        assert started == [children[1].branch_id, children[2].branch_id]
        # No limit: every queued child starts.
        assert storage.update_join_limits(join_id, 0, 1, 20.0, NOW + 3) is True
        assert sorted(item.branch_id for item in claim_all(storage, now=NOW + 4)) == [
            children[3].branch_id,
            children[4].branch_id,
        ]
        assert storage.update_join_limits("nope", 1, 0, 0.0, NOW) is False

    def test_redrive_only_from_the_expected_status(self, storage: Storage) -> None:
        execution_id, _join_id, _children = self._failed_join(storage)
        plan = RedrivePlan(
            executions=[(execution_id, "ABORTED")],
            history={execution_id: [HistoryEvent("ExecutionRedriven", {"redriveCount": 1}, NOW + 2)]},
        )
        assert storage.redrive_execution(plan, NOW + 2) is False
        record = storage.get_execution(execution_id)
        assert record is not None and record.status == FAILED and record.redrive_count == 0
        assert "ExecutionRedriven" not in [event.type for event in storage.get_history(execution_id)]


class TestTriggers:
    """Exactly-once starts of schedules and event sources, and a schedule's cursor."""

    def _new(self, storage: Storage, workflow_id: str, execution_id: str) -> NewExecution:
        workflow = storage.get_workflow(workflow_id)
        assert workflow is not None
        record = ExecutionRecord(
            execution_id, workflow_id, workflow.name, workflow.version, execution_id, "RUNNING", {"k": 1}, NOW
        )
        root = Branch(branch_id=execution_id, execution_id=execution_id, container=(), state_input={"k": 1})
        return NewExecution(record, root, [WorkItem(execution_id, execution_id, WORK_START, NOW)])

    def test_a_repeated_start_creates_nothing(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        first = storage.start_executions([self._new(storage, workflow_id, "t-1")], NOW)
        assert first.created == ["t-1"]
        again = storage.start_executions(
            [self._new(storage, workflow_id, "t-1"), self._new(storage, workflow_id, "t-2")], NOW
        )
        assert again.created == ["t-2"]
        # One start work item per execution: the repeated start added none.
        claimed = storage.claim_work("w1", NOW, 10, LEASE)
        assert sorted(item.execution_id for item in claimed) == ["t-1", "t-2"]
        record = storage.get_execution("t-1")
        assert record is not None and record.input == {"k": 1} and record.status == "RUNNING"

    def test_concurrent_starts_of_one_id_create_it_once(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        with ThreadPoolExecutor(4) as pool:
            results = list(
                pool.map(
                    lambda _: storage.start_executions([self._new(storage, workflow_id, "same")], NOW),
                    range(4),
                )
            )
        assert sum(len(result.created) for result in results) == 1
        assert len(storage.claim_work("w1", NOW, 10, LEASE)) == 1

    def test_start_consumes_under_the_fence_and_adds_follow_work(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        cursor = WorkItem("schedule:s1", "s1", WORK_SCHEDULE, NOW, {"tick": 1})
        storage.add_work([cursor])
        claimed = claim_one(storage)
        follow = WorkItem("schedule:s1", "s1", WORK_SCHEDULE, NOW + 60, {"tick": 2})
        result = storage.start_executions(
            [self._new(storage, workflow_id, "tick-1")], NOW, consumed=claimed, follow=[follow]
        )
        assert result.created == ["tick-1"]
        pending = storage.get_work("schedule:s1")
        assert [(item.due_at, item.payload) for item in pending] == [(NOW + 60, {"tick": 2})]
        # The consumed item is gone: a second start under it is fenced out and writes nothing.
        with pytest.raises(LeaseLost):
            storage.start_executions(
                [self._new(storage, workflow_id, "tick-x")], NOW, consumed=claimed, follow=[follow]
            )
        assert storage.get_execution("tick-x") is None
        assert len(storage.get_work("schedule:s1")) == 1

    def test_start_hands_the_new_work_to_the_claimer(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        result = storage.start_executions(
            [self._new(storage, workflow_id, "c-1")], NOW, claim_owner="w1", lease_until=NOW + LEASE
        )
        # Backends may ignore the request (MongoDB does): the work is then claimable instead.
        claimable = storage.claim_work("w2", NOW, 10, LEASE)
        assert len(result.claimed) + len(claimable) == 1
        assert all(item.owner == "w1" for item in result.claimed)

    def test_replace_work_swaps_a_cursor_and_fences_out_its_holder(self, storage: Storage) -> None:
        workflow_id = make_workflow(storage)
        storage.add_work([WorkItem("schedule:s2", "s2", WORK_SCHEDULE, NOW, {"revision": 1})])
        held = claim_one(storage)
        assert storage.get_work("schedule:s2")[0].owner == "w1"
        storage.replace_work(
            "schedule:s2", [WorkItem("schedule:s2", "s2", WORK_SCHEDULE, NOW + 5, {"revision": 2})]
        )
        assert [item.payload for item in storage.get_work("schedule:s2")] == [{"revision": 2}]
        with pytest.raises(LeaseLost):
            storage.start_executions([self._new(storage, workflow_id, "late")], NOW, consumed=held)
        assert storage.get_execution("late") is None
        storage.replace_work("schedule:s2", [])
        assert storage.get_work("schedule:s2") == []
        assert storage.get_work("schedule:none") == []


def test_every_storage_method_is_covered() -> None:
    """A new abstract method must get a test here before a backend implements it."""
    covered = {
        "migrate", "close", "upsert_service", "get_service", "list_services", "delete_service",
        "save_workflow", "get_workflow", "list_workflows", "list_versions", "delete_workflow",
        "workflows_using", "create_execution", "get_execution", "list_executions", "get_history",
        "count_executions",
        "store_finished_execution", "finish_execution", "get_branch", "child_results", "claim_work",
        "renew_leases", "release_leases", "next_due", "commit", "add_work", "complete_work",
        "wait_for_work", "extend_heartbeat", "create_execution_claimed", "find_execution", "put_resource",
        "insert_resource", "get_resource", "list_resources", "delete_resource", "take_resource", "get_join",
        "redrive_execution", "update_join_limits", "start_executions", "get_work", "replace_work",
        "purge_executions", "create_api_token", "find_api_token", "list_api_tokens", "delete_api_token",
        "has_api_tokens",
        "commit_many", "finished_among", "count_work", "count_running", "commit_group",
        "store_finished_executions", "group_writers",
    }  # fmt: skip
    declared = {name for name, value in vars(Storage).items() if callable(value) and not name.startswith("_")}
    assert declared == covered
