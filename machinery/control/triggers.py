"""What schedules and event sources check alike: their bodies, their workflow, their input, URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from machinery.control.schemas import check_body
from machinery.control.targets import callback_issue
from machinery.errors import BadRequest, Conflict, FieldIssue, InvalidEventData
from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.starts import check_event_data
from machinery.storage.base import Storage, WorkflowRecord

#: URL schemes a trigger's ``callback_url`` may have: a webhook, or a broker to publish the record to.
CALLBACK_SCHEMES = ("http", "https", "amqp", "amqps", "nats", "tls", "redis", "rediss")


def check_schema(schema: dict[str, Any], body: Any) -> None:
    """:raises BadRequest: with one issue per field that breaks ``schema`` (the API's one validator)."""
    issues = check_body(schema, body)
    if issues:
        raise BadRequest("the body does not match the schema", issues=issues)


def durable_workflow(storage: Storage, ref: str, what: str) -> WorkflowRecord:
    """The workflow a trigger starts.

    :raises Conflict: it does not exist, or is express (triggers start standard workflows only: an
        express execution lives in the memory of the process that runs it, so nothing durable could
        say that a tick or a message was already started).
    """
    workflow = storage.get_workflow(ref)
    if workflow is None:
        raise Conflict(f"no workflow '{ref}'", issues=[FieldIssue("workflow", "names no workflow")])
    if workflow.express:
        raise Conflict(
            f"workflow '{ref}' is express",
            issues=[FieldIssue("workflow", f"is express: {what} start standard (durable) workflows only")],
        )
    return workflow


def input_issues(workflow: WorkflowRecord, data: Any, field: str) -> None:
    """:raises InvalidEventData: ``data`` does not match the workflow's inputs (fields under ``field``)."""
    try:
        check_event_data(workflow, data)
    except InvalidEventData as exc:
        raise InvalidEventData(
            exc.message, issues=[FieldIssue(f"{field}/{i.field}", i.message) for i in exc.issues]
        ) from None


def callback_url_issue(url: str | None, policy: OutboundPolicy | None = None) -> FieldIssue | None:
    """What is wrong with a trigger's ``callback_url`` (None: nothing); a webhook's address must also pass
    the outbound ``policy`` (``MACHINERY_ALLOWED_TARGETS`` / ``MACHINERY_DENIED_TARGETS``)."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return FieldIssue("callback_url", f"is not a URL: {exc}")
    if parts.scheme not in CALLBACK_SCHEMES or not parts.hostname:
        return FieldIssue(
            "callback_url", f"must be a URL with a host and one of the schemes {', '.join(CALLBACK_SCHEMES)}"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return FieldIssue("callback_url", "must not contain white space or control characters")
    return None if policy is None else callback_issue(url, policy)


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (records never show a broker's password)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
