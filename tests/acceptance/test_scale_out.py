"""Scale-out on PostgreSQL: one API process and several ``machinery worker`` processes share a database.

- Three workers run 2,000 executions of a multi-state workflow between them: every execution succeeds
  once with the right output, every transition is recorded exactly once, every task call is made once,
  and each worker made a share of the calls.
- A worker killed with SIGKILL while it holds task calls: the surviving worker takes its executions over
  once their leases expire, repeating only the calls that were in flight, with the same Idempotency-Key.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from examples.workflows import scale_out_definition
from tests.acceptance.cluster import (
    Call,
    Cluster,
    RecordingService,
    await_executions,
    check_executions,
    check_hold_histories,
    hold_definition,
    hold_output,
    register,
    start_executions,
)

pytestmark = pytest.mark.postgres

EXECUTIONS = 2000


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
