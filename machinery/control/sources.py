"""Event sources as a resource: create, list, read, update, pause, resume, delete; their state and the
messages they rejected.

A source is stored as ``source/<name>``; the worker processes pick it up within
``MACHINERY_SOURCE_REFRESH_SECONDS`` (or at once in this process). Its state is what those processes
report (``source-status/<id>/<owner>``), added up here: connected when any process is, the broker's
lag, and the counters of every process.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from machinery.control.triggers import callback_url_issue, check_schema, durable_workflow, masked_url
from machinery.errors import BadRequest, Conflict, FieldIssue, NotFound
from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.publish import broker_refusal
from machinery.runtime.schedules import iso
from machinery.runtime.sources import (
    BROKERS,
    OPTION_DEFAULTS,
    REJECTION_KIND,
    SOURCE_KIND,
    STATUS_KIND,
    Source,
    missing_library,
)
from machinery.storage.base import Storage, new_id

#: A source's name leaves room for the message's id in its executions' names.
MAX_SOURCE_NAME = 40
#: A process's status older than this is shown as gone (its process stopped or died).
STALE_STATUS_SECONDS = 15.0

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_.@-]{1,40}$"}
_BROKER_NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^\s\x00-\x1f]+$"}
_OPTIONS: dict[str, Any] = {
    "queue": _BROKER_NAME,
    "prefetch": {"type": "integer", "minimum": 1, "maximum": 10000},
    "declare": {"type": "boolean"},
    "stream": _BROKER_NAME,
    "subject": _BROKER_NAME,
    "durable": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}$"},
    "ack_wait_seconds": {"type": "number", "minimum": 1, "maximum": 86400},
    "group": _BROKER_NAME,
    "field": _BROKER_NAME,
    "batch": {"type": "integer", "minimum": 1, "maximum": 1000},
    "start": {"type": "string", "enum": ["earliest", "latest"]},
    "claim_idle_seconds": {"type": "number", "minimum": 0.1, "maximum": 86400},
    "dead_letter_stream": _BROKER_NAME,
}
_COMMON: dict[str, Any] = {
    "workflow": {"type": "string", "minLength": 1, "maxLength": 200},
    "url": {"type": "string", "minLength": 1, "maxLength": 2048},
    "enabled": {"type": "boolean"},
    "callback_url": {"type": ["string", "null"], "maxLength": 2048},
    "description": {"type": "string", "maxLength": 1024},
}
SOURCE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "workflow", "type"],
    "properties": {"name": _NAME, "type": {"type": "string", "enum": sorted(BROKERS)}, **_COMMON, **_OPTIONS},
    "additionalProperties": False,
}
SOURCE_UPDATE: dict[str, Any] = {
    "type": "object",
    "properties": {**_COMMON, **_OPTIONS},
    "additionalProperties": False,
}
_REQUIRED = {"rabbitmq": ("queue",), "nats": ("stream",), "redis": ("stream",)}
_URL_SCHEMES = {"rabbitmq": ("amqp", "amqps"), "nats": ("nats", "tls"), "redis": ("redis", "rediss")}


def find_source(storage: Storage, name: str) -> Source:
    body = storage.get_resource(SOURCE_KIND, name)
    if body is None:
        raise NotFound(f"no source '{name}'", source=name)
    return Source.from_json(body)


def list_sources(storage: Storage) -> list[Source]:
    return [Source.from_json(body) for _key, body in storage.list_resources(SOURCE_KIND)]


def create_source(storage: Storage, body: Any, now: float, policy: OutboundPolicy | None = None) -> Source:
    """Validate and store a new source.

    :raises BadRequest: the body breaks the schema, or gives options of another type.
    :raises Conflict: the name is taken, the workflow does not exist or is express, or the broker's
        library is not installed here (the message names the extra to install).
    """
    check_schema(SOURCE_BODY, body)
    kind = body["type"]
    options = {key: body[key] for key in _OPTIONS if key in body}
    source = Source(
        source_id=new_id(),
        name=body["name"],
        workflow=body["workflow"],
        type=kind,
        url=body.get("url") or BROKERS[kind].default_url,
        options=options,
        enabled=body.get("enabled", True),
        revision=1,
        created_at=now,
        updated_at=now,
        callback_url=body.get("callback_url"),
        description=body.get("description", ""),
    )
    _check(storage, source, policy)
    if not storage.insert_resource(SOURCE_KIND, source.name, source.to_json()):
        raise Conflict(f"a source named '{source.name}' exists", issues=[FieldIssue("name", "is taken")])
    return source


def update_source(
    storage: Storage, name: str, body: Any, now: float, policy: OutboundPolicy | None = None
) -> Source:
    """Change some fields; consumers restart on the new revision."""
    check_schema(SOURCE_UPDATE, body)
    current = find_source(storage, name)
    options = {**current.options, **{key: body[key] for key in _OPTIONS if key in body}}
    fields = {key: body[key] for key in _COMMON if key in body}
    source = replace(current, **fields, options=options, revision=current.revision + 1, updated_at=now)
    _check(storage, source, policy)
    storage.put_resource(SOURCE_KIND, name, source.to_json())
    return source


def set_enabled(storage: Storage, name: str, enabled: bool, now: float) -> Source:
    """Pause (``False``) or resume a source: its consumers stop or start within a refresh."""
    current = find_source(storage, name)
    if current.enabled == enabled:
        return current
    source = replace(current, enabled=enabled, revision=current.revision + 1, updated_at=now)
    storage.put_resource(SOURCE_KIND, name, source.to_json())
    return source


def delete_source(storage: Storage, name: str) -> None:
    source = find_source(storage, name)
    storage.delete_resource(SOURCE_KIND, name)
    for key, _body in storage.list_resources(REJECTION_KIND, f"{source.source_id}/"):
        storage.delete_resource(REJECTION_KIND, key)


def rejections(storage: Storage, source: Source, limit: int) -> list[dict[str, Any]]:
    """The messages the source rejected, newest first: id, reason, errors, the start of the body."""
    found = [body for _key, body in storage.list_resources(REJECTION_KIND, f"{source.source_id}/")]
    found.sort(key=lambda body: body.get("rejected_at", 0.0), reverse=True)
    return [{**body, "rejected_at": iso(float(body["rejected_at"]))} for body in found[:limit]]


def source_json(
    storage: Storage, source: Source, now: float, stale_after: float = STALE_STATUS_SECONDS
) -> dict[str, Any]:
    """The public record: the definition (the URL's password masked) and the state of its consumers.

    A process that has not reported for ``stale_after`` seconds is shown as gone (not ``alive``): its
    counters still count, its connection and lag do not.
    """
    options = {**OPTION_DEFAULTS[source.type], **source.options}
    if source.type == "nats" and not options.get("durable"):
        options["durable"] = f"machinery-{source.name}"
    processes = []
    for _key, body in storage.list_resources(STATUS_KIND, f"{source.source_id}/"):
        alive = now - float(body.get("updated_at") or 0.0) <= stale_after
        processes.append({**body, "alive": alive, "updated_at": iso(float(body.get("updated_at") or 0.0))})
        if body.get("connected_at"):
            processes[-1]["connected_at"] = iso(float(body["connected_at"]))
    live = [process for process in processes if process["alive"]]
    # The lag is the broker's figure for the whole source: the freshest report has it.
    reported = [(p["updated_at"], p["lag"]) for p in live if p.get("lag") is not None and p["connected"]]
    errors = [process["last_error"] for process in live if process.get("last_error")]
    state = {
        "connected": any(process["connected"] for process in live),
        "consumers": sum(1 for process in live if process["connected"]),
        "lag": max(reported)[1] if reported else None,
        "saturated": any(process.get("saturated") for process in live),
        "last_error": errors[0] if errors else None,
        **{name: sum(int(p.get(name) or 0) for p in processes) for name in _COUNTERS},
    }
    return {
        "name": source.name,
        "source_id": source.source_id,
        "workflow": source.workflow,
        "type": source.type,
        "url": masked_url(source.url),
        **options,
        "enabled": source.enabled,
        "callback_url": source.callback_url,
        "description": source.description,
        "revision": source.revision,
        "created_at": iso(source.created_at),
        "updated_at": iso(source.updated_at),
        "state": state,
        "processes": processes,
    }


_COUNTERS = ("started", "duplicates", "rejected", "retried", "reconnects")


def _check(storage: Storage, source: Source, policy: OutboundPolicy | None) -> None:
    issues = [
        FieldIssue(key, f"is not an option of {source.type} sources")
        for key in source.options
        if key not in OPTION_DEFAULTS[source.type]
    ]
    issues.extend(
        FieldIssue(key, f"is required for {source.type} sources")
        for key in _REQUIRED[source.type]
        if not source.options.get(key)
    )
    scheme = source.url.split("://", 1)[0] if "://" in source.url else ""
    if scheme not in _URL_SCHEMES[source.type]:
        allowed = " or ".join(f"{s}://" for s in _URL_SCHEMES[source.type])
        issues.append(FieldIssue("url", f"must start with {allowed}"))
    url_issue = callback_url_issue(source.callback_url, policy)
    if url_issue is not None:
        issues.append(url_issue)
    refusal = (
        None if policy is None or "url" in {i.field for i in issues} else broker_refusal(source.url, policy)
    )
    if refusal is not None:
        issues.append(FieldIssue("url", refusal))
    if issues:
        raise BadRequest("invalid source", issues=issues)
    durable_workflow(storage, source.workflow, "event sources")
    missing = missing_library(source.type)
    if missing is not None:
        raise Conflict(missing, issues=[FieldIssue("type", missing)], extra=BROKERS[source.type].extra)


_COUNT = {"type": "integer", "minimum": 0}
#: The public record of a source (``source_json``), for the API's description.
SOURCE_RECORD: dict[str, Any] = {
    "type": "object",
    "required": [
        "name",
        "source_id",
        "workflow",
        "type",
        "url",
        "enabled",
        "revision",
        "created_at",
        "updated_at",
        "state",
        "processes",
    ],
    "properties": {
        "name": {"type": "string"},
        "source_id": {"type": "string"},
        "workflow": {"type": "string"},
        "type": {"type": "string", "enum": sorted(BROKERS)},
        "url": {"type": "string", "description": "the broker's URL, its password shown as ***"},
        **{key: {} for key in _OPTIONS},
        "enabled": {"type": "boolean"},
        "callback_url": {"type": ["string", "null"]},
        "description": {"type": "string"},
        "revision": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "state": {
            "type": "object",
            "required": ["connected", "consumers", "lag", "saturated", "last_error", *_COUNTERS],
            "properties": {
                "connected": {"type": "boolean"},
                "consumers": _COUNT,
                "lag": {"type": ["integer", "null"]},
                "saturated": {"type": "boolean"},
                "last_error": {"type": ["string", "null"]},
                **dict.fromkeys(_COUNTERS, _COUNT),
            },
            "additionalProperties": False,
        },
        "processes": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": False,
}
#: A rejected message as ``GET /sources/<name>/rejections`` lists it.
REJECTION_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["message_id", "reason", "errors", "body", "bytes", "rejected_at"],
    "properties": {
        "message_id": {"type": "string"},
        "reason": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "body": {"type": "string", "description": "the first 512 bytes of the body, as text"},
        "bytes": _COUNT,
        "rejected_at": {"type": "string", "format": "date-time"},
        "owner": {"type": "string"},
    },
}
