"""``/e``: events (executions): start, read, long-poll, list, history, stop."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request

from machinery.api import orchestrator_of
from machinery.api.bodies import bool_arg, int_arg, json_body, number_arg
from machinery.engine.interpreter import iso_time
from machinery.errors import BadRequest, FieldIssue
from machinery.runtime.webhooks import event_record
from machinery.status import ExecutionStatus
from machinery.storage.base import HISTORY_END

blueprint = Blueprint("events", __name__, url_prefix="/e")


@blueprint.post("/<workflow_ref>")
def create_event(workflow_ref: str) -> tuple[Response, int]:
    """``POST /e/<workflow>``: start an event; 201 when it ends within the wait, else 202."""
    orchestrator = orchestrator_of(current_app)
    body = json_body(allow_null=True)
    wait = number_arg("wait", float(current_app.config["SYNC_WAIT"]), maximum=3600)
    record = orchestrator.start_event(workflow_ref, body, traceparent=request.headers.get("traceparent"))
    if wait > 0:
        record = orchestrator.wait_event(record.execution_id, wait)
    response = jsonify(event_record(record, orchestrator.webhook_status(record)))
    if record.status == ExecutionStatus.RUNNING:
        response.headers["Location"] = f"/e/{record.execution_id}"
        return response, 202
    return response, 201


@blueprint.get("")
def list_events() -> Response:
    """``GET /e``: a page of events, newest first, filtered by workflow, status or parent."""
    orchestrator = orchestrator_of(current_app)
    limit = int_arg("limit", 50, minimum=1, maximum=1000) or 50
    records, cursor = orchestrator.list_events(
        request.args.get("workflow"),
        request.args.get("status"),
        limit,
        request.args.get("cursor"),
        request.args.get("parent"),
    )
    events = [event_record(r, orchestrator.webhook_status(r)) for r in records]
    return jsonify({"events": events, "next_cursor": cursor})


@blueprint.get("/<event_id>")
def get_event(event_id: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    wait = number_arg("wait", 0.0, maximum=3600)
    record = orchestrator.wait_event(event_id, wait) if wait > 0 else orchestrator.get_event(event_id)
    return jsonify(event_record(record, orchestrator.webhook_status(record)))


@blueprint.get("/<event_id>/history")
def get_history(event_id: str) -> Response:
    """``GET /e/<id>/history``: a page of the history, with the cursor of the next."""
    after = int_arg("after", None, minimum=0, maximum=HISTORY_END)
    limit = int_arg("limit", None, minimum=1, maximum=1000)
    reverse = bool_arg("reverse", False)
    events, cursor = orchestrator_of(current_app).history(event_id, after, limit, reverse)
    # Whole histories run to tens of thousands of events, most sharing a few types and, within a step,
    # one timestamp: each is formatted once (the console reads a 10,000-item Map's 40,000 events).
    stamps: dict[float, str] = {}
    rendered: list[dict[str, Any]] = []
    for event in events:
        stamp = stamps.get(event.timestamp)
        if stamp is None:
            stamp = stamps[event.timestamp] = iso_time(event.timestamp)
        rendered.append(
            {
                "id": event.event_id,
                "previousEventId": event.event_id - 1,
                "timestamp": stamp,
                "type": event.type,
                details_key(event.type): event.details,
            }
        )
    body = {"event_id": event_id, "events": rendered, "next_cursor": cursor}
    try:
        return Response(orjson.dumps(body), mimetype="application/json")
    except TypeError:  # orjson refuses what json writes (integers past 64 bits): the slow path then
        return jsonify(body)


@blueprint.post("/<event_id>/stop")
def stop_event(event_id: str) -> Response:
    """``POST /e/<id>/stop``: abort a running event (409 if it has ended)."""
    body: Any = json_body(allow_null=True) if request.get_data() else {}
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be an object", issues=[FieldIssue("(body)", "expected an object")])
    error, cause = body.get("error"), body.get("cause")
    issues = [
        FieldIssue(k, "must be a string")
        for k, v in (("error", error), ("cause", cause))
        if v is not None and not isinstance(v, str)
    ]
    if issues:
        raise BadRequest("invalid stop request", issues=issues)
    orchestrator = orchestrator_of(current_app)
    record = orchestrator.stop_event(event_id, error, cause)
    return jsonify(event_record(record, orchestrator.webhook_status(record)))


@blueprint.post("/<event_id>/redrive")
def redrive_event(event_id: str) -> Response:
    """Rerun a FAILED, TIMED_OUT or ABORTED event from what did not finish; ``{"input": ...}`` (optional)
    replaces the input of the one state that runs again."""
    body: Any = json_body(allow_null=True) if request.get_data() else {}
    if body is None:
        body = {}
    if not isinstance(body, dict) or set(body) - {"input"}:
        extra = sorted(set(body) - {"input"}) if isinstance(body, dict) else []
        raise BadRequest(
            "the body must be an object with at most 'input'",
            issues=[
                FieldIssue(
                    extra[0] if extra else "(body)", "is not a known field" if extra else "expected an object"
                )
            ],
        )
    orchestrator = orchestrator_of(current_app)
    record = (
        orchestrator.redrive_event(event_id, body["input"])
        if "input" in body
        else orchestrator.redrive_event(event_id)
    )
    return jsonify(event_record(record))


@cache
def details_key(event_type: str) -> str:
    """Step Functions names each event's details after its type.

    ``TaskSucceeded`` → ``taskSucceededEventDetails``.
    """
    if event_type.endswith("StateEntered"):
        return "stateEnteredEventDetails"
    if event_type.endswith("StateExited"):
        return "stateExitedEventDetails"
    return event_type[0].lower() + event_type[1:] + "EventDetails"
