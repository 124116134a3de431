"""Prometheus metrics (prometheus_client), correct when several processes serve one port.

Two kinds of numbers, kept apart (docs/observability.md):

- **what a process did** (executions started and finished, task calls, retries, commits, webhooks,
  lease takeovers): counters and histograms recorded where it happens. In one process they live in
  prometheus_client's default registry. When ``machinery serve --processes N`` runs several processes
  behind one port, the supervisor calls :func:`prepare_multiprocess` before any of them imports this
  module: every process then writes its values to memory-mapped files in one directory and a scrape,
  whichever process answers it, sums them all (prometheus_client's multiprocess mode);
- **what the database holds** (work items due, scheduled and claimed; executions running): read from
  storage when ``/metrics`` is scraped (:class:`StorageGauges`), so they are the truth for every process
  and every host sharing the database, and no process has to keep them up to date.

Label values that users choose (workflow, service and event-source names) go through a
:class:`BoundedLabel`: the first ``MACHINERY_METRICS_MAX_LABEL_VALUES`` distinct names a process sees
keep their own series, later ones are counted under ``_other``, so a deployment with a million
workflows cannot grow the scrape without bound.
"""

from __future__ import annotations

import glob
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

#: prometheus_client's switch for its multiprocess mode (read when the library is first imported).
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The label value of every name past the limit of a :class:`BoundedLabel`.
OTHER = "_other"
DEFAULT_MAX_LABEL_VALUES = 200
CONTENT_TYPE = CONTENT_TYPE_LATEST


class BoundedLabel:
    """Maps user-chosen names to label values, at most ``limit`` distinct ones (then :data:`OTHER`)."""

    def __init__(self, limit: int = DEFAULT_MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(name)
        return name


workflow_label = BoundedLabel()
service_label = BoundedLabel()
source_label = BoundedLabel()


def configure(max_label_values: int) -> None:
    """Apply ``MACHINERY_METRICS_MAX_LABEL_VALUES`` (names already given a series keep it)."""
    for label in (workflow_label, service_label, source_label):
        label.limit = max(1, max_label_values)


# The metrics ------------------------------------------------------------------------------------

# The ``_created`` series (when each child was made) double the scrape and are not used by queries.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Seconds; executions run from milliseconds (a chain of Pass states) to days (Wait states).
EXECUTION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    21600,
    86400,
)
TASK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

EXECUTIONS_STARTED = Counter(
    "machinery_executions_started", "Executions started (events accepted, child executions)", ["workflow"]
)
EXECUTIONS_FINISHED = Counter(
    "machinery_executions_finished", "Executions that reached a final status", ["workflow", "status"]
)
EXECUTION_DURATION = Histogram(
    "machinery_execution_duration_seconds",
    "From an execution's start to its final status",
    ["workflow", "status"],
    buckets=EXECUTION_BUCKETS,
)
TASK_CALL_DURATION = Histogram(
    "machinery_task_call_duration_seconds",
    "Task calls (the HTTP round trip to a service, a URL or a Lambda function), by outcome",
    ["service", "outcome"],
    buckets=TASK_BUCKETS,
)
RETRIES = Counter("machinery_retries", "Retry back-offs scheduled by a state's Retry", ["workflow"])
LEASE_TAKEOVERS = Counter(
    "machinery_lease_takeovers",
    "Work items claimed that an earlier owner had claimed and not finished (it stopped, died or stalled)",
)
LEASES_LOST = Counter(
    "machinery_leases_lost", "Commits refused because another worker had taken the work item over"
)
STORAGE_COMMIT_DURATION = Histogram(
    "machinery_storage_commit_seconds",
    "Storage transactions of the worker and the API, by operation",
    ["operation"],
    buckets=COMMIT_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "machinery_webhook_deliveries", "Webhook delivery attempts, by outcome", ["outcome"]
)
EVENT_SOURCE_MESSAGES = Counter(
    "machinery_event_source_messages",
    "Messages from schedules and broker event sources, by source and outcome",
    ["source", "outcome"],
)
WORK_IN_FLIGHT = Gauge(
    "machinery_worker_in_flight",
    "Work items this host's workers are running now",
    multiprocess_mode="livesum",
)

# Task outcomes: a fixed set (a service's own error names are user data, so they count as "error").
SUCCEEDED = "succeeded"
TASK_OUTCOMES = (
    "succeeded", "timeout", "connection", "http_3xx", "http_4xx", "http_5xx", "refused", "too_large", "error",
)  # fmt: skip
_STATUS_PREFIX = "States.Http.StatusCode."
_OUTCOME_OF_ERROR = {
    "States.Timeout": "timeout",
    "States.Http.Socket": "connection",
    "States.Permissions": "refused",
    "States.DataLimitExceeded": "too_large",
}
WEBHOOK_OUTCOMES = ("delivered", "retried", "failed")


def task_outcome(error: str | None) -> str:
    """The ``outcome`` label of a task call that ended with ``error`` (None: it succeeded)."""
    if error is None:
        return SUCCEEDED
    known = _OUTCOME_OF_ERROR.get(error)
    if known is not None:
        return known
    if error.startswith(_STATUS_PREFIX):
        digit = error[len(_STATUS_PREFIX) : len(_STATUS_PREFIX) + 1]
        if digit in ("3", "4", "5"):
            return f"http_{digit}xx"
    return "error"


# Recording (cheap: one dict lookup for the child, then prometheus_client's own increment) --------


class _Children:
    """The labelled children of one metric, looked up once per label values (``labels()`` is slower)."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


_started = _Children(EXECUTIONS_STARTED)
_finished = _Children(EXECUTIONS_FINISHED)
_duration = _Children(EXECUTION_DURATION)
_task = _Children(TASK_CALL_DURATION)
_retries = _Children(RETRIES)
_commit = _Children(STORAGE_COMMIT_DURATION)
_webhooks = _Children(WEBHOOK_DELIVERIES)
_sources = _Children(EVENT_SOURCE_MESSAGES)


def execution_started(workflow: str, count: int = 1) -> None:
    _started(workflow_label(workflow)).inc(count)


def execution_finished(workflow: str, status: str, seconds: float) -> None:
    label = workflow_label(workflow)
    _finished(label, status).inc()
    _duration(label, status).observe(max(0.0, seconds))


def task_called(service: str, error: str | None, seconds: float) -> None:
    _task(service_label(service), task_outcome(error)).observe(seconds)


def retry_scheduled(workflow: str) -> None:
    _retries(workflow_label(workflow)).inc()


def leases_taken_over(count: int) -> None:
    LEASE_TAKEOVERS.inc(count)


def lease_lost() -> None:
    LEASES_LOST.inc()


def storage_committed(operation: str, seconds: float) -> None:
    """``operation``: ``transition``, ``create_execution``, ``claim`` (a fixed set, named by callers)."""
    _commit(operation).observe(seconds)


def webhook_attempted(outcome: str) -> None:
    """``outcome``: one of :data:`WEBHOOK_OUTCOMES`."""
    _webhooks(outcome).inc()


def event_source_message(source: str, outcome: str) -> None:
    """Count one message of a schedule or broker event source (for the triggers).

    :param source: the event source's name (user-chosen: bounded like workflow names).
    :param outcome: a fixed word: ``started`` (it started an execution) or ``rejected`` (it did not:
        invalid data, unknown workflow ...); callers add others only from a fixed set.
    """
    _sources(source_label(source), outcome).inc()


def set_in_flight(count: int) -> None:
    WORK_IN_FLIGHT.set(count)


# What the database holds, read at scrape time -----------------------------------------------------


@dataclass(frozen=True)
class StorageSnapshot:
    """Counts read from storage for one scrape."""

    #: ``due`` (ready, waiting for a worker), ``scheduled`` (timers due later), ``claimed`` (leased).
    work: Mapping[str, int]
    #: Running executions by workflow name.
    running: Mapping[str, int] = field(default_factory=dict)


class StorageGauges(Collector):
    """Gauges of work items and running executions, read from storage on each collection."""

    def __init__(self, read: Callable[[], StorageSnapshot]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        try:
            snapshot = self._read()
        except Exception:  # pylint: disable=broad-exception-caught
            # A scrape must still answer (with the process's own metrics) when the database is away.
            logger.warning("reading storage gauges failed", exc_info=True)
            failed = GaugeMetricFamily("machinery_storage_gauges_up", "Whether storage could be read")
            failed.add_metric([], 0)
            return [failed]
        up = GaugeMetricFamily("machinery_storage_gauges_up", "Whether storage could be read")
        up.add_metric([], 1)
        work = GaugeMetricFamily("machinery_work_items", "Work items in storage, by state", labels=["state"])
        for state, count in snapshot.work.items():
            work.add_metric([state], count)
        running = GaugeMetricFamily(
            "machinery_executions_running", "Executions running now, by workflow", labels=["workflow"]
        )
        for workflow, count in _bounded_counts(snapshot.running, workflow_label.limit):
            running.add_metric([workflow], count)
        return [up, work, running]


def _bounded_counts(counts: Mapping[str, int], limit: int) -> Iterator[tuple[str, int]]:
    """The ``limit`` largest counts by name, the rest summed under :data:`OTHER`."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    yield from ordered[:limit]
    rest = sum(count for _name, count in ordered[limit:])
    if rest:
        yield OTHER, rest


# Exposition ---------------------------------------------------------------------------------------


def multiprocess_mode() -> bool:
    """Whether this process records into the shared directory (see :func:`prepare_multiprocess`)."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def process_registry() -> CollectorRegistry:
    """The registry with this host's process metrics: every process's files in multiprocess mode."""
    if not multiprocess_mode():
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(storage_gauges: StorageGauges | None = None) -> bytes:
    """The text exposition of a scrape: this host's process metrics, then the storage gauges."""
    text = generate_latest(process_registry())
    if storage_gauges is not None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(storage_gauges)
        text += generate_latest(registry)
    return text


def serve_metrics(host: str, port: int) -> Any:
    """Serve ``/metrics`` from a thread of a standalone ``machinery worker`` (``--metrics-port``).

    :returns: the HTTP server (``shutdown()`` stops it).
    """
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=process_registry())
    return server


def prepare_multiprocess(directory: str | None = None) -> str:
    """Make this process and the processes it starts record into one directory; returns it.

    For the supervisor of ``machinery serve --processes N``: call it before this module (or anything
    that imports it: the app, the worker) is imported, here and in the children; the children inherit
    the environment variable. Files left by an earlier run of the same directory are removed, so that
    counters start from zero with the server. Without ``directory`` a new temporary one is made.

    :raises RuntimeError: prometheus_client was imported already, in single-process mode.
    """
    values = sys.modules.get("prometheus_client.values")
    if values is not None and not getattr(values.ValueClass, "_multiprocess", False):
        raise RuntimeError("prepare_multiprocess() must run before prometheus_client is imported")
    if directory is None:
        directory = tempfile.mkdtemp(prefix="machinery-metrics-")
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)
    os.environ[MULTIPROCESS_ENV] = directory
    return directory


def process_exited(pid: int) -> None:
    """Tell the shared directory that a child process ended (its live gauges stop counting).

    The supervisor calls it for every child that exits; counters and histograms of the dead process
    stay in the sums, as they must (a restart does not make counters go down).
    """
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


__all__ = [
    "CONTENT_TYPE",
    "OTHER",
    "BoundedLabel",
    "StorageGauges",
    "StorageSnapshot",
    "configure",
    "event_source_message",
    "execution_finished",
    "execution_started",
    "prepare_multiprocess",
    "process_exited",
    "render",
    "serve_metrics",
    "task_called",
]
