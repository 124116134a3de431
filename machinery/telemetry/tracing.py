"""OpenTelemetry traces, when the ``otel`` extra is installed and the ``OTEL_*`` variables ask for them.

Off by default, and then free: :func:`enabled` is a module flag and nothing of OpenTelemetry is
imported. :func:`configure_from_environment` (called by ``machinery serve`` and ``machinery worker``)
turns tracing on when ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or an OTLP
endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), unless
``OTEL_SDK_DISABLED=true``. The SDK reads the rest itself: ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, the exporter's endpoint, headers and timeouts.

Spans are recorded after the fact, with the times and the ids of :mod:`machinery.telemetry.traceparent`:
a durable execution runs as many work items, in any process, so no span object can stay open from its
start to its end. The tracer provider therefore uses an id generator that hands out the derived ids
:func:`record_span` asks for.
"""

from __future__ import annotations

import contextvars
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

from machinery.telemetry.traceparent import TraceParent

logger = logging.getLogger(__name__)

# The module's state: whether spans are recorded and through what (install() and uninstall() set it).
# pylint: disable=invalid-name,global-statement
_enabled = False
_tracer: Any = None
_provider: Any = None
#: The ids the next span the id generator is asked for gets (set around one ``start_span``).
_next_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "machinery_span_ids", default=None
)

INTERNAL = "internal"
CLIENT = "client"


def enabled() -> bool:
    """Whether spans are recorded (cheap: the hot paths ask it)."""
    return _enabled


def wanted_by_environment(environ: dict[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure_from_environment() -> bool:
    """Turn tracing on when the environment asks for it and the ``otel`` extra is installed.

    :returns: whether tracing is on.
    """
    if _enabled or not wanted_by_environment():
        return _enabled
    try:
        exporters = _exporters_from_environment()
    except ImportError as exc:
        logger.warning("OTEL_* variables ask for traces, but the otel extra is not installed (%s)", exc)
        return False
    except ValueError as exc:
        logger.warning("traces are off: %s", exc)
        return False
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    install([BatchSpanProcessor(exporter) for exporter in exporters])
    return True


def _exporters_from_environment() -> list[Any]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` by default), from their entry points."""
    from importlib.metadata import entry_points

    # pylint: disable-next=unused-import  # the ImportError that says the extra is missing
    import opentelemetry.sdk.trace  # noqa: F401

    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters = []
    for name in names:
        if name == "none":
            continue
        if name == "otlp":
            protocol = os.environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            name = "otlp_proto_grpc" if protocol == "grpc" else "otlp_proto_http"
        found = entry_points(group="opentelemetry_traces_exporter", name=name)
        if not found:
            raise ValueError(f"no span exporter named {name!r} is installed (OTEL_TRACES_EXPORTER)")
        exporters.append(next(iter(found)).load()())
    return exporters


def install(processors: list[Any]) -> None:
    """Record spans through these span processors (the CLI's exporters, or a test's in-memory one)."""
    global _enabled, _tracer, _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(
        resource=Resource.create({"service.name": _service_name()}), id_generator=_ids()
    )
    for processor in processors:
        provider.add_span_processor(processor)
    # machinery's own provider, not the global one: its id generator must be the one that makes its spans.
    _provider = provider
    _tracer = provider.get_tracer("machinery")
    _enabled = True


def uninstall() -> None:
    """Stop recording spans (flushes what is buffered)."""
    global _enabled, _tracer, _provider
    _enabled = False
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def flush(timeout_millis: int = 5000) -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def _service_name() -> str:
    return os.environ.get("OTEL_SERVICE_NAME") or "machinery"


def _ids() -> Any:
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class DerivedIds(IdGenerator):
        """Random ids, except for the span :func:`record_span` is starting (its derived ids)."""

        def generate_span_id(self) -> int:
            wanted = _next_ids.get()
            return wanted[1] if wanted is not None else random.getrandbits(64) or 1

        def generate_trace_id(self) -> int:
            wanted = _next_ids.get()
            return wanted[0] if wanted is not None else random.getrandbits(128) or 1

    return DerivedIds()


@dataclass(frozen=True)
class SpanRecord:
    """A finished span: its name, ids, parent, times (epoch seconds), attributes and error if it failed."""

    name: str
    span: TraceParent
    parent_span_id: str | None
    start: float
    end: float
    attributes: dict[str, Any]
    error: str | None = None
    kind: str = INTERNAL


def record_span(record: SpanRecord) -> None:
    """Export one finished span with the ids it was given (no-op when tracing is off)."""
    tracer = _tracer
    if not _enabled or tracer is None:
        return
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    trace_id = int(record.span.trace_id, 16)
    flags = TraceFlags(TraceFlags.SAMPLED if record.span.sampled else TraceFlags.DEFAULT)
    parent_context = context.Context()
    if record.parent_span_id is not None:
        parent = SpanContext(trace_id, int(record.parent_span_id, 16), is_remote=True, trace_flags=flags)
        parent_context = trace.set_span_in_context(NonRecordingSpan(parent))
    token = _next_ids.set((trace_id, int(record.span.span_id, 16)))
    try:
        span = tracer.start_span(
            record.name,
            context=parent_context,
            kind=SpanKind.CLIENT if record.kind == CLIENT else SpanKind.INTERNAL,
            attributes=record.attributes,
            start_time=int(record.start * 1e9),
        )
    finally:
        _next_ids.reset(token)
    if record.error is not None:
        span.set_status(Status(StatusCode.ERROR, record.error))
    span.end(end_time=int(record.end * 1e9))


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span id (hex), for log lines; None outside spans or when off."""
    if not _enabled:
        return None
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")
