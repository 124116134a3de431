"""Chaos soak: kill machinery while executions are in flight, and check that nothing is lost or done twice.

Scenarios (``--scenarios``, all by default):

``sqlite``
    ``machinery serve`` on a SQLite file; every cycle tops the executions in flight up to
    ``--in-flight`` (they call a loopback service, wait, call it again) and sends SIGKILL to the server
    while posters are still sending, then starts it again.
``postgres``
    an API process (``machinery serve --no-worker``) and two ``machinery worker`` processes on one
    PostgreSQL database; every cycle kills one of the workers (in turn) with SIGKILL and starts it again.
    Half-way, PostgreSQL itself is restarted (``pg_ctl restart -m immediate``: a crash, as far as clients
    are concerned). The benchmark runs its own PostgreSQL cluster (``initdb`` and ``pg_ctl`` in a
    temporary directory, on a free port), never the machine's shared server; ``--postgres-url`` runs on
    an existing server instead (a fresh database in it; PostgreSQL is then not restarted).
``diskfull``
    ``machinery serve`` on a SQLite file on a small tmpfs (``--tmpfs-mib``) that a filler file brings to
    nearly full: requests must fail with clear 503/507 errors (never 500), nothing already stored may be
    damaged, and once the filler is gone the server must go on as before.

After each scenario every acknowledged execution (a 201/202 with an event id) is checked in storage:

- **lost**: acknowledged but missing, or not ended ``--drain-seconds`` after the last cycle (must be 0);
- **finished twice**: more than one terminal history event (must be 0);
- **duplicated state entries**: a state entered more than once in one execution (the workflow has no
  loops and no retries, so must be 0);
- **calls repeated**: task calls the service received more than once for the same task: with the same
  ``Idempotency-Key`` (at-least-once, as documented: a crash between the call and its commit) or with
  a different one (which would mean a repeat the service cannot recognise; must be 0);
- **restart to serving**: seconds from starting a process to its first ``/healthcheck`` 204.

    python -m bench.chaos                                  # everything, 20 cycles each
    python -m bench.chaos --scenarios sqlite --cycles 5 --in-flight 300
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, write_report
from bench.seed_workflow import free_port_block

REPOSITORY = Path(__file__).resolve().parent.parent
TERMINAL = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
HOST = "127.0.0.1"


# the service the workflow calls ------------------------------------------------------------------


class Recorder:
    """A loopback HTTP service that answers every POST after ``delay`` seconds and records the call."""

    def __init__(self, delay: float) -> None:
        self.calls: list[tuple[str, str, str]] = []  # (idempotency key, execution id, path)
        lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    recorder.calls.append(
                        (
                            self.headers.get("Idempotency-Key", ""),
                            self.headers.get("X-Machinery-Execution-Id", ""),
                            self.path,
                        )
                    )
                time.sleep(delay)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # A restarted server resumes a thousand executions at once: with socketserver's backlog of 5
            # their connections would wait out SYN retries, and their calls time out.
            request_queue_size = 4096

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A caller killed in the middle of its call (that is the point of the soak): not news.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def definition(service: str, wait_seconds: int) -> dict[str, Any]:
    return {
        "StartAt": "Call one",
        "States": {
            "Call one": {"Type": "Task", "Resource": f"{service}/one", "TimeoutSeconds": 60, "Next": "Nap"},
            "Nap": {"Type": "Wait", "Seconds": wait_seconds, "Next": "Call two"},
            "Call two": {"Type": "Task", "Resource": f"{service}/two", "TimeoutSeconds": 60, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }


STATES = ("Call one", "Nap", "Call two", "Done")


# processes ---------------------------------------------------------------------------------------


def call(base: str, method: str, path: str, document: Any = None, timeout: float = 30) -> tuple[int, Any]:
    data = None if document is None else json.dumps(document).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    prepared = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Process:
    """A machinery process we start, kill and start again."""

    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    base: str | None = None  # the URL of its API, when it serves one
    popen: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)  # seconds from start to serving (or to running)

    def start(self) -> None:
        began = time.monotonic()
        with self.log.open("a") as output:
            self.popen = subprocess.Popen(
                self.command, cwd=REPOSITORY, env=self.env, stdout=output, stderr=subprocess.STDOUT
            )
        if self.base is None:
            return
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see {self.log}")
            try:
                if call(self.base, "GET", "/healthcheck", timeout=2)[0] == 204:
                    break
            except OSError:
                pass
            time.sleep(0.02)
        self.starts.append(time.monotonic() - began)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def machinery_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "machinery", "--log-level", "WARNING", *args]


class Posters:
    """Threads posting executions; ``acked`` holds the ids the server acknowledged."""

    def __init__(self, base: str, workflow: str, threads: int) -> None:
        self.base, self.workflow = base, workflow
        self.acked: list[str] = []
        self.refused: Counter[int] = Counter()
        self.unanswered = 0
        self.bodies: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._want = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def post(self, count: int) -> None:
        with self._lock:
            self._want += count

    def _take(self) -> bool:
        with self._lock:
            if self._want <= 0:
                return False
            self._want -= 1
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._take():
                time.sleep(0.01)
                continue
            try:
                status, body = call(self.base, "POST", f"/e/{self.workflow}?wait=0", {"n": 1}, timeout=30)
            except (OSError, http.client.HTTPException) as error:
                reason = error.reason if isinstance(error, urllib.error.URLError) else error
                if isinstance(reason, ConnectionRefusedError):
                    self.post(1)  # the server is restarting: nothing was sent, send it later
                    time.sleep(0.05)
                    continue
                # Killed under the request: not acknowledged (the execution may exist or not).
                with self._lock:
                    self.unanswered += 1
                continue
            with self._lock:
                if status in (201, 202) and isinstance(body, dict) and "event_id" in body:
                    self.acked.append(body["event_id"])
                else:
                    self.refused[status] += 1
                    self.bodies.setdefault(status, body)

    def pending(self) -> int:
        with self._lock:
            return self._want

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(35)


# checking ----------------------------------------------------------------------------------------


def check(
    database_url: str, acked: Sequence[str], recorder: Recorder, drain_seconds: float
) -> dict[str, Any]:
    """Every acknowledged execution's fate, from storage (after the processes have drained the work)."""
    from machinery.storage import open_storage

    storage = open_storage(database_url)
    try:
        deadline = time.monotonic() + drain_seconds
        unfinished = list(dict.fromkeys(acked))
        while unfinished and time.monotonic() < deadline:
            still = []
            for execution_id in unfinished:
                record = storage.get_execution(execution_id)
                if record is None or record.status == "RUNNING":
                    still.append(execution_id)
            unfinished = still
            if unfinished:
                time.sleep(1.0)
        missing = [i for i in dict.fromkeys(acked) if storage.get_execution(i) is None]
        statuses: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        finished_twice = duplicated_entries = 0
        for execution_id in dict.fromkeys(acked):
            record = storage.get_execution(execution_id)
            if record is None:
                continue
            statuses[record.status] += 1
            if record.status != "SUCCEEDED":
                errors[f"{record.error}: {(record.cause or '')[:200]}"] += 1
            history = storage.get_history(execution_id)
            if sum(1 for event in history if event.type in TERMINAL) > 1:
                finished_twice += 1
            entered = Counter(
                event.details.get("name") for event in history if event.type.endswith("StateEntered")
            )
            duplicated_entries += sum(count - 1 for count in entered.values() if count > 1)
    finally:
        storage.close()
    by_key = Counter(key for key, _execution, _path in recorder.calls)
    keys_per_task: dict[tuple[str, str], set[str]] = defaultdict(set)
    for key, execution_id, path in recorder.calls:
        keys_per_task[(execution_id, path)].add(key)
    return {
        "acknowledged": len(set(acked)),
        "lost": len(missing) + len([i for i in unfinished if i not in missing]),
        "missing": len(missing),
        "not_ended": len(unfinished),
        "statuses": dict(statuses),
        "errors": dict(errors),
        "finished_twice": finished_twice,
        "duplicated_state_entries": duplicated_entries,
        "task_calls": len(recorder.calls),
        "calls_repeated_same_key": sum(count - 1 for count in by_key.values() if count > 1),
        "calls_repeated_new_key": sum(len(keys) - 1 for keys in keys_per_task.values() if len(keys) > 1),
    }


def seconds_summary(values: Sequence[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"min": None, "median": None, "max": None}
    return {
        "min": round(ordered[0], 3),
        "median": round(ordered[len(ordered) // 2], 3),
        "max": round(ordered[-1], 3),
    }


def base_env(args: argparse.Namespace, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "MACHINERY_DATABASE_URL": database_url,
        "MACHINERY_LEASE_SECONDS": str(args.lease_seconds),
        "MACHINERY_POLL_INTERVAL": "0.5",
        "MACHINERY_RETENTION_DAYS": "0",
        "PYTHONUNBUFFERED": "1",
    }


def top_up(posters: Posters, running: Callable[[], int], target: int, timeout: float) -> int:
    """Post until about ``target`` executions are in flight; the number in flight then."""
    in_flight = running()
    if in_flight < target:
        posters.post(target - in_flight)
        posters.wait_idle(timeout)
        in_flight = running()
    return in_flight


def running_count(database_url: str) -> Callable[[], int]:
    from machinery.storage import open_storage

    storage = open_storage(database_url)

    def count() -> int:
        total, cursor = 0, None
        while True:
            page = storage.list_executions(None, "RUNNING", 1000, cursor)
            total += len(page)
            if len(page) < 1000:
                return total
            cursor = page[-1].execution_id

    return count


# scenarios ---------------------------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    database_url = f"sqlite:///{directory / 'chaos.db'}"
    port = free_port_block(1, HOST)
    base = f"http://{HOST}:{port}"
    env = base_env(args, database_url)
    with ExitStack() as stack:
        recorder = Recorder(args.service_delay)
        stack.callback(recorder.close)
        command = machinery_command("serve", "--port", str(port))
        server = Process("serve", command, env, directory / "serve.log", base)
        stack.callback(server.stop)
        server.start()
        call(base, "POST", "/w", {"name": "chaos", "definition": definition(recorder.url, args.wait_seconds)})
        posters = Posters(base, "chaos", args.posters)
        running = running_count(database_url)
        in_flight_at_kill = []
        try:
            for cycle in range(args.cycles):
                in_flight = top_up(posters, running, args.in_flight, timeout=300)
                posters.post(args.in_flight // 10)  # still posting when the kill comes
                time.sleep(random.uniform(0.0, 0.5))
                in_flight_at_kill.append(in_flight)
                server.kill()
                server.start()
                print(f"sqlite cycle {cycle + 1}: {in_flight} in flight at the kill, "
                      f"serving again after {server.starts[-1]:.2f} s", flush=True)  # fmt: skip
            posters.wait_idle(120)
        finally:
            posters.close()
        result = check(database_url, posters.acked, recorder, args.drain_seconds)
        return {
            **result,
            "cycles": args.cycles,
            "in_flight_at_kill": seconds_summary(in_flight_at_kill),
            "unanswered_posts": posters.unanswered,
            "refused_posts": dict(posters.refused),
            "restart_to_serving_s": seconds_summary(server.starts[1:]),
        }


@contextmanager
def private_postgres(directory: Path) -> Iterator[tuple[str, Callable[[], float]]]:
    """A PostgreSQL cluster of our own (as the ``postgres`` user when run as root): its URL and a function
    that restarts it like a crash and returns how long that took."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not binaries:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql")
    bin_dir = binaries[-1]
    data = directory / "pgdata"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port_block(1, HOST)

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, timeout=120)

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {directory} -c listen_addresses={HOST} -c fsync=on -c max_connections=200"
    log = directory / "postgres.log"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")

    def restart() -> float:
        began = time.monotonic()
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
        return time.monotonic() - began

    try:
        yield f"postgresql://postgres@{HOST}:{port}/postgres", restart
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    import psycopg

    name = f"machinery_chaos_{int(time.time())}_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_postgres(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    with ExitStack() as stack:
        restart: Callable[[], float] | None = None
        if args.postgres_url:
            server_url = args.postgres_url
        else:
            server_url, restart = stack.enter_context(private_postgres(directory))
        database_url = stack.enter_context(fresh_database(server_url))
        subprocess.run(
            machinery_command("migrate", "--database-url", database_url), check=True, cwd=REPOSITORY
        )
        recorder = Recorder(args.service_delay)
        stack.callback(recorder.close)
        port = free_port_block(1, HOST)
        base = f"http://{HOST}:{port}"
        env = base_env(args, database_url)
        api = Process(
            "api",
            machinery_command("serve", "--port", str(port), "--no-worker"),
            env,
            directory / "api.log",
            base,
        )
        workers = [
            Process(f"worker-{n}", machinery_command("worker"), env, directory / f"worker-{n}.log")
            for n in (1, 2)
        ]
        api.start()
        stack.callback(api.stop)
        for worker in workers:
            worker.start()
            stack.callback(worker.stop)
        call(base, "POST", "/w", {"name": "chaos", "definition": definition(recorder.url, args.wait_seconds)})
        posters = Posters(base, "chaos", args.posters)
        running = running_count(database_url)
        in_flight_at_kill = []
        database_restart: dict[str, Any] = {"restarted": False}
        try:
            for cycle in range(args.cycles):
                in_flight = top_up(posters, running, args.in_flight, timeout=300)
                posters.post(args.in_flight // 10)
                time.sleep(random.uniform(0.0, 0.5))
                victim = workers[cycle % 2]
                in_flight_at_kill.append(in_flight)
                victim.kill()
                victim.start()
                print(f"postgres cycle {cycle + 1}: {in_flight} in flight, killed {victim.name}", flush=True)
                if restart is not None and cycle == args.cycles // 2:
                    took = restart()
                    began = time.monotonic()
                    while call(base, "GET", "/healthcheck", timeout=5)[0] != 204:
                        time.sleep(0.05)
                    database_restart = {
                        "restarted": True,
                        "restart_s": round(took, 3),
                        "api_serving_again_after_s": round(time.monotonic() - began, 3),
                    }
                    print(f"postgres restarted: {database_restart}", flush=True)
            posters.wait_idle(120)
        finally:
            posters.close()
        result = check(database_url, posters.acked, recorder, args.drain_seconds)
        return {
            **result,
            "cycles": args.cycles,
            "in_flight_at_kill": seconds_summary(in_flight_at_kill),
            "unanswered_posts": posters.unanswered,
            "refused_posts": dict(posters.refused),
            "worker_restart_to_running_s": "not measured (workers serve no HTTP)",
            "postgres": database_restart if restart is not None else "an existing server: not restarted",
            "private_cluster": restart is not None,
        }


def run_diskfull(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    mount = directory / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_mib}m", "tmpfs", str(mount)], check=True)
    try:
        return _diskfull(args, directory, mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _diskfull(args: argparse.Namespace, directory: Path, mount: Path) -> dict[str, Any]:
    import sqlite3

    database = mount / "full.db"
    database_url = f"sqlite:///{database}"
    recorder = Recorder(0.0)
    port = free_port_block(1, HOST)
    base = f"http://{HOST}:{port}"
    server = Process(
        "serve",
        machinery_command("serve", "--port", str(port)),
        base_env(args, database_url),
        directory / "full.log",
        base,
    )
    server.start()
    try:
        call(base, "POST", "/w", {"name": "chaos", "definition": definition(recorder.url, 0)})
        acked: list[str] = []
        statuses: Counter[int] = Counter()
        bodies: dict[int, Any] = {}

        def post(count: int) -> None:
            for _ in range(count):
                status, body = call(base, "POST", "/e/chaos?wait=0", {"n": 1, "pad": "x" * 2000})
                statuses[status] += 1
                if status in (201, 202):
                    acked.append(body["event_id"])
                else:
                    bodies.setdefault(status, body)

        post(200)
        filler = mount / "filler"
        with filler.open("wb") as out:
            chunk = b"\0" * 65536
            while _free_bytes(mount) > args.leave_kib * 1024 + len(chunk):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        free_when_full = _free_bytes(mount)
        full_statuses_before = Counter(statuses)
        post(args.full_posts)
        during = statuses - full_statuses_before
        health_when_full = call(base, "GET", "/healthcheck")[0]
        filler.unlink()
        after_before = Counter(statuses)
        post(200)
        after = statuses - after_before
        result = check(database_url, acked, recorder, args.drain_seconds)
    finally:
        server.stop()
        recorder.close()
    with sqlite3.connect(database) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    log = (directory / "full.log").read_text(errors="replace")
    return {
        **result,
        "tmpfs_mib": args.tmpfs_mib,
        "free_kib_when_full": free_when_full // 1024,
        "statuses_while_full": dict(during),
        "error_bodies": bodies,
        "healthcheck_while_full": health_when_full,
        "statuses_after_space_returned": dict(after),
        "integrity_check": integrity,
        "server_500s": statuses.get(500, 0),
        "tracebacks_in_log": log.count("Traceback"),
    }


SCENARIOS: dict[str, Callable[[argparse.Namespace, Path], dict[str, Any]]] = {
    "sqlite": run_sqlite,
    "postgres": run_postgres,
    "diskfull": run_diskfull,
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="sqlite,postgres,diskfull")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--in-flight", type=int, default=1000, help="executions in flight at each kill")
    parser.add_argument("--posters", type=int, default=8, help="threads posting executions")
    parser.add_argument("--wait-seconds", type=int, default=20, help="the workflow's Wait state")
    parser.add_argument("--service-delay", type=float, default=0.05, help="seconds the service takes")
    parser.add_argument("--lease-seconds", type=float, default=5.0, help="MACHINERY_LEASE_SECONDS")
    parser.add_argument(
        "--drain-seconds", type=float, default=600.0, help="time allowed to finish at the end"
    )
    parser.add_argument("--postgres-url", help="run the postgres scenario on this server instead of our own")
    parser.add_argument("--tmpfs-mib", type=int, default=24)
    parser.add_argument("--leave-kib", type=int, default=64, help="space left free on the tmpfs")
    parser.add_argument("--full-posts", type=int, default=300, help="posts sent while the disk is full")
    parser.add_argument("--output")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # run the clean-ups: stop the processes we started, unmount, stop PostgreSQL

    signal.signal(signal.SIGTERM, interrupted)
    results: dict[str, Any] = {"loadavg_start": Path("/proc/loadavg").read_text().split()[:3]}
    for name in args.scenarios.split(","):
        with tempfile.TemporaryDirectory(prefix=f"machinery-chaos-{name}-") as temporary:
            began = time.monotonic()
            try:
                results[name] = SCENARIOS[name](args, Path(temporary))
            except BaseException:
                kept = RESULTS / f"chaos-{name}-logs-{time.strftime('%Y%m%d-%H%M%S')}"
                kept.mkdir(parents=True, exist_ok=True)
                for log in Path(temporary).glob("*.log"):
                    shutil.copy(log, kept)
                print(f"{name} failed; its processes' logs are in {kept}", flush=True)
                raise
            results[name]["seconds"] = round(time.monotonic() - began, 1)
            print(json.dumps({name: results[name]}, indent=2), flush=True)
    results["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    path = write_report("chaos", vars(args), results, args.output)
    print(f"report: {path}")
    must_be_zero = ("lost", "finished_twice", "duplicated_state_entries", "calls_repeated_new_key")
    must_be_zero += ("server_500s",)
    bad = any(results[name].get(key) for name in args.scenarios.split(",") for key in must_be_zero)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
