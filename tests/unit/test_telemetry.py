"""The parts of machinery.telemetry that need no server: label bounds, outcomes, trace context, log lines."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.demo import REPOSITORY
from machinery.runtime.tasks import _service_label
from machinery.telemetry import metrics, tracing
from machinery.telemetry.logs import configure_logging
from machinery.telemetry.traceparent import TraceParent, derived_trace_id, execution_trace, parse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_a_bounded_label_keeps_the_first_names_then_counts_the_rest_as_other() -> None:
    label = metrics.BoundedLabel(limit=2)
    assert [label(name) for name in ("a", "b", "c", "a", "d", "b")] == [
        "a",
        "b",
        "_other",
        "a",
        "_other",
        "b",
    ]


def test_bounded_counts_keep_the_largest_and_sum_the_rest() -> None:
    counts = {"a": 1, "b": 5, "c": 3, "d": 2}
    assert list(metrics._bounded_counts(counts, 2)) == [("b", 5), ("c", 3), ("_other", 3)]
    assert list(metrics._bounded_counts(counts, 10)) == [("b", 5), ("c", 3), ("d", 2), ("a", 1)]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "succeeded"),
        ("States.Timeout", "timeout"),
        ("States.Http.Socket", "connection"),
        ("States.Http.StatusCode.503", "http_5xx"),
        ("States.Http.StatusCode.404", "http_4xx"),
        ("States.Http.StatusCode.302", "http_3xx"),
        ("States.Permissions", "refused"),
        ("States.DataLimitExceeded", "too_large"),
        ("CustomerNotFound", "error"),  # a service's own error names are user data: one bounded value
        ("Lambda.ServiceException", "error"),
    ],
)
def test_task_outcomes_are_a_fixed_set(error: str | None, outcome: str) -> None:
    assert metrics.task_outcome(error) == outcome
    assert outcome in metrics.TASK_OUTCOMES


@pytest.mark.parametrize(
    ("resource", "label"),
    [
        ("upper", "upper"),
        ("http://user:secret@svc.local:8080/orders/42?x=1", "url:http://svc.local:8080"),
        ("https://api.example/v1", "url:https://api.example"),
        ("arn:aws:lambda:us-east-1:123456789012:function:resize:live", "lambda:resize"),
        ("arn:aws:states:::http:invoke", "http:invoke"),
        ("arn:aws:states:::lambda:invoke", "lambda:invoke"),
    ],
)
def test_the_service_label_names_the_target_without_ids_or_credentials(resource: str, label: str) -> None:
    assert _service_label(resource) == label


def test_storage_gauges_report_a_failed_read_instead_of_failing_the_scrape() -> None:
    def broken() -> metrics.StorageSnapshot:
        raise RuntimeError("database away")

    text = metrics.render(metrics.StorageGauges(broken)).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["machinery_storage_gauges_up"].samples[0].value == 0
    assert "machinery_executions_started" in families  # the process's own metrics are still there


def test_storage_gauges_bound_the_workflows_of_running_executions() -> None:
    snapshot = metrics.StorageSnapshot(
        work={"due": 4, "scheduled": 2, "claimed": 1}, running={f"wf{i}": i + 1 for i in range(5)}
    )
    limit = metrics.workflow_label.limit
    metrics.workflow_label.limit = 2
    try:
        text = metrics.render(metrics.StorageGauges(lambda: snapshot)).decode()
    finally:
        metrics.workflow_label.limit = limit
    families = {family.name: family for family in text_string_to_metric_families(text)}
    running = {s.labels["workflow"]: s.value for s in families["machinery_executions_running"].samples}
    assert running == {"wf4": 5, "wf3": 4, "_other": 6}
    work = {s.labels["state"]: s.value for s in families["machinery_work_items"].samples}
    assert work == {"due": 4, "scheduled": 2, "claimed": 1}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE}-{SPAN}",  # no flags
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{SPAN}-01",  # the forbidden version
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper case hex
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has nothing after the flags
        f"00-{TRACE}-{SPAN}-01\r\nX-Injected: 1",
    ],
)
def test_invalid_traceparents_are_ignored(header: str | None) -> None:
    assert parse(header) is None


def test_a_valid_traceparent_is_continued_with_its_sampled_flag() -> None:
    assert parse(f"00-{TRACE}-{SPAN}-01") == TraceParent(TRACE, SPAN, True)
    assert parse(f"00-{TRACE}-{SPAN}-00") == TraceParent(TRACE, SPAN, False)
    # A later version may add fields: the first four are read (W3C trace context, section 3.2.4).
    assert parse(f"cc-{TRACE}-{SPAN}-01-more") == TraceParent(TRACE, SPAN, True)


def test_an_execution_continues_the_incoming_trace_or_has_one_derived_from_its_id() -> None:
    span, parent = execution_trace("exec-1", f"00-{TRACE}-{SPAN}-01")
    assert (span.trace_id, parent) == (TRACE, TraceParent(TRACE, SPAN, True))
    own, none = execution_trace("exec-1", None)
    assert none is None
    assert own.trace_id == derived_trace_id("exec-1") != TRACE
    assert own.span_id == span.span_id  # the execution span's id depends on the execution only


def test_tracing_is_wanted_only_when_the_otel_variables_ask() -> None:
    assert not tracing.wanted_by_environment({})
    assert not tracing.wanted_by_environment({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing.wanted_by_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert tracing.wanted_by_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    assert not tracing.wanted_by_environment(disabled)


def test_json_log_lines_carry_the_execution_id() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "json", stream)
        log = logging.getLogger("machinery.test")
        log.info("step of %s", "exec-7", extra={"execution_id": "exec-7"})
        log.debug("not shown")
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("failed", extra={"execution_id": "exec-8"})
        log.warning("no execution here")
    finally:
        root.handlers[:], root.level = saved
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["step of exec-7", "failed", "no execution here"]
    assert [line.get("execution_id") for line in lines] == ["exec-7", "exec-8", None]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "machinery.test" and "time" in lines[0]
    assert "ValueError: bad" in lines[1]["exc_info"]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format"):
        configure_logging("INFO", "xml")


def test_without_otel_variables_nothing_of_opentelemetry_is_imported() -> None:
    """An execution runs, its task calls carry a traceparent, and OpenTelemetry stays out of the process."""
    script = textwrap.dedent(
        """
        import sys, tempfile
        from machinery.api import create_app, orchestrator_of
        from machinery.telemetry import tracing
        tracing.configure_from_environment()
        app = create_app({"DATABASE_URL": "memory://", "START_WORKER": True})
        client = app.test_client()
        assert client.post("/w", json={"name": "p", "definition": {
            "StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}}).status_code == 201
        reply = client.post("/e/p", json={"x": 1})
        assert reply.get_json()["status"] == "SUCCEEDED", reply.get_json()
        assert client.get("/metrics").status_code == 200
        orchestrator_of(app).stop()
        print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
        """
    )
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
