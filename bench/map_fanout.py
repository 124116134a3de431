"""A Map over 10,000 items whose iterations call a loopback HTTP service, with MaxConcurrency 100.

Target (from the issue): at least 1,500 items/s, durable on SQLite. Three processes share the machine:
the example services (``python -m examples.services.textservices``; the iterations call ``upper``),
``machinery serve`` on a fresh SQLite file, and this process, which posts one event per run and waits
for it. Every iteration is a child branch committed to SQLite when it starts and when its task returns.

The workflow::

    Fan (Map, ItemsPath $.items, MaxConcurrency 100,
         ItemSelector {"message.$": "$$.Map.Item.Value"})
      └─ Call (Task, Resource "upper")

Items are short strings (``i0`` … ``i9999``), so the Map's output (10,000 ``{"message": "I…"}``) stays
under the 256 KiB data limit. Each run's output is checked item by item.

Run from the repository root::

    python -m bench.map_fanout [--items 10000] [--concurrency 100] [--runs 3]
    python -m bench.map_fanout --runs 1 --py-spy /tmp/map.svg

The rate is items / (``finished_at`` - ``acknowledged_at``) of the execution record (the server's own clock);
the client's wall time, the server's and the services' CPU time and the server's peak RSS are reported
with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.harness import (
    JsonClient,
    RssSampler,
    add_server_options,
    check_loopback,
    epoch,
    start_server,
    write_report,
)
from bench.seed_workflow import DEFINITIONS, child_process, cpu_seconds, free_port_block, wait_healthy

WORKFLOW = "map-fanout"
SERVICES = ("upper", "reverse", "space-counter")
#: items/s the issue asks for.
TARGET_ITEMS_PER_SECOND = 1500.0


def definition(concurrency: int) -> dict[str, Any]:
    return {
        "Comment": "bench.map_fanout: one loopback call per item",
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": concurrency,
                "ItemSelector": {"message.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Call",
                    "States": {"Call": {"Type": "Task", "Resource": "upper", "End": True}},
                },
                "End": True,
            }
        },
    }


def run_once(
    client: JsonClient, items: int, server_pid: int, services_pid: int, sampler: RssSampler
) -> dict[str, Any]:
    data = {"items": [f"i{index}" for index in range(items)]}
    cpu_server, cpu_services = cpu_seconds(server_pid), cpu_seconds(services_pid)
    began = time.time()
    record = client.expect("POST", f"/e/{WORKFLOW}?wait=0", data, 202)
    event_id = record["event_id"]
    while record["status"] == "RUNNING":
        record = client.expect("GET", f"/e/{event_id}?wait=30", None, 200)
    ended = time.time()
    after_server, after_services = cpu_seconds(server_pid), cpu_seconds(services_pid)
    if record["status"] != "SUCCEEDED":
        raise RuntimeError(
            f"the Map execution ended {record['status']}: {record.get('error')} {record.get('cause')}"
        )
    expected = [{"message": f"I{index}"} for index in range(items)]
    if record["output"] != expected:
        raise RuntimeError("the Map's output is not the upper-cased items in order")
    server_seconds = epoch(record["finished_at"]) - epoch(record["acknowledged_at"])
    result: dict[str, Any] = {
        "event_id": event_id,
        "items": items,
        "server_seconds": round(server_seconds, 3),
        "wall_seconds": round(ended - began, 3),
        "items_per_second": round(items / server_seconds, 1),
        "peak_rss_mib": sampler.peak(began, ended),
    }
    if cpu_server is not None and after_server is not None:
        result["server_cpu_seconds"] = round(after_server - cpu_server, 2)
        result["server_cpu_us_per_item"] = round((after_server - cpu_server) * 1e6 / items, 1)
    if cpu_services is not None and after_services is not None:
        result["services_cpu_seconds"] = round(after_services - cpu_services, 2)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.map_fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="items of the Map (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=100, help="MaxConcurrency (default: %(default)s)")
    parser.add_argument(
        "--runs", type=int, default=3, help="executions, one after another (default: %(default)s)"
    )
    add_server_options(parser)
    args = parser.parse_args(argv)
    check_loopback(parser, args)
    if args.items < 1 or args.runs < 1 or args.concurrency < 0:
        parser.error("--items and --runs must be positive, --concurrency at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host = args.host
    base = free_port_block(len(SERVICES), host)
    machinery_port = free_port_block(1, host)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("MACHINERY_LOG_LEVEL", "WARNING")
    runs: list[dict[str, Any]] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="machinery-bench-")))
        services = stack.enter_context(
            child_process(
                [
                    sys.executable,
                    "-m",
                    "examples.services.textservices",
                    "--host",
                    host,
                    "--base-port",
                    str(base),
                ],
                env,
            )
        )
        wait_healthy(host, base, "/healthcheck", services)
        database = Path(args.database) if args.database else workdir / "bench.db"
        _, server_pid = start_server(stack, args, machinery_port, database, env)
        client = JsonClient(host, machinery_port)
        stack.callback(client.close)
        upper = {**_service_definition("upper"), "address": f"http://{host}:{base}/event"}
        client.expect("POST", "/s", upper, 201)
        client.expect("POST", "/w", {"name": WORKFLOW, "definition": definition(args.concurrency)}, 201)
        with RssSampler(server_pid) as sampler:
            for number in range(1, args.runs + 1):
                result = run_once(client, args.items, server_pid, services.pid, sampler)
                runs.append(result)
                print(
                    f"run {number}: {result['items']} items in {result['server_seconds']:.2f} s "
                    f"= {result['items_per_second']:.0f} items/s (wall {result['wall_seconds']:.2f} s, "
                    f"server CPU {result.get('server_cpu_us_per_item', '?')} µs/item, "
                    f"peak RSS {result['peak_rss_mib'] or 0:.0f} MiB)",
                    flush=True,
                )
    best = max(run["items_per_second"] for run in runs)
    median = sorted(run["items_per_second"] for run in runs)[len(runs) // 2]
    met = median >= TARGET_ITEMS_PER_SECOND
    print(
        f"\n{'met    ' if met else 'NOT met'}  Map of {args.items} at MaxConcurrency {args.concurrency}: "
        f">= {TARGET_ITEMS_PER_SECOND:g} items/s (median {median:.0f}, best {best:.0f})"
    )
    settings = {
        "items": args.items,
        "concurrency": args.concurrency,
        "runs": args.runs,
        "threads": args.threads,
        "py_spy": args.py_spy,
    }
    summary = {
        "runs": runs,
        "median_items_per_second": median,
        "best_items_per_second": best,
        "target_items_per_second": TARGET_ITEMS_PER_SECOND,
        "met": met,
    }
    path = write_report("map_fanout", settings, summary, args.output)
    print(f"results: {path}")
    return 0


def _service_definition(name: str) -> dict[str, Any]:
    return dict(json.loads((DEFINITIONS / f"service-{name}.json").read_text()))


if __name__ == "__main__":
    sys.exit(main())
