"""Many executions parked in a Wait state, all due at about the same moment.

Targets (from the issue), for 100,000 executions: the server's RSS stays at or under 300 MB, and every
execution resumes within 60 s of its due time. Timers are rows, not sleeping tasks, so parking should
cost storage, not memory; resuming is then a burst of ``--count`` due work items.

Two processes: ``machinery serve`` on a fresh SQLite file and this one. The workflow is a single state::

    Park (Wait, TimestampPath $.due, End)

1. calibration: a few hundred executions of a 1-second Wait (a separate workflow, not counted) measure
   how fast this machine creates executions, so that the common due time can be placed after the last
   creation (``--due-after`` overrides the estimate);
2. creation: ``--clients`` threads, each with a keep-alive connection, ``POST /e/parked?wait=0`` with
   ``{"due": <the common ISO time>}``: the normal API path (the server stores the execution and runs it
   into the Wait state, where it parks);
3. parked: the server's RSS (``VmRSS`` from ``/proc/<pid>/status``) is sampled throughout;
4. resume: once every execution has ended, ``GET /e?workflow=parked`` pages through the records; each
   one's lag is ``finished_at`` - due.

Run from the repository root::

    python -m bench.parked_waits --count 10000
    python -m bench.parked_waits                 # 100,000: long on a 2-core machine
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    JsonClient,
    RssSampler,
    add_server_options,
    check_loopback,
    epoch,
    rss_mib,
    start_server,
    write_report,
)
from bench.seed_workflow import cpu_seconds, free_port_block, percentile

WORKFLOW = "parked"
CALIBRATION_WORKFLOW = "parked-calibration"
#: The issue's targets for 100,000 parked executions.
TARGET_RSS_MB = 300.0
TARGET_LAG_SECONDS = 60.0
#: Seconds between two checks for executions still running.
POLL_SECONDS = 1.0


def wait_definition(path: str) -> dict[str, Any]:
    return {"StartAt": "Park", "States": {"Park": {"Type": "Wait", path: "$.due", "End": True}}}


def iso(epoch_seconds: float) -> str:
    return (
        datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def create(
    host: str, port: int, workflow: str, count: int, clients: int, data: dict[str, Any], progress: bool
) -> float:
    """Create ``count`` executions from ``clients`` threads; return the seconds it took."""
    counter = iter(range(count))
    lock = threading.Lock()
    done = [0]
    errors: list[str] = []

    def work() -> None:
        client = JsonClient(host, port)
        try:
            while not errors:
                with lock:
                    if next(counter, None) is None:
                        return
                status, reply = client.call("POST", f"/e/{workflow}?wait=0", data)
                if status != 202:
                    errors.append(f"HTTP {status}: {str(reply)[:300]}")
                    return
                with lock:
                    done[0] += 1
                    if progress and done[0] % 10_000 == 0:
                        print(f"  created {done[0]}", flush=True)
        finally:
            client.close()

    began = time.monotonic()
    threads = [threading.Thread(target=work, name=f"creator-{i}", daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"creating executions failed: {errors[0]}")
    return time.monotonic() - began


def records(client: JsonClient, workflow: str) -> list[dict[str, Any]]:
    """Every execution of ``workflow`` (pages of 1,000, newest first)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        path = f"/e?workflow={workflow}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = client.expect("GET", path, None, 200)
        found.extend(page["events"])
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def any_running(client: JsonClient, workflow: str) -> bool:
    page = client.expect("GET", f"/e?workflow={workflow}&status=RUNNING&limit=1", None, 200)
    return bool(page["events"])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.parked_waits", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--count", type=int, default=100_000, help="parked executions (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="creating threads (default: %(default)s)")
    parser.add_argument(
        "--due-after",
        type=float,
        help="seconds from the start of creation to the common due time (default: estimated)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=600.0,
        help="seconds after the due time to wait for every execution to end (default: %(default)s)",
    )
    add_server_options(parser)
    args = parser.parse_args(argv)
    check_loopback(parser, args)
    if args.count < 1 or args.clients < 1:
        parser.error("--count and --clients must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host = args.host
    port = free_port_block(1, host)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("MACHINERY_LOG_LEVEL", "WARNING")
    result: dict[str, Any] = {"count": args.count}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="machinery-bench-")))
        database = Path(args.database) if args.database else workdir / "bench.db"
        _, server_pid = start_server(stack, args, port, database, env)
        client = JsonClient(host, port)
        stack.callback(client.close)
        client.expect("POST", "/w", {"name": WORKFLOW, "definition": wait_definition("TimestampPath")}, 201)
        client.expect(
            "POST", "/w", {"name": CALIBRATION_WORKFLOW, "definition": wait_definition("SecondsPath")}, 201
        )
        sampler = stack.enter_context(RssSampler(server_pid))
        result["rss_idle_mib"] = rss_mib(server_pid)

        # 1. calibration
        sample = min(500, max(50, args.count // 100))
        seconds = create(host, port, CALIBRATION_WORKFLOW, sample, args.clients, {"due": 1}, False)
        rate = sample / seconds
        due_after = args.due_after or 1.5 * args.count / rate + 10.0
        print(
            f"calibration: {rate:.0f} executions/s; due {due_after:.0f} s after creation starts", flush=True
        )

        # 2. creation
        began = time.time()
        due = began + due_after
        cpu_before = cpu_seconds(server_pid)
        created_in = create(host, port, WORKFLOW, args.count, args.clients, {"due": iso(due)}, True)
        created_at = time.time()
        cpu_created = cpu_seconds(server_pid)
        result.update(
            created_in_seconds=round(created_in, 2),
            creation_per_second=round(args.count / created_in, 1),
            due_after_seconds=round(due_after, 1),
        )
        if cpu_before is not None and cpu_created is not None:
            result["creation_server_cpu_us_each"] = round((cpu_created - cpu_before) * 1e6 / args.count, 1)
        print(
            f"created {args.count} in {created_in:.1f} s ({args.count / created_in:.0f}/s); "
            f"RSS {rss_mib(server_pid) or 0:.0f} MiB",
            flush=True,
        )
        if created_at > due:
            print("WARNING: creation ended after the due time; lags include creation time", flush=True)
            result["warning"] = "creation ended after the due time"

        # 3. parked until due
        while time.time() < due - 1.0:
            time.sleep(min(5.0, due - 1.0 - time.time()))
        result["rss_parked_mib"] = rss_mib(server_pid)
        result["rss_peak_parked_mib"] = sampler.peak(began, due)
        result["database_mib"] = round(_database_size(database) / 2**20, 1)
        print(
            f"parked: RSS {result['rss_parked_mib'] or 0:.0f} MiB (peak while creating and parked "
            f"{result['rss_peak_parked_mib'] or 0:.0f} MiB), database {result['database_mib']} MiB",
            flush=True,
        )

        # 4. resume
        cpu_due = cpu_seconds(server_pid)
        while any_running(client, WORKFLOW) and time.time() < due + args.max_wait:
            time.sleep(POLL_SECONDS)
        settled = time.time()
        cpu_settled = cpu_seconds(server_pid)
        result["rss_peak_resume_mib"] = sampler.peak(due, settled)
        result["rss_after_mib"] = rss_mib(server_pid)
        if cpu_due is not None and cpu_settled is not None:
            result["resume_server_cpu_us_each"] = round((cpu_settled - cpu_due) * 1e6 / args.count, 1)
        found = records(client, WORKFLOW)

    statuses: dict[str, int] = {}
    lags: list[float] = []
    for record in found:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
        if record.get("finished_at"):
            lags.append(epoch(record["finished_at"]) - due)
    lags.sort()
    result.update(
        statuses=statuses,
        finished=len(lags),
        lag_p50_seconds=round(percentile(lags, 0.5), 3),
        lag_p90_seconds=round(percentile(lags, 0.9), 3),
        lag_p99_seconds=round(percentile(lags, 0.99), 3),
        lag_max_seconds=round(lags[-1], 3) if lags else None,
        lag_min_seconds=round(lags[0], 3) if lags else None,
        resumed_per_second=round(len(lags) / lags[-1], 1) if lags and lags[-1] > 0 else None,
        rss_samples=[
            (round(at - began, 1), round(rss, 1))
            for at, rss in sampler.samples[:: max(1, len(sampler.samples) // 200)]
        ],
    )
    peak = max(value for value in (result["rss_peak_parked_mib"], result["rss_peak_resume_mib"]) if value)
    rss_met = peak * 2**20 / 1e6 <= TARGET_RSS_MB
    lag_met = (
        len(lags) == args.count and lags[-1] <= TARGET_LAG_SECONDS and statuses.get("SUCCEEDED") == args.count
    )
    result["targets"] = [
        {
            "target": f"server RSS <= {TARGET_RSS_MB:g} MB",
            "measured_mb": round(peak * 2**20 / 1e6, 1),
            "met": rss_met,
        },
        {
            "target": f"all resumed within {TARGET_LAG_SECONDS:g} s of due",
            "measured_s": result["lag_max_seconds"],
            "met": lag_met,
        },
    ]
    print(
        f"\nresumed {len(lags)}/{args.count} ({statuses}); lag after due: p50 {result['lag_p50_seconds']} s, "
        f"p99 {result['lag_p99_seconds']} s, max {result['lag_max_seconds']} s "
        f"({result['resumed_per_second']}/s)"
    )
    print(
        f"RSS: idle {result['rss_idle_mib'] or 0:.0f} MiB, parked {result['rss_parked_mib'] or 0:.0f} MiB, "
        f"peak {peak:.0f} MiB, after {result['rss_after_mib'] or 0:.0f} MiB"
    )
    for target in result["targets"]:
        print(f"{'met    ' if target['met'] else 'NOT met'}  {target['target']}")
    settings = {
        "count": args.count,
        "clients": args.clients,
        "due_after": args.due_after,
        "py_spy": args.py_spy,
    }
    path = write_report("parked_waits", settings, result, args.output)
    print(f"results: {path}")
    return 0


def _database_size(database: Path) -> int:
    return sum(path.stat().st_size for path in database.parent.glob(database.name + "*") if path.exists())


if __name__ == "__main__":
    sys.exit(main())
