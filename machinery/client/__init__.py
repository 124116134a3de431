"""``machinery.client``: the Python client of machinery's HTTP API (``docs/client.md``).

>>> from machinery.client import Client
>>> client = Client("http://127.0.0.1:5000", token=None)
>>> client.start_event("process-text", {"message": "The Sun will rise in the morning !"}).output
"""

from __future__ import annotations

from machinery.client.client import DEFAULT_URL, Client
from machinery.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ClientError,
    ConflictError,
    InvalidEventDataError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ProtocolError,
    ServerError,
    ServerUnreachable,
    TooLargeError,
    UnsupportedMediaTypeError,
)
from machinery.client.models import (
    DeclaredField,
    Event,
    EventPage,
    HistoryEvent,
    HistoryPage,
    Schedule,
    Service,
    Source,
    Workflow,
)
from machinery.status import ExecutionStatus

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientError",
    "ConflictError",
    "DeclaredField",
    "Event",
    "EventPage",
    "ExecutionStatus",
    "HistoryEvent",
    "HistoryPage",
    "InvalidEventDataError",
    "NotFoundError",
    "PermissionDeniedError",
    "Problem",
    "ProtocolError",
    "Schedule",
    "ServerError",
    "ServerUnreachable",
    "Service",
    "Source",
    "TooLargeError",
    "UnsupportedMediaTypeError",
    "Workflow",
]
