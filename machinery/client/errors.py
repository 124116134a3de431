"""What the client raises: the server's refusals as :class:`ApiError` (one subclass per status family),
carrying the problem details the server answered; failures to reach the server or to read its reply.

All derive from :class:`machinery.errors.MachineryError`, the root of machinery's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from machinery.errors import FieldIssue, MachineryError

#: The members of a problem that :class:`Problem` has attributes for; the rest are its ``extensions``.
_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "error", "message", "errors"})


@dataclass(frozen=True)
class Problem:
    """An error reply of the API: RFC 9457 problem details (``type``, ``title``, ``status``, ``detail``,
    ``instance``) and machinery's own members (``error``: a code, ``message``, ``errors``: one
    :class:`~machinery.errors.FieldIssue` per wrong field). Servers that answer only the latter (or only the
    former) are read too: each side falls back on the other.
    """

    status: int
    title: str
    detail: str
    error: str
    type: str = "about:blank"
    instance: str | None = None
    issues: tuple[FieldIssue, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, status: int, reason: str, body: Any) -> Problem:
        """Read the problem from a reply's decoded JSON body (anything else: from its status line)."""
        if not isinstance(body, dict):
            text = body.strip()[:500] if isinstance(body, str) else ""
            return cls(status=status, title=reason, detail=text or reason, error=_code(reason))
        issues = tuple(
            FieldIssue(str(item.get("field", "")), str(item.get("message", "")))
            for item in body.get("errors") or ()
            if isinstance(item, dict)
        )
        title = str(body.get("title") or body.get("error") or reason)
        detail = str(body.get("detail") or body.get("message") or title)
        return cls(
            status=int(body["status"]) if isinstance(body.get("status"), int) else status,
            title=title,
            detail=detail,
            error=str(body.get("error") or _code(title)),
            type=str(body.get("type") or "about:blank"),
            instance=body.get("instance"),
            issues=issues,
            extensions={key: value for key, value in body.items() if key not in _PROBLEM_MEMBERS},
        )


def _code(title: str) -> str:
    return title.strip().lower().replace(" ", "_") or "error"


class ClientError(MachineryError):
    """Root of the client's errors."""

    code = "client_error"


class ServerUnreachable(ClientError):
    """No answer: the connection failed or timed out."""

    code = "server_unreachable"


class ProtocolError(ClientError):
    """The server answered something the API does not promise (a body that is not the expected JSON)."""

    code = "protocol_error"


class ApiError(ClientError):
    """The server refused the request; ``problem`` holds what it said.

    ``status`` is the HTTP status, ``code`` the problem's ``error`` member, ``issues`` its field issues.
    """

    def __init__(self, problem: Problem, method: str, url: str) -> None:
        super().__init__(problem.detail, issues=list(problem.issues))
        self.problem = problem
        self.status = problem.status
        self.code = problem.error
        self.method = method
        self.url = url

    def __str__(self) -> str:
        lines = [f"{self.status} {self.problem.title}: {self.problem.detail}"]
        lines += [f"  {issue.field}: {issue.message}" for issue in self.issues]
        return "\n".join(lines)


class BadRequestError(ApiError):
    """400: the request cannot be read (malformed JSON, a bad query argument)."""


class AuthenticationError(ApiError):
    """401: no valid API token."""


class PermissionDeniedError(ApiError):
    """403: the token lacks the scope this request needs."""


class NotFoundError(ApiError):
    """404: no such service, workflow, event or task token."""


class ConflictError(ApiError):
    """409: an invalid definition, or a conflict with what is stored (stopping a finished event...)."""


class UnsupportedMediaTypeError(ApiError):
    """415: the body is not JSON."""


class InvalidEventDataError(ApiError):
    """422: event data that does not match the workflow's declared inputs."""


class TooLargeError(ApiError):
    """413: the body is over the server's size limit."""


class ServerError(ApiError):
    """5xx: the server failed (its log says why)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    415: UnsupportedMediaTypeError,
    422: InvalidEventDataError,
}


def api_error(problem: Problem, method: str, url: str) -> ApiError:
    """The :class:`ApiError` subclass for the problem's status."""
    if problem.status >= 500:
        return ServerError(problem, method, url)
    return _BY_STATUS.get(problem.status, ApiError)(problem, method, url)
