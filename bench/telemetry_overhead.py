"""What the metrics and trace hooks cost one execution of the seed workflow, in microseconds.

An execution of the seed workflow (three Task states, durable) makes these recordings: one
``execution_started``, one ``create_execution`` commit timing, four ``transition`` commit timings, about
eight in-flight gauge updates, three task call observations, one ``execution_finished``; and, with
tracing off, three ``call_parent`` and four ``record_step`` calls that return at once. This benchmark
times each of them with :mod:`timeit` in this process, in prometheus_client's single-process mode and
(in a child process) its multiprocess mode, and adds them up per execution. The same run measures, as
the reference, the server CPU of one durable seed execution in-process (API test client, SQLite, a
worker thread, three loopback services): the ratio is the share of an execution's cost the hooks add.

Run from the repository root::

    python -m bench.telemetry_overhead [--executions 300]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

#: (what, how many per seed execution, statement) — the statements run with ``metrics`` and ``spans``.
RECORDINGS = [
    ("execution_started", 1, "metrics.execution_started('process-text')"),
    ("storage_committed", 5, "metrics.storage_committed('transition', 0.0004)"),
    ("set_in_flight", 8, "metrics.set_in_flight(3)"),
    ("task_called", 3, "metrics.task_called('upper', None, 0.002)"),
    ("execution_finished", 1, "metrics.execution_finished('process-text', 'SUCCEEDED', 0.01)"),
    ("spans.call_parent (off)", 3, "spans.call_parent('e', branch)"),
    ("spans.record_step (off)", 4, "spans.record_step('e', branch, step)"),
]
SETUP = """
from machinery.telemetry import metrics
from machinery.runtime import spans
from machinery.engine.types import Branch, Step
branch = Branch(
    branch_id='e', execution_id='e', container=(), state='upper', entered_time='2026-01-01T00:00:00.000Z'
)
step = Step(branch)
"""


def per_call_microseconds(number: int = 2_000) -> dict[str, float]:
    """Each recording's cost in this process's mode: the best of many short runs, which on a busy
    machine finds the moments the process had a core to itself."""
    costs = {}
    for name, _count, statement in RECORDINGS:
        best = min(timeit.repeat(statement, SETUP, number=number, repeat=200))
        costs[name] = best / number * 1e6
    return costs


def per_execution(costs: dict[str, float]) -> float:
    return sum(costs[name] * count for name, count, _statement in RECORDINGS)


def _multiprocess_costs() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        done = subprocess.run(
            [sys.executable, "-m", "bench.telemetry_overhead", "--child"],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    costs: dict[str, float] = json.loads(done.stdout)
    return costs


def execution_cpu_ms(executions: int) -> float:
    """Server-side CPU per durable seed execution, in this process (all its threads)."""
    from examples.demo import load_definition, text_services
    from machinery.api import create_app, orchestrator_of

    with tempfile.TemporaryDirectory() as directory, text_services() as urls:
        app = create_app({"DATABASE_URL": f"sqlite:///{directory}/bench.db", "START_WORKER": True})
        client = app.test_client()
        for kind, url in urls.items():
            service = load_definition(f"service-{kind}.json")
            service["address"] = f"{url}/event"
            client.post("/s", json=service)
        client.post("/w", json=load_definition("workflow-process-text.json"))
        event = load_definition("event-text.json")
        for _ in range(20):  # warm up
            client.post("/e/process-text", json=event)
        # The services run in threads of this process too: their CPU is counted, which only lowers
        # the ratio's denominator's share of machinery a little (they are tiny aiohttp handlers).
        started = time.process_time()
        for _ in range(executions):
            assert client.post("/e/process-text", json=event).get_json()["status"] == "SUCCEEDED"
        used = time.process_time() - started
        orchestrator_of(app).stop()
    return used * 1000 / executions


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.telemetry_overhead", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--executions", type=int, default=300, help="durable executions for the reference")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(per_call_microseconds()))
        return 0
    single = per_call_microseconds()
    multi = _multiprocess_costs()
    reference = execution_cpu_ms(args.executions)
    print(f"{'recording':<26} {'per exec':>8} {'single µs':>10} {'multi µs':>9}")
    for name, count, _statement in RECORDINGS:
        print(f"{name:<26} {count:>8} {single[name]:>10.3f} {multi[name]:>9.3f}")
    for mode, costs in (("single-process", single), ("multiprocess", multi)):
        total = per_execution(costs)
        print(
            f"{mode}: {total:.1f} µs per execution = {total / 10 / reference:.2f}% of "
            f"{reference:.2f} ms CPU per durable seed execution (same run)"
        )
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
