"""W3C trace context (``traceparent``) for executions, with or without OpenTelemetry installed.

An execution belongs to one trace: the trace of the ``traceparent`` its ``POST /e`` carried, or else a
trace whose id is derived from the execution id (so that every process, on any host, at any time,
names the same trace without storing it). Span ids are derived the same way, from what names the thing
they stand for: the execution, a visit of a state (branch, state, entry time), a task call (its
idempotency key). A task call therefore sends the same ``traceparent`` when a crashed attempt is
repeated, and the spans :mod:`machinery.telemetry.tracing` records carry the ids the services saw.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HEADER = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class TraceParent:
    """A span as W3C trace context names it: trace id, span id (lowercase hex), sampled flag."""

    trace_id: str
    span_id: str
    sampled: bool = True

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self, span_id: str) -> TraceParent:  # pylint: disable=redefined-outer-name
        return TraceParent(self.trace_id, span_id, self.sampled)


def parse(header: str | None) -> TraceParent | None:
    """A ``traceparent`` header's value, or None when it is missing or invalid (W3C: then ignore it)."""
    if not header or len(header) > 512:
        return None
    match = _HEADER.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()  # pylint: disable=redefined-outer-name
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & 1))


def span_id(*parts: str) -> str:
    """A span id derived from what names the span (never all zeros in practice)."""
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:16]


def derived_trace_id(execution_id: str) -> str:
    """The trace id of an execution that was not started inside a trace."""
    return hashlib.sha256(execution_id.encode()).hexdigest()[:32]


def execution_trace(execution_id: str, continued: str | None) -> tuple[TraceParent, TraceParent | None]:
    """The execution span (trace and span id) and its parent, from the ``traceparent`` it continues.

    ``continued`` is the root branch's ``trace_parent``: the incoming header of ``POST /e``, or, for a
    child execution of a distributed Map, the Map state's span.
    """
    parent = parse(continued)
    trace_id = parent.trace_id if parent is not None else derived_trace_id(execution_id)
    sampled = parent.sampled if parent is not None else True
    return TraceParent(trace_id, span_id("execution", execution_id), sampled), parent


def state_span_id(execution_id: str, branch_id: str, state: str, entered_time: str) -> str:
    """The span of one visit of a state: a loop that enters it again makes another span."""
    return span_id("state", execution_id, branch_id, state, entered_time)
