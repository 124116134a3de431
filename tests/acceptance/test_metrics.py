"""``/metrics`` of real servers (``machinery serve`` and ``machinery worker`` in subprocesses) running
executions against the real example services; scrapes parsed by prometheus_client's own parser."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.demo import REPOSITORY, expect, free_port, request, run_example, wait_until_healthy
from machinery.telemetry import metrics

#: Samples of one scrape: (sample name, sorted label pairs) → value.
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str) -> Scrape:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Scrape, name: str, **labels: str) -> float:
    """A sample's value, 0 when the series does not exist (yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``check()``'s first truthy result; the server's state is polled until it gets there."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "the condition did not become true in time"
            return result
        time.sleep(0.05)


class Machinery:
    """``python -m machinery <args>`` as a subprocess, logging to a file."""

    def __init__(self, args: list[str], environment: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "machinery", *args],
                cwd=REPOSITORY,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **environment},
            )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[str, Machinery]]]:
    """``start(args, environment)``: a server or worker; returns its base URL (once healthy) and itself."""
    with ExitStack() as stack:
        count = 0

        def run(
            args: list[str], environment: dict[str, str], health: str = "/healthcheck"
        ) -> tuple[str, Machinery]:
            nonlocal count
            count += 1
            port = free_port()
            if args[0] == "serve":
                args = [*args, "--port", str(port)]
            else:
                args = [*args, "--metrics-port", str(port)]
            process = Machinery(
                args, {"MACHINERY_POLL_INTERVAL": "0.1", **environment}, tmp_path / f"{count}.log"
            )
            stack.callback(process.stop)
            base_url = f"http://127.0.0.1:{port}"
            try:
                if health == "/healthcheck":
                    wait_until_healthy(base_url, process.process)  # type: ignore[arg-type]
                else:
                    eventually(lambda: _answers(f"{base_url}{health}"))
            except Exception:
                pytest.fail(f"{args} did not start:\n{process.log.read_text()[-3000:]}")
            return base_url, process

        yield run


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def _services() -> Iterator[dict[str, str]]:
    from examples.demo import text_services

    with text_services() as urls:
        yield urls


WAITING = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}


def test_metrics_change_as_executions_run_and_finish(
    start: Callable[..., tuple[str, Machinery]], tmp_path: Path
) -> None:
    server, _ = start(["serve", "--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}"], {})
    before = scrape(server)
    assert value(before, "machinery_storage_gauges_up") == 1
    assert value(before, "machinery_work_items", state="due") == 0

    # A waiting execution: running, its timer scheduled.
    expect(*request("POST", f"{server}/w", {"name": "naps", "definition": WAITING}), 201, "workflow")
    record = expect(*request("POST", f"{server}/e/naps?wait=0", {}), 202, "event")

    def timer_scheduled() -> Scrape | None:
        samples = scrape(server)
        return samples if value(samples, "machinery_work_items", state="scheduled") == 1 else None

    during = eventually(timer_scheduled)
    assert value(during, "machinery_executions_started_total", workflow="naps") == 1
    assert value(during, "machinery_executions_running", workflow="naps") == 1
    assert value(during, "machinery_executions_finished_total", workflow="naps", status="ABORTED") == 0

    # Stopped: finished as ABORTED, no longer running.
    expect(*request("POST", f"{server}/e/{record['event_id']}/stop", {}), 200, "stop")
    stopped = scrape(server)
    assert value(stopped, "machinery_executions_running", workflow="naps") == 0
    assert value(stopped, "machinery_executions_finished_total", workflow="naps", status="ABORTED") == 1
    assert (
        value(stopped, "machinery_execution_duration_seconds_count", workflow="naps", status="ABORTED") == 1
    )

    # The seed workflow against the real example services: three task calls that succeed.
    with _services() as urls:
        assert run_example(server, urls)["space_count"] == 7
    after = scrape(server)
    assert (
        value(after, "machinery_executions_finished_total", workflow="process-text", status="SUCCEEDED") == 1
    )
    for service in ("upper", "reverse", "space-counter"):
        labels = {"service": service, "outcome": "succeeded"}
        assert value(after, "machinery_task_call_duration_seconds_count", **labels) == 1, service
        assert value(after, "machinery_task_call_duration_seconds_sum", **labels) > 0, service
    commits = value(after, "machinery_storage_commit_seconds_count", operation="transition")
    assert commits > value(before, "machinery_storage_commit_seconds_count", operation="transition")
    assert value(after, "machinery_worker_in_flight") == 0

    # A service that is not there: the call's outcome says so, and the execution fails.
    port = free_port()
    service = {"name": "gone", "address": f"http://127.0.0.1:{port}/event", "inputs": [], "outputs": []}
    expect(*request("POST", f"{server}/s", service), 201, "service")
    gone = {"StartAt": "Call", "States": {"Call": {"Type": "Task", "Resource": "gone", "End": True}}}
    expect(*request("POST", f"{server}/w", {"name": "calls-gone", "definition": gone}), 201, "workflow")
    failed = expect(*request("POST", f"{server}/e/calls-gone", {}), 201, "event")
    assert failed["status"] == "FAILED", failed
    last = scrape(server)
    assert (
        value(last, "machinery_task_call_duration_seconds_count", service="gone", outcome="connection") == 1
    )
    assert value(last, "machinery_executions_finished_total", workflow="calls-gone", status="FAILED") == 1


def test_two_processes_of_one_host_add_up_in_one_scrape(
    start: Callable[..., tuple[str, Machinery]], tmp_path: Path
) -> None:
    """Processes sharing a metrics directory (as ``serve --processes`` runs them): any one answers for all."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_99999.db").write_bytes(b"stale")  # a file of an earlier run is cleaned away
    shared = {metrics.MULTIPROCESS_ENV: str(directory)}
    script = f"from machinery.telemetry import metrics; metrics.prepare_multiprocess({str(directory)!r})"
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPOSITORY, env={**os.environ, **shared})
    assert not (directory / "counter_99999.db").exists()

    first, _ = start(["serve", "--database-url", f"sqlite:///{tmp_path / 'a.sqlite'}"], shared)
    second, second_process = start(["serve", "--database-url", f"sqlite:///{tmp_path / 'b.sqlite'}"], shared)
    with _services() as urls:
        run_example(first, urls)
        for _ in range(2):
            run_example(second, urls)
    for server in (first, second):
        samples = scrape(server)
        finished = (
            "machinery_executions_finished_total",
            {"workflow": "process-text", "status": "SUCCEEDED"},
        )
        assert value(samples, finished[0], **finished[1]) == 3, server
        upper = {"service": "upper", "outcome": "succeeded"}
        assert value(samples, "machinery_task_call_duration_seconds_count", **upper) == 3, server

    # A process that ends leaves its counts in the sums (counters never go down); its live gauges go.
    pid = second_process.process.pid
    second_process.stop()
    assert list(directory.glob(f"gauge_livesum_{pid}.db"))
    subprocess.run(
        [sys.executable, "-c", f"from machinery.telemetry import metrics; metrics.process_exited({pid})"],
        check=True,
        cwd=REPOSITORY,
        env={**os.environ, **shared},
    )
    assert not list(directory.glob(f"gauge_livesum_{pid}.db"))
    samples = scrape(first)
    assert (
        value(samples, "machinery_executions_finished_total", workflow="process-text", status="SUCCEEDED")
        == 3
    )


def test_a_standalone_worker_serves_the_metrics_of_what_it_ran(
    start: Callable[..., tuple[str, Machinery]], tmp_path: Path
) -> None:
    """An API without a worker and a ``machinery worker --metrics-port`` on one database."""
    database = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    api, _ = start(["serve", "--no-worker", "--database-url", database], {})
    worker, _ = start(["worker", "--database-url", database], {}, health="/metrics")
    with _services() as urls:
        assert run_example(api, urls)["space_count"] == 7
    at_worker = scrape(worker)
    assert (
        value(at_worker, "machinery_executions_finished_total", workflow="process-text", status="SUCCEEDED")
        == 1
    )
    labels = {"service": "space-counter", "outcome": "succeeded"}
    assert value(at_worker, "machinery_task_call_duration_seconds_count", **labels) == 1
    # The database's gauges come from the API; the worker's port has only what the worker did.
    assert ("machinery_storage_gauges_up", ()) not in at_worker
    at_api = scrape(api)
    assert value(at_api, "machinery_executions_started_total", workflow="process-text") == 1
    assert (
        value(at_api, "machinery_executions_finished_total", workflow="process-text", status="SUCCEEDED") == 0
    )
    assert value(at_api, "machinery_storage_gauges_up") == 1
