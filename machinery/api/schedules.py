"""``/schedules``: workflows started on a cron expression or a rate."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, request

from machinery.api import orchestrator_of
from machinery.api.bodies import json_body
from machinery.control import schedules
from machinery.runtime.schedules import Schedule

blueprint = Blueprint("schedules", __name__, url_prefix="/schedules")


def _answer(schedule: Schedule) -> Response:
    orchestrator = orchestrator_of(current_app)
    if orchestrator.worker is not None:
        orchestrator.worker.wake()  # the cursor may be due before the worker next looks
    return jsonify(schedules.schedule_json(orchestrator.storage, schedule, time.time()))


@blueprint.post("")
def create_schedule() -> tuple[Response, int]:
    orchestrator = orchestrator_of(current_app)
    schedule = schedules.create_schedule(
        orchestrator.storage, json_body(), time.time(), orchestrator.settings.outbound
    )
    response = _answer(schedule)
    response.headers["Location"] = f"/schedules/{schedule.name}"
    return response, 201


@blueprint.get("")
def list_schedules() -> Response:
    storage = orchestrator_of(current_app).storage
    now = time.time()
    found = schedules.list_schedules(storage, request.args.get("workflow"))
    return jsonify({"schedules": [schedules.schedule_json(storage, s, now) for s in found]})


@blueprint.get("/<name>")
def get_schedule(name: str) -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify(schedules.schedule_json(storage, schedules.find_schedule(storage, name), time.time()))


@blueprint.patch("/<name>")
def update_schedule(name: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    body = json_body()
    return _answer(
        schedules.update_schedule(
            orchestrator.storage, name, body, time.time(), orchestrator.settings.outbound
        )
    )


@blueprint.post("/<name>/pause")
def pause_schedule(name: str) -> Response:
    return _answer(schedules.pause_schedule(orchestrator_of(current_app).storage, name, time.time()))


@blueprint.post("/<name>/resume")
def resume_schedule(name: str) -> Response:
    return _answer(schedules.resume_schedule(orchestrator_of(current_app).storage, name, time.time()))


@blueprint.delete("/<name>")
def delete_schedule(name: str) -> Response:
    schedules.delete_schedule(orchestrator_of(current_app).storage, name)
    return Response(status=204)
