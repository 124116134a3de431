"""``/sources``: broker subscriptions (RabbitMQ, NATS JetStream, Redis Streams) that start executions."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.spec import Body, Reply, operation
from machinery.control import sources
from machinery.runtime.sources import Source

blueprint = Blueprint("sources", __name__, url_prefix="/sources")

_NAME = {"name": "the source's name"}
#: The record source_json renders (its fields: docs/triggers.md).
_SOURCE = {
    **sources.SOURCE_RECORD,
    "description": "an event source: its definition (password masked) and state",
}
_LIST = {
    "type": "object",
    "required": ["sources"],
    "properties": {"sources": {"type": "array", "items": _SOURCE}},
}
_REJECTIONS = {
    "type": "object",
    "required": ["source", "rejections"],
    "properties": {
        "source": {"type": "string"},
        "rejections": {"type": "array", "items": sources.REJECTION_RECORD},
    },
}
_REJECTIONS_QUERY = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}}


def _answer(source: Source) -> Response:
    orchestrator = orchestrator_of(current_app)
    if orchestrator.worker is not None:
        orchestrator.worker.refresh_sources()  # this process's consumers follow at once
    return jsonify(_record(source))


def _record(source: Source) -> dict[str, object]:
    stale = 5 * float(current_app.config["SOURCE_REFRESH_SECONDS"]) + 5
    storage = orchestrator_of(current_app).storage
    return sources.source_json(storage, source, time.time(), stale_after=stale)


@blueprint.post("")
@operation(
    "Create an event source",
    tag="sources",
    body=Body(sources.SOURCE_BODY, "the source", invalid=None),  # control checks it, and more
    replies=(Reply(201, "the source", _SOURCE, headers={"Location": "the source's URL"}),),
    problems=(409, 422),
)
def create_source(body: Any) -> tuple[Response, int]:
    """Create an event source."""
    orchestrator = orchestrator_of(current_app)
    source = sources.create_source(orchestrator.storage, body, time.time(), orchestrator.settings.outbound)
    response = _answer(source)
    response.headers["Location"] = f"/sources/{source.name}"
    return response, 201


@blueprint.get("")
@operation("List event sources", tag="sources", replies=(Reply(200, "every source", _LIST),))
def list_sources() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"sources": [_record(source) for source in sources.list_sources(storage)]})


@blueprint.get("/<name>")
@operation("Read an event source", tag="sources", path=_NAME, replies=(Reply(200, "the source", _SOURCE),))
def get_source(name: str) -> Response:
    return jsonify(_record(sources.find_source(orchestrator_of(current_app).storage, name)))


@blueprint.patch("/<name>")
@operation(
    "Change an event source",
    tag="sources",
    path=_NAME,
    body=Body(sources.SOURCE_UPDATE, "the fields to change", invalid=None),
    replies=(Reply(200, "the source", _SOURCE),),
    problems=(409, 422),
)
def update_source(name: str, body: Any) -> Response:
    orchestrator = orchestrator_of(current_app)
    return _answer(
        sources.update_source(orchestrator.storage, name, body, time.time(), orchestrator.settings.outbound)
    )


@blueprint.post("/<name>/pause")
@operation("Pause an event source", tag="sources", path=_NAME, replies=(Reply(200, "the source", _SOURCE),))
def pause_source(name: str) -> Response:
    return _answer(sources.set_enabled(orchestrator_of(current_app).storage, name, False, time.time()))


@blueprint.post("/<name>/resume")
@operation("Resume an event source", tag="sources", path=_NAME, replies=(Reply(200, "the source", _SOURCE),))
def resume_source(name: str) -> Response:
    return _answer(sources.set_enabled(orchestrator_of(current_app).storage, name, True, time.time()))


@blueprint.delete("/<name>")
@operation("Delete an event source", tag="sources", path=_NAME, replies=(Reply(204, "deleted"),))
def delete_source(name: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    sources.delete_source(orchestrator.storage, name)
    if orchestrator.worker is not None:
        orchestrator.worker.refresh_sources()
    return Response(status=204)


@blueprint.get("/<name>/rejections")
@operation(
    "List a source's rejected messages",
    tag="sources",
    path=_NAME,
    query=_REJECTIONS_QUERY,
    replies=(Reply(200, "the rejected messages, newest first", _REJECTIONS),),
)
def list_rejections(name: str, query: dict[str, Any]) -> Response:
    storage = orchestrator_of(current_app).storage
    source = sources.find_source(storage, name)
    return jsonify({"source": name, "rejections": sources.rejections(storage, source, query["limit"])})
