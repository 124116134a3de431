"""``/tasks``: callbacks of ``.waitForTaskToken`` services (success, failure, heartbeat)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery import shapes
from machinery.api import orchestrator_of
from machinery.api.spec import Body, Reply, operation
from machinery.control import schemas

blueprint = Blueprint("tasks", __name__, url_prefix="/tasks")

_ACCEPTED = (Reply(200, "the outcome is recorded", shapes.TASK_ACCEPTED),)
# 404: the token names no task; 409 (TaskTimedOut): the task is no longer waiting.
_PROBLEMS = (404, 409)


@blueprint.post("/success")
@operation(
    "Report a task's success",
    tag="tasks",
    description="The waiting task succeeds with `output` as its result. Output beyond "
    "`MACHINERY_DATA_LIMIT` bytes is refused (413).",
    body=Body(schemas.TASK_SUCCESS, "the token and the task's output"),
    replies=_ACCEPTED,
    problems=_PROBLEMS,
)
def task_success(body: dict[str, Any]) -> Response:
    """A waiting task succeeds with the output."""
    orchestrator_of(current_app).report_task(body["taskToken"], {"output": body["output"]})
    return jsonify({"accepted": True})


@blueprint.post("/failure")
@operation(
    "Report a task's failure",
    tag="tasks",
    description="The waiting task fails with `error` and `cause`: its Retry and Catch apply.",
    body=Body(schemas.TASK_FAILURE, "the token, the error and its cause"),
    replies=_ACCEPTED,
    problems=_PROBLEMS,
)
def task_failure(body: dict[str, Any]) -> Response:
    """A waiting task fails with the error and cause."""
    outcome = {"error": body.get("error", "States.TaskFailed"), "cause": body.get("cause", "")}
    orchestrator_of(current_app).report_task(body["taskToken"], outcome)
    return jsonify({"accepted": True})


@blueprint.post("/heartbeat")
@operation(
    "Report a task's heartbeat",
    tag="tasks",
    description="Moves the task's heartbeat deadline to now + `HeartbeatSeconds`.",
    body=Body(schemas.TASK_HEARTBEAT, "the token"),
    replies=_ACCEPTED,
    problems=_PROBLEMS,
)
def task_heartbeat(body: dict[str, Any]) -> Response:
    orchestrator_of(current_app).report_task(body["taskToken"], {"heartbeat": True})
    return jsonify({"accepted": True})
