"""``/tasks``: callbacks of ``.waitForTaskToken`` services (success, failure, heartbeat)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.bodies import json_body
from machinery.errors import BadRequest, FieldIssue

blueprint = Blueprint("tasks", __name__, url_prefix="/tasks")


def _token_body() -> dict[str, object]:
    body = json_body()
    if not isinstance(body, dict) or not isinstance(body.get("taskToken"), str):
        raise BadRequest("a task token is required", issues=[FieldIssue("taskToken", "is required (string)")])
    return body


@blueprint.post("/success")
def task_success() -> Response:
    body = _token_body()
    if "output" not in body:
        raise BadRequest("the task's output is required", issues=[FieldIssue("output", "is required")])
    orchestrator_of(current_app).report_task(body["taskToken"], {"output": body["output"]})
    return jsonify({"accepted": True})


@blueprint.post("/failure")
def task_failure() -> Response:
    body = _token_body()
    error = body.get("error", "States.TaskFailed")
    cause = body.get("cause", "")
    if not isinstance(error, str) or not isinstance(cause, str):
        raise BadRequest("error and cause must be strings", issues=[FieldIssue("error", "must be a string")])
    orchestrator_of(current_app).report_task(body["taskToken"], {"error": error, "cause": cause})
    return jsonify({"accepted": True})


@blueprint.post("/heartbeat")
def task_heartbeat() -> Response:
    body = _token_body()
    orchestrator_of(current_app).report_task(body["taskToken"], {"heartbeat": True})
    return jsonify({"accepted": True})
