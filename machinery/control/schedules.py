"""Schedules as a resource: create, list, read, update, pause, resume, delete.

A schedule's definition is a resource document (``schedule/<name>``); its runtime state is its cursor
work item (:mod:`machinery.runtime.schedules`). Every change stores the definition with a higher
``revision`` first and then replaces the cursor, carrying its state over: a cursor of an older revision
that fires meanwhile finds the revision changed and drops itself, so a change never leaves two cursors
running.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from machinery.control.names import MAX_NAME_LENGTH, NAME_PATTERN
from machinery.control.triggers import (
    callback_url_issue,
    check_schema,
    durable_workflow,
    input_issues,
)
from machinery.errors import BadRequest, Conflict, FieldIssue, NotFound
from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.schedules import (
    OVERLAP_POLICIES,
    PAUSED_DUE,
    SCHEDULE_KIND,
    CursorState,
    Schedule,
    cursor_item,
    iso,
    recurrence_issue,
    render_input,
)
from machinery.storage.base import Storage, new_id

#: A schedule's name leaves room for the tick in its executions' names (``<name>-YYYYMMDDTHHMMSSZ``).
MAX_SCHEDULE_NAME = MAX_NAME_LENGTH - 17
NEXT_RUNS_SHOWN = 5

_FIELDS: dict[str, Any] = {
    "workflow": {"type": "string", "minLength": 1, "maxLength": 200, "description": "workflow id or name"},
    "expression": {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "description": "a cron expression (5 fields, or 6 with seconds first) or rate(<n> <unit>)",
    },
    "timezone": {"type": "string", "minLength": 1, "maxLength": 64, "description": "IANA time zone"},
    "input": {"description": "the input of each execution; <machinery.scheduled-time> is replaced"},
    "overlap": {"type": "string", "enum": list(OVERLAP_POLICIES)},
    "catch_up": {"type": "integer", "minimum": 0, "maximum": 1000},
    "grace_seconds": {"type": "number", "minimum": 0, "maximum": 86400},
    "paused": {"type": "boolean"},
    "callback_url": {"type": ["string", "null"], "maxLength": 2048},
    "description": {"type": "string", "maxLength": 1024},
}
SCHEDULE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "workflow", "expression"],
    "properties": {
        "name": {"type": "string", "pattern": NAME_PATTERN, "maxLength": MAX_SCHEDULE_NAME},
        **_FIELDS,
    },
    "additionalProperties": False,
}
#: An update: any of the fields (the name cannot change).
SCHEDULE_UPDATE: dict[str, Any] = {"type": "object", "properties": _FIELDS, "additionalProperties": False}

_DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "input": {},
    "overlap": "skip",
    "catch_up": 0,
    "grace_seconds": 60.0,
    "paused": False,
    "callback_url": None,
    "description": "",
}


def find_schedule(storage: Storage, name: str) -> Schedule:
    body = storage.get_resource(SCHEDULE_KIND, name)
    if body is None:
        raise NotFound(f"no schedule '{name}'", schedule=name)
    return Schedule.from_json(body)


def list_schedules(storage: Storage, workflow: str | None = None) -> list[Schedule]:
    """Every schedule in name order; with ``workflow``, those of that workflow (id or name)."""
    schedules = [Schedule.from_json(body) for _key, body in storage.list_resources(SCHEDULE_KIND)]
    if workflow is None:
        return schedules
    record = storage.get_workflow(workflow)
    names = {workflow} if record is None else {workflow, record.name, record.workflow_id}
    return [schedule for schedule in schedules if schedule.workflow in names]


def create_schedule(
    storage: Storage, body: Any, now: float, policy: OutboundPolicy | None = None
) -> Schedule:
    """Validate and store a new schedule and arm its cursor.

    :raises BadRequest: the body breaks the schema, the expression or the time zone is invalid.
    :raises Conflict: the name is taken, the workflow does not exist or is express.
    :raises InvalidEventData: the input (for a sample tick) does not match the workflow's inputs.
    """
    check_schema(SCHEDULE_BODY, body)
    fields = {**_DEFAULTS, **body}
    schedule = Schedule(
        schedule_id=new_id(),
        name=fields["name"],
        workflow=fields["workflow"],
        expression=fields["expression"].strip(),
        timezone=fields["timezone"],
        input=fields["input"],
        overlap=fields["overlap"],
        catch_up=fields["catch_up"],
        grace_seconds=float(fields["grace_seconds"]),
        paused=fields["paused"],
        revision=1,
        anchor=float(math.floor(now)),
        created_at=now,
        updated_at=now,
        callback_url=fields["callback_url"],
        description=fields["description"],
    )
    _check(storage, schedule, now, policy)
    if not storage.insert_resource(SCHEDULE_KIND, schedule.name, schedule.to_json()):
        raise Conflict(f"a schedule named '{schedule.name}' exists", issues=[FieldIssue("name", "is taken")])
    state = CursorState(schedule.schedule_id, schedule.name, schedule.revision, after=now)
    storage.replace_work(schedule.cursor_id, [cursor_item(state, _due(schedule, state))])
    return schedule


def update_schedule(
    storage: Storage, name: str, body: Any, now: float, policy: OutboundPolicy | None = None
) -> Schedule:
    """Change some fields of a schedule; a new expression or time zone counts ticks from now."""
    check_schema(SCHEDULE_UPDATE, body)
    current = find_schedule(storage, name)
    changes = dict(body)
    if "grace_seconds" in changes:
        changes["grace_seconds"] = float(changes["grace_seconds"])
    if "expression" in changes:
        changes["expression"] = changes["expression"].strip()
    timing = any(
        current.to_json()[key] != changes[key] for key in ("expression", "timezone") if key in changes
    )
    if timing:
        changes["anchor"] = float(math.floor(now))
    schedule = replace(current, **changes, revision=current.revision + 1, updated_at=now)
    _check(storage, schedule, now, policy)
    # Unpausing through an update skips what was missed while paused, as resume does.
    resumed = current.paused and not schedule.paused
    return _store(storage, current, schedule, now, restart=timing or resumed)


def pause_schedule(storage: Storage, name: str, now: float) -> Schedule:
    current = find_schedule(storage, name)
    if current.paused:
        return current
    schedule = replace(current, paused=True, revision=current.revision + 1, updated_at=now)
    return _store(storage, current, schedule, now)


def resume_schedule(storage: Storage, name: str, now: float) -> Schedule:
    """Resume a paused schedule: the ticks it missed while paused are skipped."""
    current = find_schedule(storage, name)
    if not current.paused:
        return current
    schedule = replace(current, paused=False, revision=current.revision + 1, updated_at=now)
    return _store(storage, current, schedule, now, restart=True)


def delete_schedule(storage: Storage, name: str) -> None:
    schedule = find_schedule(storage, name)
    # The definition goes first: a cursor firing meanwhile finds no schedule and drops itself.
    storage.delete_resource(SCHEDULE_KIND, name)
    storage.replace_work(schedule.cursor_id, [])


def cursor_state(storage: Storage, schedule: Schedule) -> tuple[CursorState | None, float | None]:
    """The schedule's state and when its cursor is due (None, None: not armed)."""
    for item in storage.get_work(schedule.cursor_id):
        state = CursorState.from_json(item.payload)
        if state.revision == schedule.revision:
            return state, item.due_at
    return None, None


def schedule_json(storage: Storage, schedule: Schedule, now: float) -> dict[str, Any]:
    """The public record: the definition, the state, and the next run times."""
    state, due = cursor_state(storage, schedule)
    if state is None and not schedule.paused:
        # Its cursor was lost (a crash between storing the definition and arming): arm it again.
        state = CursorState(schedule.schedule_id, schedule.name, schedule.revision, after=now)
        due = _due(schedule, state)
        storage.replace_work(schedule.cursor_id, [cursor_item(state, due)])
    record: dict[str, Any] = {
        "name": schedule.name,
        "schedule_id": schedule.schedule_id,
        "workflow": schedule.workflow,
        "expression": schedule.expression,
        "kind": "rate" if schedule.recurrence.rate_seconds is not None else "cron",
        "timezone": schedule.timezone,
        "input": schedule.input,
        "overlap": schedule.overlap,
        "catch_up": schedule.catch_up,
        "grace_seconds": schedule.grace_seconds,
        "paused": schedule.paused,
        "callback_url": schedule.callback_url,
        "description": schedule.description,
        "revision": schedule.revision,
        "created_at": iso(schedule.created_at),
        "updated_at": iso(schedule.updated_at),
    }
    next_runs: list[str] = []
    if not schedule.paused and due is not None and due < PAUSED_DUE:
        tick: float | None = due
        recurrence = schedule.recurrence
        while tick is not None and len(next_runs) < NEXT_RUNS_SHOWN:
            next_runs.append(iso(tick))
            tick = recurrence.next_after(tick)
    record["next_runs"] = next_runs
    record["state"] = {
        "next_run_at": next_runs[0] if next_runs else None,
        "last_tick_at": None if state is None or state.last_tick is None else iso(state.last_tick),
        "last_event_id": None if state is None else state.last_execution,
        "buffered_tick_at": None if state is None or state.buffered is None else iso(state.buffered),
        "started": 0 if state is None else state.started,
        "skipped": 0 if state is None else state.skipped,
        "last_error": None if state is None else state.last_error,
    }
    return record


# helpers -----------------------------------------------------------------------------------------------


def _check(storage: Storage, schedule: Schedule, now: float, policy: OutboundPolicy | None) -> None:
    issue = recurrence_issue(schedule.expression, schedule.timezone)
    if issue is not None:
        raise BadRequest(f"invalid schedule {issue.field}", issues=[issue])
    url_issue = callback_url_issue(schedule.callback_url, policy)
    if url_issue is not None:
        raise BadRequest("invalid callback_url", issues=[url_issue])
    workflow = durable_workflow(storage, schedule.workflow, "schedules")
    # The input with a sample tick: it must be what the workflow's declared inputs accept.
    input_issues(workflow, render_input(schedule.input, schedule.name, now), "input")


def _due(schedule: Schedule, state: CursorState) -> float:
    if schedule.paused:
        return PAUSED_DUE
    following = schedule.recurrence.next_after(state.after)
    return PAUSED_DUE if following is None else following


def _store(
    storage: Storage, current: Schedule, schedule: Schedule, now: float, restart: bool = False
) -> Schedule:
    """Store a changed schedule, then move its cursor to the new revision with its state."""
    state, _due_at = cursor_state(storage, current)
    if state is None:
        state = CursorState(schedule.schedule_id, schedule.name, schedule.revision, after=now)
    state = replace(
        state, revision=schedule.revision, after=max(state.after, now) if restart else state.after
    )
    if restart:
        state = replace(state, buffered=None)
    storage.put_resource(SCHEDULE_KIND, schedule.name, schedule.to_json())
    storage.replace_work(schedule.cursor_id, [cursor_item(state, _due(schedule, state))])
    return schedule


_TIME = {"type": "string", "format": "date-time"}
_MAYBE_TIME = {"type": ["string", "null"], "format": "date-time"}
#: The public record of a schedule (``schedule_json``), for the API's description.
SCHEDULE_RECORD: dict[str, Any] = {
    "type": "object",
    "required": [
        "name",
        "schedule_id",
        "workflow",
        "expression",
        "kind",
        "timezone",
        "input",
        "overlap",
        "catch_up",
        "grace_seconds",
        "paused",
        "revision",
        "created_at",
        "updated_at",
        "next_runs",
        "state",
    ],
    "properties": {
        "name": {"type": "string"},
        "schedule_id": {"type": "string"},
        "workflow": {"type": "string"},
        "expression": {"type": "string"},
        "kind": {"type": "string", "enum": ["cron", "rate"]},
        "timezone": {"type": "string"},
        "input": {},
        "overlap": {"type": "string", "enum": list(OVERLAP_POLICIES)},
        "catch_up": {"type": "integer"},
        "grace_seconds": {"type": "number"},
        "paused": {"type": "boolean"},
        "callback_url": {"type": ["string", "null"]},
        "description": {"type": "string"},
        "revision": {"type": "integer"},
        "created_at": _TIME,
        "updated_at": _TIME,
        "next_runs": {"type": "array", "items": _TIME, "maxItems": NEXT_RUNS_SHOWN},
        "state": {
            "type": "object",
            "required": [
                "next_run_at",
                "last_tick_at",
                "last_event_id",
                "buffered_tick_at",
                "started",
                "skipped",
                "last_error",
            ],
            "properties": {
                "next_run_at": _MAYBE_TIME,
                "last_tick_at": _MAYBE_TIME,
                "last_event_id": {"type": ["string", "null"]},
                "buffered_tick_at": _MAYBE_TIME,
                "started": {"type": "integer"},
                "skipped": {"type": "integer"},
                "last_error": {"type": ["string", "null"]},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
