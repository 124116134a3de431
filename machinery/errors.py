"""The error hierarchy shared by every layer.

Request-level problems derive from :class:`MachineryError`; each subclass carries the data a client
needs (which field, which id) and an HTTP status, mapped to a JSON response in one place
(:mod:`machinery.api.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


class MachineryError(Exception):
    """Root of machinery's own errors. ``status`` is the HTTP status the API answers with."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, issues: list[FieldIssue] | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.issues: list[FieldIssue] = list(issues or [])
        self.data: dict[str, Any] = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.issues:
            body["errors"] = [issue.to_json() for issue in self.issues]
        body.update(self.data)
        return body


class BadRequest(MachineryError):
    """The request cannot be read at all (JSON ``null``, malformed JSON)."""

    status = 400
    code = "bad_request"


class UnsupportedMediaType(MachineryError):
    status = 415
    code = "unsupported_media_type"


class NotFound(MachineryError):
    status = 404
    code = "not_found"


class Conflict(MachineryError):
    """The body is readable but invalid or conflicts with what is stored (the seed answers 409)."""

    status = 409
    code = "conflict"


class InvalidDefinition(Conflict):
    """A workflow definition that cannot run (ASL validation, unknown services, type mismatches)."""

    code = "invalid_definition"


class InvalidEventData(MachineryError):
    """Event data that does not match the workflow's declared inputs."""

    status = 422
    code = "invalid_event_data"


class StorageError(MachineryError):
    """A backend failed; wraps the driver's exception."""

    status = 503
    code = "storage_error"


class StorageFull(StorageError):
    """The database's disk (or its size limit) is full: nothing was written; retry when there is room."""

    status = 507
    code = "storage_full"


class LeaseLost(StorageError):
    """A worker tried to commit work whose lease another worker now holds (fencing)."""

    code = "lease_lost"


class Unauthorized(MachineryError):
    """No credential where one is needed, or one that is not valid (401).

    ``aws_type`` is the error name the AWS Step Functions protocol answers with.
    """

    status = 401
    code = "unauthorized"
    aws_type = "UnrecognizedClientException"


class InvalidSignature(Unauthorized):
    """An AWS Signature Version 4 that does not match the request, or has expired."""

    code = "invalid_signature"
    aws_type = "InvalidSignatureException"


class Forbidden(MachineryError):
    """A valid credential whose scope does not cover the request (403)."""

    status = 403
    code = "forbidden"
    aws_type = "AccessDeniedException"


class CsrfRejected(Forbidden):
    """A state-changing request authenticated by a session cookie without its CSRF token."""

    code = "csrf_rejected"
