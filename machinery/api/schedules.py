"""``/schedules``: workflows started on a cron expression or a rate."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.spec import Body, Reply, operation
from machinery.control import schedules
from machinery.runtime.schedules import Schedule

blueprint = Blueprint("schedules", __name__, url_prefix="/schedules")

_NAME = {"name": "the schedule's name"}
#: The record schedule_json renders (its fields: docs/triggers.md).
_SCHEDULE = {
    **schedules.SCHEDULE_RECORD,
    "description": "a schedule: its definition, state and next run times",
}
_LIST = {
    "type": "object",
    "required": ["schedules"],
    "properties": {"schedules": {"type": "array", "items": _SCHEDULE}},
}
_QUERY = {"workflow": {"type": "string", "description": "only this workflow's schedules (id or name)"}}


def _answer(schedule: Schedule) -> Response:
    orchestrator = orchestrator_of(current_app)
    if orchestrator.worker is not None:
        orchestrator.worker.wake()  # the cursor may be due before the worker next looks
    return jsonify(schedules.schedule_json(orchestrator.storage, schedule, time.time()))


@blueprint.post("")
@operation(
    "Create a schedule",
    tag="schedules",
    body=Body(schedules.SCHEDULE_BODY, "the schedule", invalid=None),  # control checks it, and more
    replies=(Reply(201, "the schedule", _SCHEDULE, headers={"Location": "the schedule's URL"}),),
    problems=(409, 422),
)
def create_schedule(body: Any) -> tuple[Response, int]:
    """Create a schedule and arm its cursor."""
    orchestrator = orchestrator_of(current_app)
    schedule = schedules.create_schedule(
        orchestrator.storage, body, time.time(), orchestrator.settings.outbound
    )
    response = _answer(schedule)
    response.headers["Location"] = f"/schedules/{schedule.name}"
    return response, 201


@blueprint.get("")
@operation("List schedules", tag="schedules", query=_QUERY, replies=(Reply(200, "every schedule", _LIST),))
def list_schedules(query: dict[str, Any]) -> Response:
    storage = orchestrator_of(current_app).storage
    now = time.time()
    found = schedules.list_schedules(storage, query["workflow"])
    return jsonify({"schedules": [schedules.schedule_json(storage, s, now) for s in found]})


@blueprint.get("/<name>")
@operation("Read a schedule", tag="schedules", path=_NAME, replies=(Reply(200, "the schedule", _SCHEDULE),))
def get_schedule(name: str) -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify(schedules.schedule_json(storage, schedules.find_schedule(storage, name), time.time()))


@blueprint.patch("/<name>")
@operation(
    "Change a schedule",
    tag="schedules",
    path=_NAME,
    body=Body(schedules.SCHEDULE_UPDATE, "the fields to change", invalid=None),
    replies=(Reply(200, "the schedule", _SCHEDULE),),
    problems=(409, 422),
)
def update_schedule(name: str, body: Any) -> Response:
    orchestrator = orchestrator_of(current_app)
    return _answer(
        schedules.update_schedule(
            orchestrator.storage, name, body, time.time(), orchestrator.settings.outbound
        )
    )


@blueprint.post("/<name>/pause")
@operation("Pause a schedule", tag="schedules", path=_NAME, replies=(Reply(200, "the schedule", _SCHEDULE),))
def pause_schedule(name: str) -> Response:
    return _answer(schedules.pause_schedule(orchestrator_of(current_app).storage, name, time.time()))


@blueprint.post("/<name>/resume")
@operation("Resume a schedule", tag="schedules", path=_NAME, replies=(Reply(200, "the schedule", _SCHEDULE),))
def resume_schedule(name: str) -> Response:
    return _answer(schedules.resume_schedule(orchestrator_of(current_app).storage, name, time.time()))


@blueprint.delete("/<name>")
@operation("Delete a schedule", tag="schedules", path=_NAME, replies=(Reply(204, "deleted"),))
def delete_schedule(name: str) -> Response:
    schedules.delete_schedule(orchestrator_of(current_app).storage, name)
    return Response(status=204)
