"""Log formats: plain text lines, or one JSON object per line (``MACHINERY_LOG_FORMAT=json``).

Modules log as the project's convention says (``logger.info("...", extra={"execution_id": ...})``);
only the CLI calls :func:`configure_logging`. In JSON every record carries ``time``, ``level``,
``logger`` and ``message``, the ``extra`` fields it was given (``execution_id`` where there is one),
``trace_id`` and ``span_id`` when tracing is on and a span is current, and ``exc_info`` with the
traceback of a logged exception.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


class _TraceFields(logging.Filter):
    """Adds the current span's ids to a record (only installed when tracing is on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from machinery.telemetry import tracing

        ids = tracing.current_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True


def json_formatter() -> logging.Formatter:
    """The JSON lines formatter (python-json-logger)."""
    from pythonjsonlogger.json import JsonFormatter

    formatter: logging.Formatter = JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601, UTC, microseconds
        json_ensure_ascii=False,
    )
    return formatter


def configure_logging(level: str, log_format: str = "text", stream: Any = None) -> None:
    """Log to ``stream`` (standard error) at ``level`` in ``log_format`` (``text`` or ``json``).

    :raises ValueError: an unknown format.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (use {' or '.join(LOG_FORMATS)})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    from machinery.telemetry import tracing

    if tracing.enabled():
        handler.addFilter(_TraceFields())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
