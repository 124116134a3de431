"""The seed workflow (upper → reverse → space-counter) through machinery and through direct calls.

Three processes share the machine, as the 2-core budget asks: the three example services run in one
child process, ``machinery serve`` (API and worker, SQLite) in another, and this process is the load
generator. Every client is a thread with its own keep-alive :class:`http.client.HTTPConnection`\\ s, so
both sides of the comparison use the same client library and connection reuse:

- ``direct``: the client itself calls upper, reverse and space-counter in sequence and merges each reply
  over the document, as the seed's workflow does: the floor machinery is measured against;
- ``durable``: ``POST /e/process-text`` (every transition committed to SQLite) and wait for the result;
- ``express``: the same workflow registered with ``"express": true`` (runs in memory, stores the record).

Each (mode, clients) cell warms up, then every client loops for ``--seconds``; only executions that start
and finish inside the measured window count. Targets (from the issue): durable at 32 clients ≥ 0.3 times the
direct calls' throughput at 32 clients; p50 at 1 client ≤ direct p50 + 2 ms.

Run from the repository root::

    python -m bench.seed_workflow [--seconds 5] [--clients 1,8,32] [--modes direct,durable,express]

With ``--py-spy FILE`` the server runs under ``py-spy record`` and FILE receives its profile.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
DEFINITIONS = REPOSITORY / "examples" / "definitions"
RESULTS = Path(__file__).resolve().parent / "results"

MESSAGE = "The Sun will rise in the morning !"
EXPECTED = {"message": MESSAGE.upper()[::-1], "space_count": MESSAGE.count(" ")}
SERVICES = ("upper", "reverse", "space-counter")
DURABLE_WORKFLOW = "process-text"
EXPRESS_WORKFLOW = "process-text-express"
#: Seconds one request may take before the client gives up on it (and counts an error).
REQUEST_TIMEOUT = 30.0
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

#: Throughput at 32 clients over direct at 32 clients must reach these (issue 13).
TARGET_RATIOS = {"durable": 0.35, "express": 0.6}
#: p50 at 1 client may exceed direct's p50 by at most this many milliseconds (issue 13).
TARGET_P50_EXTRA_MS = {"durable": 1.5, "express": 1.0}
FAST_SERVICES = Path(__file__).resolve().parent / "fast_services.js"


# One client's work ---------------------------------------------------------------------------------


class Unexpected(Exception):
    """A reply that is not the seed workflow's result."""


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers=HEADERS)
    response = connection.getresponse()
    return response.status, response.read()


class DirectClient:
    """Calls the three services itself and merges each reply over the document."""

    def __init__(self, host: str, ports: dict[str, int]) -> None:
        self.connections = [
            http.client.HTTPConnection(host, ports[name], timeout=REQUEST_TIMEOUT) for name in SERVICES
        ]

    def execute(self) -> None:
        document: dict[str, Any] = {"message": MESSAGE}
        for connection in self.connections:
            status, body = _post(connection, "/event", json.dumps(document).encode())
            if status != 200:
                raise Unexpected(f"service answered {status}: {body[:200]!r}")
            document.update(json.loads(body))
        if document != EXPECTED:
            raise Unexpected(f"unexpected result {document}")

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


class MachineryClient:
    """Posts an event to machinery and waits (in the same request) for the execution's result."""

    def __init__(self, host: str, port: int, workflow: str) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        self.path = f"/e/{workflow}"
        self.body = json.dumps({"message": MESSAGE}).encode()

    def execute(self) -> None:
        status, body = _post(self.connection, self.path, self.body)
        if status != 201:
            raise Unexpected(f"machinery answered {status}: {body[:200]!r}")
        reply = json.loads(body)
        if reply.get("status") != "SUCCEEDED" or reply.get("output") != EXPECTED:
            raise Unexpected(f"unexpected event {reply}")

    def close(self) -> None:
        self.connection.close()


Client = DirectClient | MachineryClient


# Measuring -------------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One (mode, clients) measurement."""

    mode: str
    clients: int
    seconds: float
    executions: int = 0
    errors: int = 0
    executions_per_second: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    ratio_vs_direct: float | None = None
    #: CPU milliseconds per execution spent by the machinery server and by the services (Linux only).
    server_cpu_ms: float | None = None
    services_cpu_ms: float | None = None
    #: The 1-minute load average when the cell ended (the machine is shared: how much CPU there was).
    load_average: float | None = None
    first_error: str | None = None
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU time of process ``pid``, its threads and its live descendants (``machinery
    serve --processes N`` runs N children), from ``/proc`` (``None`` elsewhere)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for child in child_pids(pid):
        total += cpu_seconds(child) or 0.0
    return total


def child_pids(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), from ``/proc``."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(part) for part in (task / "children").read_text().split())
    except OSError:
        pass
    return found


def load_average() -> float | None:
    """The 1-minute load average (``/proc/loadavg``)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def run_cell(
    mode: str,
    clients: int,
    make_client: Callable[[], Client],
    warmup: float,
    seconds: float,
    watched: dict[str, int | None],
) -> Cell:
    """Run ``clients`` threads for ``warmup + seconds``; count executions inside the measured window.

    ``watched`` names the processes (``server``, ``services``) whose CPU time is sampled over the window.
    """
    pool = [make_client() for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    window: dict[str, float] = {}
    per_client: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    first_error: list[str] = []

    def loop(index: int) -> None:
        client = pool[index]
        latencies = per_client[index]
        barrier.wait()
        start, end = window["start"], window["end"]
        while True:
            began = time.perf_counter()
            if began >= end:
                return
            try:
                client.execute()
            except (OSError, http.client.HTTPException, Unexpected, ValueError) as exc:
                errors[index] += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")
                client.close()  # a broken keep-alive connection reconnects on the next request
                continue
            finished = time.perf_counter()
            if began >= start and finished <= end:
                latencies.append((finished - began) * 1000.0)

    threads = [
        threading.Thread(target=loop, args=(i,), name=f"client-{i}", daemon=True) for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    window["start"] = now + warmup
    window["end"] = now + warmup + seconds
    barrier.wait()
    time.sleep(max(0.0, window["start"] - time.perf_counter()))
    cpu_before = {name: cpu_seconds(pid) for name, pid in watched.items()}
    time.sleep(max(0.0, window["end"] - time.perf_counter()))
    cpu_used: dict[str, float] = {}
    for name, pid in watched.items():
        after, before = cpu_seconds(pid), cpu_before[name]
        if after is not None and before is not None:
            cpu_used[name] = after - before
    for thread in threads:
        thread.join(warmup + seconds + REQUEST_TIMEOUT + 5)
    for client in pool:
        client.close()

    latencies = sorted(value for values in per_client for value in values)
    count = max(1, len(latencies))
    return Cell(
        mode=mode,
        clients=clients,
        seconds=seconds,
        executions=len(latencies),
        errors=sum(errors),
        executions_per_second=len(latencies) / seconds,
        p50_ms=percentile(latencies, 0.50),
        p90_ms=percentile(latencies, 0.90),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else 0.0,
        first_error=first_error[0] if first_error else None,
        server_cpu_ms=cpu_used["server"] * 1000 / count
        if "server" in cpu_used and mode != "direct"
        else None,
        services_cpu_ms=cpu_used["services"] * 1000 / count if "services" in cpu_used else None,
        load_average=load_average(),
        latencies_ms=latencies,
    )


# The processes under test ----------------------------------------------------------------------------


def free_port_block(count: int, host: str) -> int:
    """A base port such that ``count`` consecutive ports are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((host, 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            with ExitStack() as stack:
                for offset in range(count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind((host, base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError("no block of free ports found")


def wait_healthy(
    host: str, port: int, path: str, process: subprocess.Popen[bytes], timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, process.args))} exited with {process.returncode}")  # type: ignore[arg-type]
        try:
            connection = http.client.HTTPConnection(host, port, timeout=1)
            connection.request("GET", path)
            if connection.getresponse().status < 500:
                connection.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"http://{host}:{port}{path} did not become healthy within {timeout}s")


def profiled(args: argparse.Namespace, command: list[str]) -> list[str]:
    """``command``, run under ``py-spy record`` when ``--py-spy`` asks for a profile."""
    if not args.py_spy:
        return command
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    # --nonblocking: pausing the server to sample it slows it tenfold and distorts the profile.
    return [
        py_spy,
        "record",
        "--nonblocking",
        *([] if any(option.startswith("--rate") for option in args.py_spy_option) else ["--rate", "100"]),
        "--threads",
        "--format",
        args.py_spy_format,
        *args.py_spy_option,
        "-o",
        args.py_spy,
        "--",
        *command,
    ]


@contextmanager
def child_process(command: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` from the repository root; interrupt it (SIGINT, then SIGKILL) on exit."""
    process = subprocess.Popen(command, cwd=REPOSITORY, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def register(host: str, port: int, service_ports: dict[str, int]) -> None:
    """Register the example services (at this run's ports) and the workflow, durable and express."""
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        for name in SERVICES:
            service = json.loads((DEFINITIONS / f"service-{name}.json").read_text())
            service["address"] = f"http://{host}:{service_ports[name]}/event"
            status, body = _post(connection, "/s", json.dumps(service).encode())
            if status not in (200, 201):
                raise RuntimeError(f"registering service {name}: {status} {body[:300]!r}")
        workflow = json.loads((DEFINITIONS / "workflow-process-text.json").read_text())
        for name, express in ((DURABLE_WORKFLOW, False), (EXPRESS_WORKFLOW, True)):
            status, body = _post(
                connection, "/w", json.dumps({**workflow, "name": name, "express": express}).encode()
            )
            if status not in (200, 201):
                raise RuntimeError(f"registering workflow {name}: {status} {body[:300]!r}")
    finally:
        connection.close()


# Reporting --------------------------------------------------------------------------------------------


def fill_ratios(cells: list[Cell]) -> None:
    direct = {cell.clients: cell for cell in cells if cell.mode == "direct"}
    for cell in cells:
        base = direct.get(cell.clients)
        if base is not None and base.executions_per_second > 0:
            cell.ratio_vs_direct = cell.executions_per_second / base.executions_per_second


def check_targets(cells: list[Cell]) -> list[dict[str, Any]]:
    found = {(cell.mode, cell.clients): cell for cell in cells}
    targets: list[dict[str, Any]] = []
    for mode, ratio in TARGET_RATIOS.items():
        cell = found.get((mode, 32))
        if cell and found.get(("direct", 32)) and cell.ratio_vs_direct is not None:
            targets.append(
                {
                    "target": f"{mode}@32 throughput >= {ratio}x direct@32",
                    "measured": round(cell.ratio_vs_direct, 3),
                    "met": cell.ratio_vs_direct >= ratio,
                }
            )
    direct_1 = found.get(("direct", 1))
    for mode, allowed in TARGET_P50_EXTRA_MS.items():
        cell = found.get((mode, 1))
        if cell and direct_1 and cell.executions:
            extra = cell.p50_ms - direct_1.p50_ms
            targets.append(
                {
                    "target": f"{mode}@1 p50 <= direct@1 p50 + {allowed:g} ms",
                    "measured": round(extra, 3),
                    "met": extra <= allowed,
                }
            )
    return targets


def print_table(cells: list[Cell], targets: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'mode':<8} {'clients':>7} {'exec/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'vs direct':>9} {'errors':>6} {'srv cpu ms/ex':>13} {'svc cpu ms/ex':>13} "
        f"{'load':>5}"
    )
    for cell in cells:
        ratio = "" if cell.ratio_vs_direct is None else f"{cell.ratio_vs_direct:.2f}x"
        print(
            f"{cell.mode:<8} {cell.clients:>7} {cell.executions_per_second:>9.1f} {cell.p50_ms:>8.2f} "
            f"{cell.p90_ms:>8.2f} {cell.p99_ms:>8.2f} {cell.max_ms:>8.2f} {ratio:>9} {cell.errors:>6} "
            f"{_optional(cell.server_cpu_ms):>13} {_optional(cell.services_cpu_ms):>13} "
            f"{_optional(cell.load_average):>5}"
        )
    for cell in cells:
        if cell.first_error:
            print(f"  {cell.mode}@{cell.clients} first error: {cell.first_error}")
    if targets:
        print()
        for target in targets:
            verdict = "met    " if target["met"] else "NOT met"
            print(f"{verdict}  {target['target']} (measured {target['measured']})")


def _optional(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def git_revision() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPOSITORY,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip() + (
            " (dirty)"
            if subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=REPOSITORY,
                capture_output=True,
                text=True,
            ).stdout.strip()
            else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return None


# Main -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed_workflow",
        description="The seed workflow through machinery (durable, express) and through direct calls.",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured seconds per cell (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds per cell (default: %(default)s)"
    )
    parser.add_argument(
        "--clients", default="1,8,32", help="comma-separated client counts (default: %(default)s)"
    )
    parser.add_argument(
        "--modes",
        default="direct,durable,express",
        help="comma-separated subset of direct,durable,express (default: %(default)s)",
    )
    parser.add_argument(
        "--services",
        default="node",
        choices=("node", "python"),
        help="node: bench/fast_services.js on node's http module (keep-alive; fast, so that machinery is "
        "what is measured); python: the example services (examples/services/textservices.py) "
        "(default: %(default)s)",
    )
    parser.add_argument("--processes", type=int, help="machinery serve --processes N (default: machinery's)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server only, e.g. MACHINERY_THREADS=32 (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address for every process")
    parser.add_argument("--database", help="SQLite file for machinery (default: a fresh temporary file)")
    parser.add_argument(
        "--database-url", help="any MACHINERY_DATABASE_URL instead (e.g. an empty PostgreSQL database)"
    )
    parser.add_argument("--threads", type=int, help="waitress threads of the server (default: machinery's)")
    parser.add_argument("--py-spy", metavar="FILE", help="run the server under py-spy record, writing FILE")
    parser.add_argument("--py-spy-format", default="flamegraph", choices=("flamegraph", "speedscope", "raw"))
    parser.add_argument(
        "--py-spy-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra option for py-spy record, e.g. --gil or --idle (repeatable)",
    )
    parser.add_argument(
        "--output", help="JSON results file (default: bench/results/seed_workflow-<time>.json)"
    )
    args = parser.parse_args(argv)
    args.client_counts = [int(part) for part in args.clients.split(",") if part.strip()]
    args.mode_list = [part.strip() for part in args.modes.split(",") if part.strip()]
    unknown = set(args.mode_list) - {"direct", "durable", "express"}
    if unknown or not args.mode_list or not args.client_counts or min(args.client_counts) < 1:
        parser.error("modes must be among direct,durable,express and clients positive integers")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the benchmark runs on loopback only")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    if args.services == "node" and shutil.which("node") is None:
        parser.error("--services node needs node on the PATH (or use --services python)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host = args.host
    base = free_port_block(len(SERVICES), host)
    service_ports = {name: base + offset for offset, name in enumerate(SERVICES)}
    machinery_port = free_port_block(1, host)
    python = sys.executable
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("MACHINERY_LOG_LEVEL", "WARNING")

    cells: list[Cell] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="machinery-bench-")))
        database = Path(args.database) if args.database else workdir / "bench.db"
        watched: dict[str, int | None] = {"server": None}
        services_command = (
            ["node", str(FAST_SERVICES)]
            if args.services == "node"
            else [python, "-m", "examples.services.textservices"]
        )
        services = stack.enter_context(
            child_process([*services_command, "--host", host, "--base-port", str(base)], env)
        )
        for name in SERVICES:
            wait_healthy(host, service_ports[name], "/healthcheck", services)
        watched["services"] = services.pid

        needs_machinery = any(mode != "direct" for mode in args.mode_list)
        if needs_machinery:
            server = [
                python,
                "-m",
                "machinery",
                "--log-level",
                env["MACHINERY_LOG_LEVEL"],
                "serve",
                "--host",
                host,
                "--port",
                str(machinery_port),
                "--database-url",
                args.database_url or f"sqlite:///{database}",
            ]
            if args.threads:
                server += ["--threads", str(args.threads)]
            if args.processes:
                server += ["--processes", str(args.processes)]
            server = profiled(args, server)
            server_env = {**env, **dict(item.split("=", 1) for item in args.server_env)}
            machinery = stack.enter_context(child_process(server, server_env))
            # Under py-spy the server is py-spy's child; its CPU is then not sampled.
            watched["server"] = None if args.py_spy else machinery.pid
            wait_healthy(host, machinery_port, "/healthcheck", machinery)
            register(host, machinery_port, service_ports)

        factories: dict[str, Callable[[], Client]] = {
            "direct": lambda: DirectClient(host, service_ports),
            "durable": lambda: MachineryClient(host, machinery_port, DURABLE_WORKFLOW),
            "express": lambda: MachineryClient(host, machinery_port, EXPRESS_WORKFLOW),
        }
        for clients in args.client_counts:
            for mode in args.mode_list:
                cell = run_cell(mode, clients, factories[mode], args.warmup, args.seconds, watched)
                print(
                    f"{mode:<8} {clients:>3} clients: {cell.executions_per_second:8.1f} exec/s  "
                    f"p50 {cell.p50_ms:7.2f} ms  p99 {cell.p99_ms:7.2f} ms  errors {cell.errors}",
                    flush=True,
                )
                cells.append(cell)

    fill_ratios(cells)
    targets = check_targets(cells)
    print_table(cells, targets)

    output = (
        Path(args.output) if args.output else RESULTS / f"seed_workflow-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "seed_workflow",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "settings": {
            "seconds": args.seconds,
            "warmup": args.warmup,
            "clients": args.client_counts,
            "modes": args.mode_list,
            "threads": args.threads,
            "processes": args.processes,
            "services": args.services,
            "server_env": args.server_env,
            "py_spy": args.py_spy,
        },
        "results": [{k: v for k, v in asdict(cell).items() if k != "latencies_ms"} for cell in cells],
        "targets": targets,
    }
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
