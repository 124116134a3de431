"""The error hierarchy shared by every layer.

Request-level problems derive from :class:`MachineryError`; each subclass carries the data a client
needs (which field, which id), an HTTP status and a problem type (RFC 9457): a ``code`` (the ``error``
member clients have always read), a ``title`` and a page that explains it (``/problems/<code>``). They
are turned into ``application/problem+json`` responses in one place (:mod:`machinery.api.errors`).
A new subclass with its own ``code`` and ``title`` is listed on the problem pages by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one field of a request body or definition.

    :param field: where the problem is, as a JSON pointer-like path (``/services/1`` or ``inputs.0.type``).
    :param message: what was wrong, in words a user can act on.
    """

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem (RFC 9457 §3.1.1): what ``type`` names, described at ``/problems/<code>``."""

    code: str
    title: str
    status: int
    description: str


#: Every problem type by code, filled as subclasses of :class:`MachineryError` are defined.
PROBLEM_TYPES: dict[str, ProblemType] = {}


class MachineryError(Exception):
    """Root of machinery's own errors. ``status`` is the HTTP status the API answers with."""

    status: int = 500
    code: str = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, message: str, *, issues: list[FieldIssue] | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[FieldIssue] = list(issues or [])
        self.data: dict[str, Any] = data

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A problem type is a class with a code and a title of its own (errors the server never answers
        # with, such as the client's, have no title).
        if "code" in cls.__dict__ and "title" in cls.__dict__:
            _register(cls)

    def to_json(self) -> dict[str, Any]:
        """The members clients read before problem details: ``error``, ``message`` and ``errors``."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.issues:
            body["errors"] = [issue.to_json() for issue in self.issues]
        body.update(self.data)
        return body


def _register(cls: type[MachineryError]) -> None:
    doc = " ".join((cls.__doc__ or cls.title).split())
    PROBLEM_TYPES[cls.code] = ProblemType(cls.code, cls.title, cls.status, doc)


_register(MachineryError)


class BadRequest(MachineryError):
    """The request cannot be read at all: malformed JSON, JSON a peer would refuse (``NaN``, numbers
    beyond a double, lone surrogates), nesting beyond the depth limit, JSON ``null`` where a body is
    needed, or a query argument or callback body that does not fit its schema. ``errors`` names the
    field; a limit's refusal also names the limit and its setting."""

    status = 400
    code = "bad_request"
    title = "Bad request"


class UnsupportedMediaType(MachineryError):
    """The body is not JSON: send it with ``Content-Type: application/json``."""

    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class NotFound(MachineryError):
    """No service, workflow, event or task has that id or name (or that version)."""

    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(MachineryError):
    """The body is readable but invalid (``errors`` has one entry per field) or conflicts with what is
    stored: a name already taken, a service that workflows use, an event that has already ended."""

    status = 409
    code = "conflict"
    title = "Conflict"


class InvalidDefinition(Conflict):
    """A workflow definition that cannot run: Amazon States Language validation (each entry of
    ``errors`` names the state and field), services whose inputs are not provided, or a definition
    beyond the size or state-count limit (the limit and its setting are named)."""

    code = "invalid_definition"
    title = "Invalid workflow definition"


class TaskTimedOut(Conflict):
    """The task of this token is no longer waiting: it succeeded, failed, timed out or was retried, or
    its execution ended (Step Functions calls this ``TaskTimedOut``). A token is spent by its first
    outcome."""

    code = "TaskTimedOut"
    title = "Task no longer waiting"


class InvalidEventData(MachineryError):
    """Event data that does not match the workflow's declared inputs, or invalid event options
    (``callback_url``, ``name``)."""

    status = 422
    code = "invalid_event_data"
    title = "Invalid event data"


class PayloadTooLarge(MachineryError):
    """A body larger than ``MACHINERY_MAX_BODY_BYTES`` (refused before it is read), or event data larger
    than ``MACHINERY_DATA_LIMIT`` as compact UTF-8 JSON (refused before anything is stored). The answer
    names the limit (``limit``, ``limit_value``) and its ``setting``."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class StorageError(MachineryError):
    """A backend failed; wraps the driver's exception. Try again later."""

    status = 503
    code = "storage_error"
    title = "Storage unavailable"


class StorageFull(StorageError):
    """The database's disk (or its size limit) is full: nothing was written; retry when there is room."""

    status = 507
    code = "storage_full"
    title = "Storage full"


class LeaseLost(StorageError):
    """A worker tried to commit work whose lease another worker now holds (fencing)."""

    code = "lease_lost"
    title = "Lease lost"


class Unauthorized(MachineryError):
    """No credential where one is needed, or one that is not valid (401).

    ``aws_type`` is the error name the AWS Step Functions protocol answers with.
    """

    status = 401
    code = "unauthorized"
    title = "Unauthorized"
    aws_type = "UnrecognizedClientException"


class InvalidSignature(Unauthorized):
    """An AWS Signature Version 4 that does not match the request, or has expired."""

    code = "invalid_signature"
    title = "Invalid signature"
    aws_type = "InvalidSignatureException"


class Forbidden(MachineryError):
    """A valid credential whose scope does not cover the request (403)."""

    status = 403
    code = "forbidden"
    title = "Forbidden"
    aws_type = "AccessDeniedException"


class CsrfRejected(Forbidden):
    """A state-changing request authenticated by a session cookie without its CSRF token."""

    code = "csrf_rejected"
    title = "CSRF token missing"
