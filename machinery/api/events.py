"""``/e``: events (executions): start, read, long-poll, list, history, stop, redrive."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request

from machinery import shapes
from machinery.api import orchestrator_of
from machinery.api.spec import Body, Link, Param, Reply, operation
from machinery.control import schemas
from machinery.status import ExecutionStatus

blueprint = Blueprint("events", __name__, url_prefix="/e")

_EVENT_ID = {"event_id": "the event's id"}
_LINKS = {
    "GetEvent": Link("getEvent", {"ref": "$response.body#/event_id"}, "read it (long-poll with wait)"),
    "GetHistory": Link("getHistory", {"event_id": "$response.body#/event_id"}, "its history"),
    "StopEvent": Link("stopEvent", {"event_id": "$response.body#/event_id"}, "stop it"),
}


# POST /e/<ref> and GET /e/<ref> share one templated path, so they share the parameter's name (OpenAPI
# treats /e/{a} and /e/{b} as the same path): a workflow for POST, an event for GET.
@blueprint.post("/<ref>")
@operation(
    "Send an event (start an execution)",
    tag="events",
    description="Starts an execution of the workflow's latest version with the event data and waits up to "
    "`wait` seconds (default `MACHINERY_SYNC_WAIT`) for it to end. Data beyond `MACHINERY_DATA_LIMIT` "
    "bytes is refused (413) before anything is stored.",
    path={"ref": Param("the workflow's id or name", example="process-text")},
    query=schemas.START_EVENT_QUERY,
    body=Body(
        schemas.EVENT_BODY,
        "the event data, or the seed's envelope around it",
        invalid=None,  # any JSON is event data; the use case checks the envelope and the declared inputs
        allow_null=True,
        examples={"seed": {"data": {"message": "The Sun will rise in the morning !"}}},
    ),
    replies=(
        Reply(201, "the event ended within `wait`: its final record", shapes.EVENT_RECORD, links=_LINKS),
        Reply(
            202,
            "the event is still running (or `wait=0`): its record so far",
            shapes.EVENT_RECORD,
            headers={"Location": "the event's URL (`/e/<event_id>`)"},
            links=_LINKS,
        ),
    ),
    problems=(422,),
)
def create_event(ref: str, body: Any, query: dict[str, Any]) -> tuple[Response, int]:
    """Start an execution with the event; 201 once it ended within the wait, else 202."""
    orchestrator = orchestrator_of(current_app)
    wait = query["wait"] if query["wait"] is not None else float(current_app.config["SYNC_WAIT"])
    record = orchestrator.start_event(ref, body, traceparent=request.headers.get("traceparent"), wait=wait)
    response = jsonify(shapes.event_record(record, orchestrator.webhook_status(record)))
    if record.status == ExecutionStatus.RUNNING:
        response.headers["Location"] = f"/e/{record.execution_id}"
        return response, 202
    return response, 201


@blueprint.get("")
@operation(
    "List events",
    tag="events",
    description="Top-level events, newest first (with `parent`, that event's child executions instead).",
    query=schemas.LIST_EVENTS_QUERY,
    replies=(Reply(200, "one page of events", shapes.EVENT_LIST),),
    problems=(404,),
)
def list_events(query: dict[str, Any]) -> Response:
    """One page of events, newest first."""
    orchestrator = orchestrator_of(current_app)
    status = None if query["status"] is None else ExecutionStatus(query["status"])
    records, cursor = orchestrator.list_events(
        query["workflow"], status, query["limit"], query["cursor"], query["parent"]
    )
    events = [shapes.event_record(r, orchestrator.webhook_status(r)) for r in records]
    return jsonify({"events": events, "next_cursor": cursor})


@blueprint.get("/<ref>")
@operation(
    "Read an event",
    tag="events",
    path={"ref": "the event's id"},
    query=schemas.GET_EVENT_QUERY,
    replies=(Reply(200, "the event's record (once it ended, or when `wait` ran out)", shapes.EVENT_RECORD),),
)
def get_event(ref: str, query: dict[str, Any]) -> Response:
    """An event's record, long-polled with ``wait``."""
    orchestrator = orchestrator_of(current_app)
    wait = query["wait"]
    record = orchestrator.wait_event(ref, wait) if wait > 0 else orchestrator.get_event(ref)
    return jsonify(shapes.event_record(record, orchestrator.webhook_status(record)))


@blueprint.get("/<event_id>/history")
@operation(
    "Read an event's history",
    tag="events",
    description="Step Functions' event types, oldest first (or newest first with `reverse`), page by page "
    "with `limit` and `after`.",
    path=_EVENT_ID,
    query=schemas.HISTORY_QUERY,
    replies=(Reply(200, "one page of the history", shapes.HISTORY_PAGE),),
)
def get_history(event_id: str, query: dict[str, Any]) -> Response:
    """One page of an event's history."""
    events, cursor = orchestrator_of(current_app).history(
        event_id, query["after"], query["limit"], query["reverse"]
    )
    body = {"event_id": event_id, "events": shapes.history_events_json(events), "next_cursor": cursor}
    # Whole histories run to tens of thousands of events: orjson writes them several times faster.
    try:
        return Response(orjson.dumps(body), mimetype="application/json")
    except TypeError:  # orjson refuses what json writes (integers past 64 bits): the slow path then
        return jsonify(body)


@blueprint.post("/<event_id>/stop")
@operation(
    "Stop an event",
    tag="events",
    description="Aborts a running event (and its child executions) with an optional error and cause.",
    path=_EVENT_ID,
    body=Body(schemas.STOP, "why (optional)", required=False, allow_null=True),
    replies=(Reply(200, "the event's record, now ABORTED", shapes.EVENT_RECORD),),
    problems=(409,),
)
def stop_event(event_id: str, body: Any) -> Response:
    """Abort a running event."""
    reason = body or {}
    orchestrator = orchestrator_of(current_app)
    record = orchestrator.stop_event(event_id, reason.get("error"), reason.get("cause"))
    return jsonify(shapes.event_record(record, orchestrator.webhook_status(record)))


@blueprint.post("/<event_id>/redrive")
@operation(
    "Redrive an event",
    tag="events",
    description="Reruns a FAILED, TIMED_OUT or ABORTED event from what did not finish (as Step Functions' "
    "RedriveExecution); `input` replaces the input of the one state that runs again.",
    path=_EVENT_ID,
    body=Body(
        schemas.REDRIVE,
        "a new input for the state that runs again (optional)",
        required=False,
        allow_null=True,
    ),
    replies=(Reply(200, "the event's record, RUNNING again", shapes.EVENT_RECORD, links=_LINKS),),
    problems=(409,),
)
def redrive_event(event_id: str, body: Any) -> Response:
    """Rerun a failed, timed-out or aborted event from what did not finish."""
    orchestrator = orchestrator_of(current_app)
    record = (
        orchestrator.redrive_event(event_id, body["input"])
        if body and "input" in body
        else orchestrator.redrive_event(event_id)
    )
    return jsonify(shapes.event_record(record))
