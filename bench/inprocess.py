"""The seed workflow's three tasks run by the engine alone: no HTTP server, no sockets, no threads.

An :class:`~machinery.control.events.Orchestrator` on a fresh SQLite file starts ``--executions``
executions of upper → reverse → space-counter; its worker runs them on this thread
(:meth:`~machinery.runtime.worker.Worker.run_until_idle`) with :class:`machinery.testing.FakeInvoker`
answering the task calls. What is left is the engine's own cost per execution: the interpreter, the
commits (grouped, as under load) and the reads. Run from the repository root::

    python -m bench.inprocess [--executions 2000] [--runs 3] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from machinery.control.events import Orchestrator
from machinery.runtime.worker import WorkerSettings
from machinery.storage.sqlite import SQLiteStorage
from machinery.testing import FakeInvoker

SEED = {
    "StartAt": "Upper",
    "States": {
        "Upper": {"Type": "Task", "Resource": "upper", "Next": "Reverse"},
        "Reverse": {"Type": "Task", "Resource": "reverse", "Next": "Count"},
        "Count": {"Type": "Task", "Resource": "space-counter", "End": True},
    },
}
MESSAGE = "The Sun will rise in the morning !"


def answers() -> dict[str, Any]:
    return {
        "upper": lambda payload: {"message": payload["message"].upper()},
        "reverse": lambda payload: {"message": payload["message"][::-1]},
        "space-counter": lambda payload: {"space_count": payload["message"].count(" ")},
    }


def one_run(directory: Path, executions: int, profile: str | None) -> float:
    """Milliseconds per execution, started in one batch and run until the worker is idle."""
    storage = SQLiteStorage(str(directory / "bench.db"))
    storage.migrate()
    storage.save_workflow("seed", {"name": "seed"}, SEED, [], False, time.time())
    orchestrator = Orchestrator(storage, WorkerSettings(finish_poll_interval=0))
    worker = orchestrator.worker
    assert worker is not None
    worker.invoker = cast(Any, FakeInvoker(answers()))

    def batch(count: int) -> None:
        ids = [orchestrator.start_event("seed", {"message": MESSAGE}).execution_id for _ in range(count)]
        asyncio.run(worker.run_until_idle())
        for execution_id in ids:
            assert orchestrator.get_event(execution_id).output["space_count"] == MESSAGE.count(" ")

    batch(100)  # warm-up: imports, caches, compiled machine
    started = time.perf_counter()
    if profile:
        cProfile.runctx("batch(executions)", globals(), {"batch": batch, "executions": executions}, profile)
    else:
        batch(executions)
    elapsed = time.perf_counter() - started
    storage.close()
    return elapsed / executions * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the last run to FILE")
    args = parser.parse_args()
    figures = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="machinery-inprocess-") as directory:
            last = run == args.runs - 1
            figures.append(one_run(Path(directory), args.executions, args.profile if last else None))
        print(f"run {run + 1}: {figures[-1]:.3f} ms per execution")
    print(f"median {statistics.median(figures):.3f} ms per execution ({args.executions} executions per run)")


if __name__ == "__main__":
    main()
