"""``/sources``: broker subscriptions (RabbitMQ, NATS JetStream, Redis Streams) that start executions."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.bodies import int_arg, json_body
from machinery.control import sources
from machinery.runtime.sources import Source

blueprint = Blueprint("sources", __name__, url_prefix="/sources")


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
def create_source() -> tuple[Response, int]:
    orchestrator = orchestrator_of(current_app)
    source = sources.create_source(
        orchestrator.storage, json_body(), time.time(), orchestrator.settings.outbound
    )
    response = _answer(source)
    response.headers["Location"] = f"/sources/{source.name}"
    return response, 201


@blueprint.get("")
def list_sources() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"sources": [_record(source) for source in sources.list_sources(storage)]})


@blueprint.get("/<name>")
def get_source(name: str) -> Response:
    return jsonify(_record(sources.find_source(orchestrator_of(current_app).storage, name)))


@blueprint.patch("/<name>")
def update_source(name: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    body = json_body()
    return _answer(
        sources.update_source(orchestrator.storage, name, body, time.time(), orchestrator.settings.outbound)
    )


@blueprint.post("/<name>/pause")
def pause_source(name: str) -> Response:
    return _answer(sources.set_enabled(orchestrator_of(current_app).storage, name, False, time.time()))


@blueprint.post("/<name>/resume")
def resume_source(name: str) -> Response:
    return _answer(sources.set_enabled(orchestrator_of(current_app).storage, name, True, time.time()))


@blueprint.delete("/<name>")
def delete_source(name: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    sources.delete_source(orchestrator.storage, name)
    if orchestrator.worker is not None:
        orchestrator.worker.refresh_sources()
    return Response(status=204)


@blueprint.get("/<name>/rejections")
def list_rejections(name: str) -> Response:
    storage = orchestrator_of(current_app).storage
    limit = int_arg("limit", 50, minimum=1, maximum=1000) or 50
    source = sources.find_source(storage, name)
    return jsonify({"source": name, "rejections": sources.rejections(storage, source, limit)})
