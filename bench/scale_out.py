"""Scale-out on PostgreSQL: what one database shared by API and worker processes delivers.

Three measurements, each on a fresh PostgreSQL database (created on the server ``--postgres-url`` names,
dropped afterwards):

a. ``seed``: the seed workflow (upper → reverse → space-counter, ``bench.seed_workflow``'s clients and
   cells) at ``--clients`` clients: direct calls, ``machinery serve`` on SQLite, ``machinery serve`` on
   PostgreSQL. Same process layout as ``bench.seed_workflow``.
b. ``workers``: services that take ``--delay-ms`` (20 ms) each (``bench.loopback_service``, asyncio). A
   backlog of ``--executions`` executions of a multi-state workflow (Pass → Task → Choice → Task →
   Parallel of two Tasks → Succeed) is posted to ``machinery serve --no-worker`` with no worker running;
   then 1 (and, on another fresh database, 2) ``machinery worker`` processes run it. Throughput is
   executions / (last ``finished_at`` - first step a worker recorded). Every history is checked for
   transitions recorded twice, and the service for calls received twice.
c. ``takeover``: ``--held`` executions hold a call each at the service on worker 1; worker 2 starts; worker 1
   is killed with SIGKILL. Reported: the time from the kill until worker 2 repeats the first and the last
   of those calls (the executions run again), with ``MACHINERY_LEASE_SECONDS`` = ``--lease-seconds``.

Every figure comes with the 1-minute load average at the time: on a shared machine it says how much
of the CPU the benchmark really had. Run from the repository root::

    python -m bench.scale_out                      # all three parts
    python -m bench.scale_out --parts workers --executions 1000 --concurrency 1024
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
from psycopg import sql

from bench.seed_workflow import (
    SERVICES,
    DirectClient,
    MachineryClient,
    child_process,
    cpu_seconds,
    free_port_block,
    git_revision,
    register,
    run_cell,
    wait_healthy,
)
from examples.workflows import scale_out_definition

RESULTS = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
TIMEOUT = 60.0
#: 2 workers over 1 worker with 20 ms services (from the issue).
TARGET_WORKER_SPEEDUP = 1.8


# Plumbing -----------------------------------------------------------------------------------------------


def load() -> float:
    return round(os.getloadavg()[0], 2)


def postgres_cpu_seconds() -> float:
    """User plus system CPU time of every ``postgres`` process of this host, with that of the backends
    that have exited (counted into the postmaster's), from ``/proc``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("postgres"):
            total += sum(int(value) for value in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """An empty database on the server of ``admin_url`` (machinery migrates it when it starts)."""
    name = f"machinery_bench_{int(time.time())}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlparse(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def machinery(arguments: list[str], env: dict[str, str]) -> list[str]:
    return [sys.executable, "-m", "machinery", "--log-level", env["MACHINERY_LOG_LEVEL"], *arguments]


def call(port: int, method: str, path: str, document: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    try:
        body = None if document is None else json.dumps(document).encode()
        connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        connection.close()


def post_backlog(port: int, workflow: str, count: int, clients: int = 8) -> None:
    """``POST /e/<workflow>?wait=0`` ``{"n": i}`` for i < count, from ``clients`` keep-alive threads."""

    def post(first: int) -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        try:
            for n in range(first, count, clients):
                body = json.dumps({"n": n}).encode()
                connection.request(
                    "POST", f"/e/{workflow}?wait=0", body=body, headers={"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                if response.status != 202:
                    raise RuntimeError(f"POST /e/{workflow} answered {response.status}")
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_until_finished(database_url: str, expected: int, deadline: float) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        while True:
            row = connection.execute("SELECT count(*) FROM executions WHERE status <> 'RUNNING'").fetchone()
            if row is not None and row[0] >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {row[0] if row else 0} of {expected} executions finished in time")
            time.sleep(0.2)


def duplicated_transitions(database_url: str) -> dict[str, int]:
    """Transitions recorded more than once in any history, by kind (all zero when exactly once)."""
    queries = {
        "state_entered": """SELECT count(*) FROM (SELECT execution_id, details->>'name' FROM history
            WHERE type LIKE '%%StateEntered' GROUP BY 1, 2 HAVING count(*) > 1) AS repeated""",
        "task_scheduled": """SELECT count(*) FROM (SELECT execution_id, details->>'resource' FROM history
            WHERE type = 'TaskScheduled' GROUP BY 1, 2 HAVING count(*) > 1) AS repeated""",
        "execution_finished": """SELECT count(*) FROM (SELECT execution_id FROM history
            WHERE type LIKE 'Execution%%' AND type <> 'ExecutionStarted' GROUP BY 1 HAVING count(*) > 1)
            AS repeated""",
    }
    with psycopg.connect(database_url) as connection:
        return {name: int(connection.execute(query).fetchone()[0]) for name, query in queries.items()}  # type: ignore[index]


def statuses(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall()
    return {status: int(count) for status, count in rows}


# a. the seed workflow --------------------------------------------------------------------------------


def seed_part(args: argparse.Namespace, env: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    base = free_port_block(len(SERVICES), HOST)
    ports = {name: base + offset for offset, name in enumerate(SERVICES)}
    with ExitStack() as stack:
        services = stack.enter_context(
            child_process(
                [
                    sys.executable,
                    "-m",
                    "examples.services.textservices",
                    "--host",
                    HOST,
                    "--base-port",
                    str(base),
                ],
                env,
            )
        )
        for name in SERVICES:
            wait_healthy(HOST, ports[name], "/healthcheck", services)
        watched: dict[str, int | None] = {"services": services.pid}
        cell = run_cell(
            "direct", args.clients, lambda: DirectClient(HOST, ports), args.warmup, args.seconds, watched
        )
        rows.append({"mode": "direct", **_cell_row(cell), "load": load()})
        print(f"seed direct: {rows[-1]}", flush=True)
        for backend in ("sqlite", "postgres"):
            with ExitStack() as run:
                if backend == "sqlite":
                    directory = run.enter_context(_temporary_directory())
                    url = f"sqlite:///{directory / 'bench.db'}"
                else:
                    url = run.enter_context(fresh_database(args.postgres_url))
                port = free_port_block(1, HOST)
                server = run.enter_context(
                    child_process(machinery(["serve", "--port", str(port), "--database-url", url], env), env)
                )
                wait_healthy(HOST, port, "/healthcheck", server)
                register(HOST, port, ports)
                cell = run_cell(
                    "durable",
                    args.clients,
                    lambda port=port: MachineryClient(HOST, port, "process-text"),  # type: ignore[misc]
                    args.warmup,
                    args.seconds,
                    {**watched, "server": server.pid},
                )
                rows.append({"mode": f"durable ({backend})", **_cell_row(cell), "load": load()})
                print(f"seed durable {backend}: {rows[-1]}", flush=True)
    direct = rows[0]["executions_per_second"] or 1.0
    for row in rows:
        row["vs_direct"] = round(row["executions_per_second"] / direct, 3)
    return rows


@contextmanager
def _temporary_directory() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="machinery-bench-") as name:
        yield Path(name)


def _cell_row(cell: Any) -> dict[str, Any]:
    return {
        "clients": cell.clients,
        "executions_per_second": round(cell.executions_per_second, 1),
        "p50_ms": round(cell.p50_ms, 2),
        "p99_ms": round(cell.p99_ms, 2),
        "errors": cell.errors,
        "server_cpu_ms": None if cell.server_cpu_ms is None else round(cell.server_cpu_ms, 2),
    }


# b. one worker against two ---------------------------------------------------------------------------


@contextmanager
def loopback_service(env: dict[str, str], delay_ms: float) -> Iterator[int]:
    port = free_port_block(1, HOST)
    command = [
        sys.executable,
        "-m",
        "bench.loopback_service",
        "--port",
        str(port),
        "--delay-ms",
        str(delay_ms),
    ]
    with child_process(command, env) as process:
        wait_healthy(HOST, port, "/healthcheck", process)
        yield port


def workers_run(args: argparse.Namespace, env: dict[str, str], workers: int) -> dict[str, Any]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(args.postgres_url))
        service = stack.enter_context(loopback_service(env, args.delay_ms))
        api_port = free_port_block(1, HOST)
        api = stack.enter_context(
            child_process(
                machinery(["serve", "--no-worker", "--port", str(api_port), "--database-url", url], env), env
            )
        )
        wait_healthy(HOST, api_port, "/healthcheck", api)
        status, reply = call(
            api_port,
            "POST",
            "/w",
            {"name": "scale", "definition": scale_out_definition(f"http://{HOST}:{service}")},
        )
        if status != 201:
            raise RuntimeError(f"registering the workflow: {status} {reply}")
        post_backlog(api_port, "scale", args.executions)
        load_before = load()
        postgres_before = postgres_cpu_seconds()
        worker_env = {**env, "MACHINERY_DATABASE_URL": url}
        command = machinery(["worker", "--concurrency", str(args.concurrency)], env)
        started = [stack.enter_context(child_process(command, worker_env)) for _ in range(workers)]
        wait_until_finished(url, args.executions, time.monotonic() + 600)
        load_after = load()
        # From the workers' start (imports included) until the last execution finished.
        cpu = {
            "workers": [round(cpu_seconds(process.pid) or 0.0, 2) for process in started],
            "postgres": round(postgres_cpu_seconds() - postgres_before, 2),
        }
        with psycopg.connect(url) as connection:
            row = connection.execute(
                """SELECT (SELECT min(timestamp) FROM history WHERE type <> 'ExecutionStarted'),
                          (SELECT max(finished_at) FROM executions)"""
            ).fetchone()
        assert row is not None
        seconds = float(row[1]) - float(row[0])
        _, stats = call(service, "GET", "/stats")
        result = {
            "workers": workers,
            "executions": args.executions,
            "seconds": round(seconds, 2),
            "executions_per_second": round(args.executions / seconds, 1),
            "task_calls": stats["calls"],
            "calls_received_twice": len(stats["repeated_keys"]),
            "duplicated_transitions": duplicated_transitions(url),
            "statuses": statuses(url),
            "load_before": load_before,
            "load_after": load_after,
            "cpu_seconds": cpu,
        }
    print(f"workers={workers}: {result}", flush=True)
    return result


# c. takeover after SIGKILL ---------------------------------------------------------------------------


def takeover_part(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(args.postgres_url))
        service = stack.enter_context(loopback_service(env, 0))
        api_port = free_port_block(1, HOST)
        api = stack.enter_context(
            child_process(
                machinery(["serve", "--no-worker", "--port", str(api_port), "--database-url", url], env), env
            )
        )
        wait_healthy(HOST, api_port, "/healthcheck", api)
        definition = {
            "StartAt": "Hold",
            "States": {"Hold": {"Type": "Task", "Resource": f"http://{HOST}:{service}/hold", "End": True}},
        }
        call(api_port, "POST", "/w", {"name": "held", "definition": definition})
        worker_env = {
            **env,
            "MACHINERY_DATABASE_URL": url,
            "MACHINERY_LEASE_SECONDS": str(args.lease_seconds),
        }
        command = machinery(["worker"], env)
        first = subprocess.Popen(command, env=worker_env)
        try:
            post_backlog(api_port, "held", args.held)
            _poll(
                lambda: len(call(service, "GET", "/stats")[1]["holds"]) >= args.held,
                60,
                "calls held by worker 1",
            )
            stack.enter_context(child_process(command, worker_env))
            _poll(lambda: _listeners(url) >= 2, 30, "worker 2 listening")
            time.sleep(args.lease_seconds)  # worker 1 renews its leases at least once: a lease is fresh
            load_at_kill = load()
            killed_at = time.time()
            first.send_signal(signal.SIGKILL)
            first.wait(10)

            def repeated() -> bool:
                holds = call(service, "GET", "/stats")[1]["holds"]
                return all(len(times) >= 2 for times in holds.values())

            _poll(repeated, args.lease_seconds + 60, "the held calls repeated by worker 2")
            holds = call(service, "GET", "/stats")[1]["holds"]
            again = sorted(times[1] - killed_at for times in holds.values())
            call(service, "POST", "/release")
            wait_until_finished(url, args.held, time.monotonic() + 60)
            result = {
                "lease_seconds": args.lease_seconds,
                "poll_interval": float(env.get("MACHINERY_POLL_INTERVAL", "1.0")),
                "executions_taken_over": len(again),
                "first_running_again_s": round(again[0], 2),
                "last_running_again_s": round(again[-1], 2),
                "statuses": statuses(url),
                "duplicated_transitions": duplicated_transitions(url),
                "load": load_at_kill,
            }
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    print(f"takeover: {result}", flush=True)
    return result


def _listeners(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _poll(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


# Main ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "MACHINERY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a server where the benchmark may create and drop databases (default: %(default)s)",
    )
    parser.add_argument("--parts", default="seed,workers,takeover", help="subset of seed,workers,takeover")
    parser.add_argument("--clients", type=int, default=32, help="seed: clients (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seed: measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="seed: warm-up seconds per cell")
    parser.add_argument(
        "--executions", type=int, default=600, help="workers: backlog size (default: %(default)s)"
    )
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="workers: service latency (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1024,
        help="workers: machinery worker --concurrency (default: %(default)s)",
    )
    parser.add_argument(
        "--held", type=int, default=50, help="takeover: executions held (default: %(default)s)"
    )
    parser.add_argument("--lease-seconds", type=float, default=5.0, help="takeover: MACHINERY_LEASE_SECONDS")
    parser.add_argument("--output", help="JSON results file (default: bench/results/scale_out-<time>.json)")
    args = parser.parse_args(argv)
    args.part_list = [part.strip() for part in args.parts.split(",") if part.strip()]
    if set(args.part_list) - {"seed", "workers", "takeover"}:
        parser.error("parts must be among seed,workers,takeover")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MACHINERY_PG_POOL_MAX": "4"}
    env.setdefault("MACHINERY_LOG_LEVEL", "WARNING")
    report: dict[str, Any] = {
        "benchmark": "scale_out",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "settings": {key: value for key, value in vars(args).items() if key != "part_list"},
    }
    if "seed" in args.part_list:
        report["seed"] = seed_part(args, env)
    if "workers" in args.part_list:
        one = workers_run(args, env, 1)
        two = workers_run(args, env, 2)
        speedup = two["executions_per_second"] / one["executions_per_second"]
        report["workers"] = {
            "one": one,
            "two": two,
            "speedup": round(speedup, 2),
            "target": f">= {TARGET_WORKER_SPEEDUP}x",
            "met": speedup >= TARGET_WORKER_SPEEDUP,
        }
    if "takeover" in args.part_list:
        report["takeover"] = takeover_part(args, env)
    print(json.dumps({key: value for key, value in report.items() if key not in ("settings",)}, indent=2))
    output = (
        Path(args.output) if args.output else RESULTS / f"scale_out-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
