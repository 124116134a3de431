"""Retention on SQLite: what a purge frees, whether freed pages are reused, and whether steady load with
retention on keeps the file from growing.

Part 1, storage only (this process, a fresh SQLite file): ``--count`` finished executions of the seed
workflow, each written as a worker writes it (the execution with its root branch, then one transition to
SUCCEEDED with the history the real interpreter records for upper → reverse → space-counter: 17 events).
Then the file's size and free pages after each step: written, purged (``purge_finished``, the function
``machinery purge`` runs), written again (are the freed pages reused?), and after a ``VACUUM`` (what the
data itself takes). The purge's rate is given as a ratio to the rate of writing the same executions in
the same run.

Part 2, a real server (``machinery serve`` in a child process): ``--clients`` threads post executions of
a three-Pass-state workflow as fast as the server takes them for ``--steady-seconds``, with retention on
(``MACHINERY_RETENTION_DAYS`` set to ``--window`` seconds, passes every second). The file's page count
is sampled every few seconds: once the retention window is full, the count should stay flat while
executions keep being created and deleted.

    python -m bench.retention                      # 100,000 executions, 180 s of steady load
    python -m bench.retention --count 10000 --steady-seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.harness import JsonClient, add_server_options, check_loopback, start_server, write_report
from bench.seed_workflow import free_port_block

DAY = 86400.0
MESSAGE = "The Sun will rise in the morning !"
SERVICES = ("upper", "reverse", "space-counter")


# part 1: storage ---------------------------------------------------------------------------------


def seed_execution() -> tuple[Any, Any, list[Any], Any]:
    """One run of the seed workflow by the real interpreter: (root branch, final branch, history, output)."""
    from machinery.asl.compiler import compile_machine
    from machinery.asl.simple import compile_simple
    from machinery.engine.interpreter import Interpreter
    from machinery.engine.types import Branch, ExecutionContext, TaskSucceeded

    definition = compile_simple({"name": "process-text", "services": list(SERVICES), "operations": []})
    machine = compile_machine(definition)
    context = ExecutionContext(
        "x", "x", {"message": MESSAGE}, "2024-01-01T00:00:00.000Z", "wf", "process-text"
    )
    root = Branch(branch_id="x", execution_id="x", container=(), state_input={"message": MESSAGE})
    step = Interpreter(machine, context).start(root, 0.0)
    history = list(step.history)
    replies = [{"message": MESSAGE.upper()}, {"message": MESSAGE.upper()[::-1]}, {"space_count": 7}]
    for reply in replies:
        step = Interpreter(machine, context).resume(step.branch, TaskSucceeded(reply), 0.0)
        history += step.history
    return root, step.branch, history, step.branch.output


def write_executions(storage: Any, count: int, finished_at: float, prefix: str) -> float:
    """Write ``count`` finished seed executions as a worker would; the seconds it took."""
    from machinery.storage.base import Commit, ExecutionRecord

    root, final, history, output = seed_execution()
    workflow, _created = storage.save_workflow("process-text", {"name": "process-text"}, {}, [], False, 0.0)
    update = {"status": "SUCCEEDED", "output": output, "error": None, "cause": None}
    started = time.perf_counter()
    for index in range(count):
        execution_id = f"{prefix}-{index:07d}"
        record = ExecutionRecord(
            execution_id=execution_id,
            workflow_id=workflow.workflow_id,
            workflow_name=workflow.name,
            workflow_version=workflow.version,
            name=execution_id,
            status="RUNNING",
            input={"message": MESSAGE},
            started_at=finished_at - 0.01,
        )
        storage.create_execution(record, replace(root, branch_id=execution_id, execution_id=execution_id), [])
        done = replace(final, branch_id=execution_id, execution_id=execution_id)
        storage.commit(
            Commit(execution_id, None, done, history=history, execution_update=update), finished_at
        )
    return time.perf_counter() - started


def file_state(path: Path) -> dict[str, Any]:
    """Pages, free pages and bytes on disk of a SQLite file and its WAL, after a checkpoint."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        executions = db.execute("SELECT count(*) FROM executions").fetchone()[0]
        history = db.execute("SELECT count(*) FROM history").fetchone()[0]
    wal = path.with_name(path.name + "-wal")
    return {
        "executions": executions,
        "history_rows": history,
        "page_size": page_size,
        "pages": pages,
        "free_pages": free,
        "file_mib": round(path.stat().st_size / 2**20, 2),
        "wal_mib": round((wal.stat().st_size if wal.exists() else 0) / 2**20, 2),
    }


def run_storage_part(directory: Path, count: int, batch: int) -> dict[str, Any]:
    from machinery.runtime.retention import purge_finished
    from machinery.storage.sqlite import SQLiteStorage

    path = directory / "retention.db"
    storage = SQLiteStorage(str(path))
    storage.migrate()
    old = time.time() - 100 * DAY
    try:
        write_seconds = write_executions(storage, count, old, "old")
        written = file_state(path)
        print(f"written   {count} executions in {write_seconds:.1f} s: {written}", flush=True)
        started = time.perf_counter()
        deleted = purge_finished(storage, time.time() - 90 * DAY, batch)
        purge_seconds = time.perf_counter() - started
        purged = file_state(path)
        print(f"purged    {deleted} in {purge_seconds:.1f} s: {purged}", flush=True)
        refill_seconds = write_executions(storage, count, old, "new")
        refilled = file_state(path)
        print(f"refilled  {count} in {refill_seconds:.1f} s: {refilled}", flush=True)
    finally:
        storage.close()
    with sqlite3.connect(path) as db:
        db.execute("VACUUM")
    vacuumed = file_state(path)
    print(f"vacuumed  {vacuumed}", flush=True)
    write_rate = count / write_seconds
    purge_rate = deleted / purge_seconds if purge_seconds else 0.0
    return {
        "count": count,
        "batch": batch,
        "deleted": deleted,
        "write_executions_per_s": round(write_rate, 1),
        "purge_executions_per_s": round(purge_rate, 1),
        "purge_to_write_ratio": round(purge_rate / write_rate, 2),
        "written": written,
        "purged": purged,
        "refilled": refilled,
        "refill_growth_pct": round(100.0 * (refilled["pages"] - written["pages"]) / written["pages"], 2),
        "vacuumed": vacuumed,
    }


# part 2: steady load -----------------------------------------------------------------------------


PASS_CHAIN = {
    "StartAt": "One",
    "States": {
        "One": {"Type": "Pass", "Result": {"message": MESSAGE}, "ResultPath": "$.one", "Next": "Two"},
        "Two": {
            "Type": "Pass",
            "Result": {"message": MESSAGE.upper()},
            "ResultPath": "$.two",
            "Next": "Three",
        },
        "Three": {"Type": "Pass", "Result": {"space_count": 7}, "ResultPath": "$.three", "End": True},
    },
}


def run_steady_part(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    path = directory / "steady.db"
    port = free_port_block(1, args.host)
    env = {
        **os.environ,
        "MACHINERY_RETENTION_DAYS": repr(args.window / DAY),
        "MACHINERY_RETENTION_INTERVAL": "1",
        "MACHINERY_RETENTION_BATCH": str(args.batch),
        "MACHINERY_LOG_LEVEL": "WARNING",
    }
    samples: list[dict[str, Any]] = []
    created = [0]
    errors: list[str] = []
    stop = threading.Event()
    with ExitStack() as stack:
        start_server(stack, args, port, path, env)
        setup = JsonClient(args.host, port)
        setup.expect("POST", "/w", {"name": "chain", "definition": PASS_CHAIN}, 201)
        setup.close()

        def load() -> None:
            client = JsonClient(args.host, port)
            try:
                while not stop.is_set():
                    client.expect("POST", "/e/chain", {"message": MESSAGE}, 201)
                    created[0] += 1
            except Exception as exc:  # reported below: the run is then not valid
                errors.append(repr(exc))
            finally:
                client.close()

        threads = [threading.Thread(target=load, daemon=True) for _ in range(args.clients)]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        while time.monotonic() - began < args.steady_seconds and not errors:
            time.sleep(args.sample_every)
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                pages = db.execute("PRAGMA page_count").fetchone()[0]
                free = db.execute("PRAGMA freelist_count").fetchone()[0]
                stored = db.execute("SELECT count(*) FROM executions").fetchone()[0]
            wal = path.with_name(path.name + "-wal")
            sample = {
                "t": round(time.monotonic() - began, 1),
                "created": created[0],
                "stored": stored,
                "pages": pages,
                "free_pages": free,
                "file_mib": round(path.stat().st_size / 2**20, 2),
                "wal_mib": round((wal.stat().st_size if wal.exists() else 0) / 2**20, 2),
            }
            samples.append(sample)
            print(f"steady {sample}", flush=True)
        stop.set()
        for thread in threads:
            thread.join(30)
    warm = [s for s in samples if s["t"] >= 2 * args.window]
    first, last = (warm[0], warm[-1]) if warm else (None, None)
    return {
        "window_seconds": args.window,
        "clients": args.clients,
        "seconds": args.steady_seconds,
        "created": created[0],
        "errors": errors[:5],
        "samples": samples,
        "pages_after_two_windows": first and first["pages"],
        "pages_at_end": last and last["pages"],
        "growth_after_warmup_pct": (
            round(100.0 * (last["pages"] - first["pages"]) / first["pages"], 2) if first and last else None
        ),
        "created_after_warmup": (last["created"] - first["created"]) if first and last else None,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="executions written and purged (part 1)")
    parser.add_argument("--batch", type=int, default=500, help="executions per purge transaction")
    parser.add_argument("--steady-seconds", type=float, default=180.0, help="duration of part 2 (0: skip)")
    parser.add_argument("--window", type=float, default=20.0, help="retention window of part 2, seconds")
    parser.add_argument("--clients", type=int, default=4, help="load threads of part 2")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--skip-storage", action="store_true", help="run part 2 only")
    add_server_options(parser)
    args = parser.parse_args(argv)
    check_loopback(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {"loadavg_start": Path("/proc/loadavg").read_text().split()[:3]}
    with tempfile.TemporaryDirectory(prefix="machinery-retention-") as temporary:
        directory = Path(args.database).parent if args.database else Path(temporary)
        if not args.skip_storage:
            results["storage"] = run_storage_part(directory, args.count, args.batch)
        if args.steady_seconds > 0:
            results["steady"] = run_steady_part(args, directory)
    results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    settings = {k: v for k, v in vars(args).items() if not k.startswith("py_spy")}
    path = write_report("retention", settings, results, args.output)
    summary = {k: v for k, v in results.get("steady", {}).items() if k != "samples"}
    print(json.dumps({"storage": results.get("storage"), "steady": summary}, indent=2))
    print(f"report: {path}")
    return 0 if not results.get("steady", {}).get("errors") else 1


if __name__ == "__main__":
    sys.exit(main())
