"""What the process benchmarks share: starting ``machinery serve`` (optionally under py-spy), reading a
process's memory from ``/proc``, a small keep-alive JSON client, and writing the results file.

The pieces ``bench.seed_workflow`` already has (free ports, health checks, child processes, CPU time,
the git revision) are imported from it rather than repeated.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.seed_workflow import child_pids, child_process, git_revision, profiled, wait_healthy

RESULTS = Path(__file__).resolve().parent / "results"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: Seconds one request may take before the client gives up on it.
REQUEST_TIMEOUT = 120.0


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Options every process benchmark offers for the server under test."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address for every process")
    parser.add_argument("--database", help="SQLite file for machinery (default: a fresh temporary file)")
    parser.add_argument("--threads", type=int, help="waitress threads of the server (default: machinery's)")
    parser.add_argument("--processes", type=int, help="machinery serve --processes N (default: machinery's)")
    parser.add_argument("--py-spy", metavar="FILE", help="run the server under py-spy record, writing FILE")
    parser.add_argument("--py-spy-format", default="flamegraph", choices=("flamegraph", "speedscope", "raw"))
    parser.add_argument(
        "--py-spy-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra option for py-spy record, e.g. --gil or --idle (repeatable)",
    )
    parser.add_argument("--output", help="JSON results file (default: bench/results/<benchmark>-<time>.json)")


def check_loopback(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the benchmark runs on loopback only")


def start_server(
    stack: ExitStack, args: argparse.Namespace, port: int, database: Path, env: dict[str, str]
) -> tuple[Any, int]:
    """Start ``machinery serve`` on ``port`` and wait until it is healthy; return (process, server pid).

    Under ``--py-spy`` the process is py-spy's and the server is its child: the pid returned is the
    server's, so that its memory and CPU can still be read.
    """
    python = sys.executable
    command = [
        python,
        "-m",
        "machinery",
        "--log-level",
        env.get("MACHINERY_LOG_LEVEL", "WARNING"),
        "serve",
        "--host",
        args.host,
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{database}",
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if getattr(args, "processes", None):
        command += ["--processes", str(args.processes)]
    command = profiled(args, command)
    process = stack.enter_context(child_process(command, env))
    wait_healthy(args.host, port, "/healthcheck", process)
    return process, _server_pid(process.pid) if args.py_spy else process.pid


def _server_pid(parent: int) -> int:
    """The first child of ``parent`` (the server that py-spy started)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return int(children[0]) if children else parent


def epoch(iso: str) -> float:
    """Seconds since the epoch of a record's ISO 8601 time (``acknowledged_at``, ``finished_at``)."""
    return datetime.fromisoformat(iso).timestamp()


def rss_mib(pid: int) -> float | None:
    """Resident memory of ``pid`` and its live descendants in MiB (``machinery serve --processes N`` is a
    supervisor and N children), from ``VmRSS`` in ``/proc/<pid>/status``."""
    try:
        own = None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                own = int(line.split()[1]) / 1024.0
    except OSError:
        return None
    if own is None:
        return None
    return own + sum(rss_mib(child) or 0.0 for child in child_pids(pid))


class RssSampler:
    """Samples a process's RSS in a background thread: the timeline and the peak."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = time.time()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            value = rss_mib(self.pid)
            if value is not None:
                self.samples.append((time.time(), value))
            self._stop.wait(self.interval)

    def peak(self, since: float = 0.0, until: float = float("inf")) -> float | None:
        values = [rss for at, rss in self.samples if since <= at <= until]
        return max(values) if values else None


class JsonClient:
    """One keep-alive connection speaking JSON; reconnects once after a dropped connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)

    def call(self, method: str, path: str, document: Any = None) -> tuple[int, Any]:
        body = None if document is None else json.dumps(document).encode()
        for attempt in range(2):
            try:
                self.connection.request(method, path, body=body, headers=HEADERS)
                response = self.connection.getresponse()
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def expect(self, method: str, path: str, document: Any, *statuses: int) -> Any:
        status, reply = self.call(method, path, document)
        if status not in statuses:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {json.dumps(reply)[:300]}")
        return reply

    def close(self) -> None:
        self.connection.close()


def write_report(benchmark: str, settings: dict[str, Any], results: Any, output: str | None) -> Path:
    """Write the run's JSON report (``bench/results/<benchmark>-<time>.json`` unless ``output``)."""
    path = Path(output) if output else RESULTS / f"{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "settings": settings,
        "results": results,
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
