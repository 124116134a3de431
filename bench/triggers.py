"""Triggers: messages per second from each broker into started executions, and the delay from a schedule
tick's due time to its execution's start.

Messages: ``--messages`` JSON messages wait in a fresh queue or stream of each broker (the machine's
RabbitMQ, NATS JetStream and Redis); a worker on a fresh SQLite file then consumes them through an event
source (batches of ``--batch``), and the clock runs from the consumer's connection until every execution
is stored. The workflow is one Pass state, so the worker also runs each execution to its end meanwhile,
as it would in production. The direct figure, measured in the same run, starts the same executions
straight through ``Storage.start_executions`` in batches of the same size on another fresh file and
hands their first work to a running worker, as the intake does: the ratio is what the broker adds.

Ticks: a schedule of ``*/1 * * * * *`` (every second) on a worker with the real clock; the delay of each
tick is its execution's ``started_at`` minus the tick's due time, over ``--ticks`` ticks.

    python -m bench.triggers                       # every broker, 2,000 messages, 10 ticks
    python -m bench.triggers --brokers redis --messages 5000 --batch 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machinery.control import schedules as schedule_control
from machinery.control import sources as source_control
from machinery.runtime.starts import derived_id, new_execution
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.sqlite import SQLiteStorage
from tests.acceptance.brokers import NATS_URL, RABBITMQ_URL, REDIS_URL, Nats, RabbitMQ, Redis, numbered

TYPED: dict[str, Any] = {
    "name": "typed",
    "inputs": [{"name": "n", "type": "integer"}],
    "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
}


def fresh_storage(folder: Path) -> SQLiteStorage:
    storage = SQLiteStorage(str(folder / f"{uuid.uuid4().hex}.db"))
    storage.migrate()
    storage.save_workflow("typed", TYPED, TYPED["definition"], [], False, time.time())
    return storage


def count(storage: SQLiteStorage, status: ExecutionStatus | None = None) -> int:
    workflow = storage.get_workflow("typed")
    assert workflow is not None
    return len(storage.list_executions(workflow.workflow_id, status, 1_000_000, None))


def wait_finished(storage: SQLiteStorage, messages: int) -> None:
    while count(storage, ExecutionStatus.SUCCEEDED) < messages:
        time.sleep(0.01)


def direct(folder: Path, messages: int, batch: int) -> dict[str, float]:
    """Executions per second started in batches straight through ``Storage.start_executions``, with their
    first work handed to a running worker as the intake hands it: the event-source path without a broker."""
    storage = fresh_storage(folder)
    workflow = storage.get_workflow("typed")
    assert workflow is not None
    worker = Worker(storage, WorkerSettings(poll_interval=0.05, consume_sources=False))
    worker.start()
    try:
        started = time.perf_counter()
        for first in range(0, messages, batch):
            while not worker.has_room():
                time.sleep(0.001)
            now = time.time()
            starts = [
                new_execution(workflow, {"n": n}, now, execution_id=derived_id("bench", str(n)))
                for n in range(first, min(messages, first + batch))
            ]
            result = storage.start_executions(starts, now, claim_owner=worker.owner, lease_until=now + 30)
            worker.submit(result.claimed)
        stored = time.perf_counter() - started
        wait_finished(storage, messages)
        finished = time.perf_counter() - started
    finally:
        worker.stop()
    storage.close()
    return {"started_per_second": messages / stored, "finished_per_second": messages / finished}


def through_broker(kind: str, folder: Path, messages: int, batch: int) -> dict[str, Any]:
    broker = {"rabbitmq": RabbitMQ(RABBITMQ_URL), "nats": Nats(NATS_URL), "redis": Redis(REDIS_URL)}[kind]
    name = f"bench-{uuid.uuid4().hex[:8]}"
    broker.run(broker.prepare(name))
    try:
        broker.run(broker.publish(name, numbered(messages, "m")))
        storage = fresh_storage(folder)
        options = broker.options(name)
        options["prefetch" if kind == "rabbitmq" else "batch"] = batch
        body = {"name": "bench", "workflow": "typed", "type": kind, "url": broker.url, **options}
        source_control.create_source(storage, body, time.time())
        worker = Worker(storage, WorkerSettings(poll_interval=0.05, source_refresh_seconds=0.05))
        worker.start()
        try:
            while not source_control.source_json(
                storage, source_control.find_source(storage, "bench"), time.time()
            )["processes"]:
                time.sleep(0.01)
            started = time.perf_counter()
            while count(storage) < messages:
                time.sleep(0.005)
            stored = time.perf_counter() - started
            wait_finished(storage, messages)
            finished = time.perf_counter() - started
        finally:
            worker.stop()
        storage.close()
        return {
            "broker": kind,
            "messages": messages,
            "started_per_second": messages / stored,
            "finished_per_second": messages / finished,
        }
    finally:
        broker.run(broker.cleanup(name))


def tick_delays(folder: Path, ticks: int) -> list[float]:
    storage = fresh_storage(folder)
    worker = Worker(storage, WorkerSettings(poll_interval=1.0))
    worker.start()
    try:
        body = {
            "name": "bench",
            "workflow": "typed",
            "expression": "* * * * * *",
            "input": {"n": 1},
            "overlap": "allow",
        }
        schedule_control.create_schedule(storage, body, time.time())
        deadline = time.monotonic() + ticks + 5
        while count(storage) < ticks and time.monotonic() < deadline:
            time.sleep(0.1)
        control = schedule_control.find_schedule(storage, "bench")
        schedule_control.pause_schedule(storage, control.name, time.time())
    finally:
        worker.stop()
    workflow = storage.get_workflow("typed")
    assert workflow is not None
    delays = []
    for record in storage.list_executions(workflow.workflow_id, None, 1000, None):
        due = (
            datetime.strptime(record.name.rsplit("-", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        )
        delays.append((record.started_at - due) * 1000)
    storage.close()
    return sorted(delays)[:ticks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--brokers", default="rabbitmq,nats,redis")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--output", help="JSON results file (default: bench/results/triggers-<time>.json)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_before": Path("/proc/loadavg").read_text().split()[:3], "brokers": []}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        baseline = direct(folder, args.messages, args.batch)
        results["direct"] = baseline
        print(f"{'':>9}  started/s  finished/s   ratios to direct (batches of {args.batch})")
        line = "{:>9}: {:9.0f} {:11.0f}   {}"
        print(line.format("direct", baseline["started_per_second"], baseline["finished_per_second"], ""))
        for kind in args.brokers.split(","):
            row = through_broker(kind, folder, args.messages, args.batch)
            row["started_ratio"] = row["started_per_second"] / baseline["started_per_second"]
            row["finished_ratio"] = row["finished_per_second"] / baseline["finished_per_second"]
            results["brokers"].append(row)
            ratios = f"{row['started_ratio']:.2f} {row['finished_ratio']:.2f}"
            print(line.format(kind, row["started_per_second"], row["finished_per_second"], ratios))
        if args.ticks:
            delays = tick_delays(folder, args.ticks)
            results["tick_delay_ms"] = {
                "median": statistics.median(delays),
                "max": max(delays),
                "all": delays,
            }
            median, worst = statistics.median(delays), max(delays)
            print(f"tick delay: median {median:.1f} ms, max {worst:.1f} ms over {len(delays)} ticks")
    results["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before {' '.join(results['load_before'])}, after {' '.join(results['load_after'])}")
    out = (
        Path(args.output)
        if args.output
        else Path(__file__).parent / "results" / f"triggers-{int(time.time())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
