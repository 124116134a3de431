"""Scale-out on PostgreSQL: one API process and several ``machinery worker`` processes share a database.

- Three workers run 2,000 executions of a multi-state workflow between them: every execution succeeds
  once with the right output, every transition is recorded exactly once, every task call is made once,
  and each worker made a share of the calls.
- A worker killed with SIGKILL while it holds task calls: the surviving worker takes its executions over
  once their leases expire, repeating only the calls that were in flight, with the same Idempotency-Key.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.acceptance.cluster import (
    Api,
    Call,
    Cluster,
    RecordingService,
    check_scale_out_history,
    scale_out_definition,
    scale_out_output,
)

pytestmark = pytest.mark.postgres

EXECUTIONS = 2000
CLIENTS = 8


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(index)`` in ``count`` threads; re-raise the first failure."""
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # reported by the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def start_executions(api_url: str, workflow: str, inputs: list[int]) -> list[str]:
    """``POST /e/<workflow>?wait=0`` with ``{"n": n}`` for each input, from :data:`CLIENTS` threads."""
    ids: list[str] = [""] * len(inputs)

    def post(client: int) -> None:
        api = Api(api_url)
        try:
            for index in range(client, len(inputs), CLIENTS):
                status, record = api.call("POST", f"/e/{workflow}?wait=0", {"n": inputs[index]})
                assert status == 202, (status, record)
                ids[index] = record["event_id"]
        finally:
            api.close()

    _in_threads(CLIENTS, post)
    return ids


def await_executions(api_url: str, ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    """Long-poll ``GET /e/<id>?wait=…`` until each execution has ended; the final records by id.

    A request the API answers with an error (the database restarting) or a dropped connection is
    repeated until ``deadline`` (a ``time.monotonic()`` value).
    """
    records: dict[str, dict[str, Any]] = {}

    def poll(client: int) -> None:
        api = Api(api_url)
        try:
            for index in range(client, len(ids), CLIENTS):
                while True:
                    remaining = deadline - time.monotonic()
                    assert remaining > 0, f"execution {ids[index]} still running at the deadline"
                    try:
                        status, record = api.call("GET", f"/e/{ids[index]}?wait={min(remaining, 20):.1f}")
                    except OSError:
                        status, record = 0, None
                    if status == 200 and record["status"] != "RUNNING":
                        records[ids[index]] = record
                        break
                    if status != 200:
                        time.sleep(0.2)  # the API or its database is restarting: nothing to await
        finally:
            api.close()

    _in_threads(CLIENTS, poll)
    return records


def histories(database_url: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every execution's history, read from the database: ``(type, details)`` in order, by id."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT execution_id, type, details FROM history ORDER BY execution_id, event_id"
        ).fetchall()
    for execution_id, kind, details in rows:
        found.setdefault(execution_id, []).append((kind, details))
    return found


def check_executions(
    database_url: str, ids: list[str], inputs: list[int], records: dict[str, dict[str, Any]]
) -> None:
    """Each execution succeeded with its output, and each history holds each transition once."""
    wrong = [
        (event_id, records[event_id])
        for event_id, n in zip(ids, inputs, strict=True)
        if records[event_id]["status"] != "SUCCEEDED" or records[event_id]["output"] != scale_out_output(n)
    ]
    assert not wrong, f"{len(wrong)} executions ended wrongly, e.g. {json.dumps(wrong[:3])}"
    found = histories(database_url)
    problems = {
        event_id: check_scale_out_history(n, found.get(event_id, []))
        for event_id, n in zip(ids, inputs, strict=True)
    }
    problems = {event_id: found for event_id, found in problems.items() if found}
    assert not problems, f"{len(problems)} histories are wrong, e.g. {list(problems.items())[:3]}"


def register(api_url: str, name: str, definition: dict[str, Any]) -> None:
    api = Api(api_url)
    try:
        status, reply = api.call("POST", "/w", {"name": name, "definition": definition})
        assert status == 201, reply
    finally:
        api.close()


@pytest.mark.timeout(300)
def test_three_workers_share_2000_executions_each_transition_once(
    cluster: Cluster, recording_service: RecordingService
) -> None:
    cluster.start(workers=3)
    recording_service.owners.processes = cluster.workers()
    register(cluster.api_url, "scale-out", scale_out_definition(recording_service.url))
    inputs = list(range(EXECUTIONS))

    ids = start_executions(cluster.api_url, "scale-out", inputs)
    records = await_executions(cluster.api_url, ids, time.monotonic() + 180)

    try:
        check_executions(cluster.database_url, ids, inputs, records)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{cluster.log_tails()}") from None
    calls = recording_service.snapshot()
    assert len(calls) == 4 * EXECUTIONS
    repeated = {key: count for key, count in Counter(call.key for call in calls).items() if count > 1}
    assert not repeated, f"task calls made more than once: {list(repeated.items())[:5]}"
    by_worker = Counter(call.worker for call in calls)
    assert set(by_worker) == {"worker-1", "worker-2", "worker-3"}, by_worker
    assert min(by_worker.values()) >= 0.05 * len(calls), f"work not spread over the workers: {by_worker}"


LEASE_SECONDS = 3.0
POLL_SECONDS = 0.5
HELD = 30


def hold_definition(service: str) -> dict[str, Any]:
    """First → Hold (the gate) → Last."""
    return {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Task", "Resource": f"{service}/first", "ResultPath": "$.a", "Next": "Hold"},
            "Hold": {"Type": "Task", "Resource": f"{service}/hold", "ResultPath": "$.b", "Next": "Last"},
            "Last": {"Type": "Task", "Resource": f"{service}/last", "ResultPath": "$.c", "End": True},
        },
    }


def hold_output(n: int) -> dict[str, Any]:
    return {
        "n": n,
        "a": {"step": "first", "n": n},
        "b": {"step": "hold", "n": n},
        "c": {"step": "last", "n": n},
    }


def check_hold_histories(database_url: str, ids: list[str]) -> None:
    """Each history holds each of the three tasks' transitions exactly once."""
    found = histories(database_url)
    for event_id in ids:
        kinds = Counter(kind for kind, _details in found[event_id])
        entered = Counter(details["name"] for kind, details in found[event_id] if kind == "TaskStateEntered")
        assert entered == {"First": 1, "Hold": 1, "Last": 1}, (event_id, found[event_id])
        assert kinds["TaskScheduled"] == kinds["TaskSucceeded"] == kinds["TaskStateExited"] == 3, kinds
        assert kinds["ExecutionSucceeded"] == 1, kinds
        assert not [kind for kind in kinds if "Fail" in kind], kinds


@pytest.mark.timeout(120)
def test_worker_killed_mid_run_its_executions_are_taken_over_after_the_lease(
    cluster: Cluster, recording_service: RecordingService
) -> None:
    cluster.environment.update(
        {"MACHINERY_LEASE_SECONDS": str(LEASE_SECONDS), "MACHINERY_POLL_INTERVAL": str(POLL_SECONDS)}
    )
    cluster.start(workers=2)
    recording_service.owners.processes = cluster.workers()
    register(cluster.api_url, "held", hold_definition(recording_service.url))
    inputs = list(range(HELD))
    ids = start_executions(cluster.api_url, "held", inputs)

    def held(calls: list[Call]) -> int:
        return sum(1 for call in calls if call.step == "hold")

    assert recording_service.wait_for(lambda calls: held(calls) >= HELD, 60), cluster.log_tails()
    before = recording_service.snapshot()
    holders = Counter(call.worker for call in before if call.step == "hold")
    victim = holders.most_common(1)[0][0]
    in_flight = {call.key for call in before if call.step == "hold" and call.worker == victim}
    survivor = next(name for name in cluster.workers().values() if name != victim)
    killed_at = time.monotonic()
    cluster.kill(victim)

    def taken_over(calls: list[Call]) -> bool:
        return {call.key for call in calls[len(before) :] if call.step == "hold"} >= in_flight

    # A lease renewed just before the kill runs out LEASE_SECONDS later; the survivor notices expired
    # leases at its next poll.
    limit = LEASE_SECONDS + POLL_SECONDS + 2.0
    assert recording_service.wait_for(taken_over, limit + 10), cluster.log_tails()
    retaken = [call for call in recording_service.snapshot()[len(before) :] if call.key in in_flight]
    takeover_seconds = max(call.at for call in retaken) - killed_at
    assert takeover_seconds <= limit, f"taken over {takeover_seconds:.1f}s after the kill"
    assert {call.worker for call in retaken} == {survivor}

    recording_service.open_gate()
    records = await_executions(cluster.api_url, ids, time.monotonic() + 60)
    for event_id, n in zip(ids, inputs, strict=True):
        assert records[event_id]["status"] == "SUCCEEDED", records[event_id]
        assert records[event_id]["output"] == hold_output(n)
    check_hold_histories(cluster.database_url, ids)
    # Only the calls in flight at the kill were made twice, and with the key they had before.
    made = Counter((call.step, call.key) for call in recording_service.snapshot())
    assert {key for (step, key), count in made.items() if count > 1} == in_flight
    assert all(count == 2 for (step, key), count in made.items() if key in in_flight)
    assert Counter(step for step, _key in made) == {"first": HELD, "hold": HELD, "last": HELD}
