"""``machinery schedules`` and ``machinery sources``: the triggers from a terminal (docs/triggers.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from machinery.cli.common import Session, api_command, complete_workflow, read_definitions
from machinery.cli.output import when
from machinery.client import ConflictError, Schedule, Source


def _lifecycle(
    group: click.Group, noun: str, fields: Callable[[Any], list[tuple[str, str]]], notes: dict[str, str]
) -> None:
    """Add ``pause NAME``, ``resume NAME`` and ``delete NAME`` to ``group``, calling the client's
    ``pause_<noun>``, ``resume_<noun>`` and ``delete_<noun>``; ``notes`` completes each command's help."""
    for action in ("pause", "resume"):

        def change(session: Session, name: str, action: str = action) -> None:
            found = getattr(session.client, f"{action}_{noun}")(name)
            session.output.record(fields(found), found.raw)

        change.__doc__ = f"{action.capitalize()} {noun} NAME {notes[action]}"
        group.command(action)(click.argument("name")(api_command(change)))

    def delete(session: Session, name: str) -> None:
        getattr(session.client, f"delete_{noun}")(name)
        session.output.note(f"deleted {noun} {name}")

    delete.__doc__ = f"Delete {noun} NAME {notes['delete']}"
    group.command("delete")(click.argument("name")(api_command(delete)))


# -- schedules ----------------------------------------------------------------------------------------------


@click.group()
def schedules() -> None:
    """Schedules: list, get, apply, pause, resume, delete."""


def _next_run(schedule: Schedule) -> str:
    return when(schedule.next_runs[0]) if schedule.next_runs else "-"


def _schedule_fields(schedule: Schedule) -> list[tuple[str, str]]:
    state = schedule.state
    when_text = schedule.expression + (f" ({schedule.timezone})" if schedule.kind == "cron" else "")
    fields = [
        ("name", schedule.name),
        ("workflow", schedule.workflow),
        ("schedule", when_text),
        ("overlap", schedule.overlap),
        ("catch up", str(schedule.catch_up)),
        ("paused", "yes" if schedule.paused else "no"),
        ("started", str(state.get("started", 0))),
        ("skipped", str(state.get("skipped", 0))),
        ("last tick", str(state.get("last_tick_at") or "-")),
        ("last event", str(state.get("last_event_id") or "-")),
    ]
    if state.get("buffered_tick_at"):
        fields.append(("buffered", str(state["buffered_tick_at"])))
    if state.get("last_error"):
        fields.append(("last error", str(state["last_error"])))
    fields.append(("next runs", ", ".join(when(run) for run in schedule.next_runs) or "-"))
    return fields


@schedules.command("list")
@click.option("--workflow", shell_complete=complete_workflow, help="only the schedules of this workflow")
@api_command
def list_schedules(session: Session, workflow: str | None) -> None:
    """List the schedules with their next run."""
    found = session.client.list_schedules(workflow)
    rows = [
        [
            s.name,
            s.workflow,
            s.expression,
            s.overlap,
            "paused" if s.paused else _next_run(s),
            str(s.state.get("started", 0)),
        ]
        for s in found
    ]
    session.output.table(
        ["NAME", "WORKFLOW", "SCHEDULE", "OVERLAP", "NEXT RUN", "STARTED"], rows, [s.raw for s in found]
    )


@schedules.command("get")
@click.argument("name")
@api_command
def get_schedule(session: Session, name: str) -> None:
    """Show schedule NAME: its definition, state and next run times."""
    found = session.client.get_schedule(name)
    session.output.record(_schedule_fields(found), found.raw, [("input", found.input)])


def _apply(session: Session, definition: dict[str, Any], create: Any, update: Any) -> Any:
    """Create ``definition``, or update the one of the same name when the name is taken."""
    try:
        return create(definition)
    except ConflictError as error:
        name = definition.get("name")
        if not isinstance(name, str) or not any(issue.field == "name" for issue in error.problem.issues):
            raise
    changed = update(name, {key: value for key, value in definition.items() if key not in ("name", "type")})
    session.output.note(f"updated {name}")
    return changed


@schedules.command("apply")
@click.option("-f", "--file", "files", required=True, multiple=True, help="a JSON definition (- for stdin)")
@api_command
def apply_schedules(session: Session, files: tuple[str, ...]) -> None:
    """Create schedules, or update those of the same names. Each file holds one definition or a list."""
    client = session.client
    applied = [
        _apply(session, d, client.create_schedule, client.update_schedule) for d in read_definitions(files)
    ]
    rows = [[s.name, s.workflow, s.expression, _next_run(s)] for s in applied]
    session.output.table(["NAME", "WORKFLOW", "SCHEDULE", "NEXT RUN"], rows, [s.raw for s in applied])


_lifecycle(
    schedules,
    "schedule",
    _schedule_fields,
    {
        "pause": "(its cursor waits; the ticks meanwhile are skipped).",
        "resume": "from now.",
        "delete": "(the executions it started stay).",
    },
)


# -- sources ------------------------------------------------------------------------------------------------


@click.group()
def sources() -> None:
    """Event sources (RabbitMQ, NATS JetStream, Redis Streams): list, get, apply, pause, resume, delete,
    rejections."""


def _source_fields(source: Source) -> list[tuple[str, str]]:
    state = source.state
    fields = [
        ("name", source.name),
        ("type", source.type),
        ("url", source.url),
        ("workflow", source.workflow),
        ("enabled", "yes" if source.enabled else "no"),
        ("connected", f"yes ({state.get('consumers', 0)} consumers)" if state.get("connected") else "no"),
        ("lag", "-" if state.get("lag") is None else str(state["lag"])),
    ]
    fields.extend(
        (name, str(state.get(name, 0)))
        for name in ("started", "duplicates", "rejected", "retried", "reconnects")
    )
    if state.get("saturated"):
        fields.append(("saturated", "yes: consuming waits for the worker"))
    if state.get("last_error"):
        fields.append(("last error", str(state["last_error"])))
    return fields


@sources.command("list")
@api_command
def list_sources(session: Session) -> None:
    """List the event sources with their state."""
    found = session.client.list_sources()
    rows = [
        [
            s.name,
            s.type,
            s.workflow,
            "yes" if s.state.get("connected") else ("paused" if not s.enabled else "no"),
            "-" if s.state.get("lag") is None else str(s.state["lag"]),
            str(s.state.get("started", 0)),
            str(s.state.get("rejected", 0)),
        ]
        for s in found
    ]
    columns = ["NAME", "TYPE", "WORKFLOW", "CONNECTED", "LAG", "STARTED", "REJECTED"]
    session.output.table(columns, rows, [s.raw for s in found])


@sources.command("get")
@click.argument("name")
@api_command
def get_source(session: Session, name: str) -> None:
    """Show source NAME: its options and the state its consumers report."""
    found = session.client.get_source(name)
    session.output.record(_source_fields(found), found.raw)


@sources.command("apply")
@click.option("-f", "--file", "files", required=True, multiple=True, help="a JSON definition (- for stdin)")
@api_command
def apply_sources(session: Session, files: tuple[str, ...]) -> None:
    """Create sources, or update those of the same names. Each file holds one definition or a list."""
    client = session.client
    applied = [
        _apply(session, d, client.create_source, client.update_source) for d in read_definitions(files)
    ]
    rows = [[s.name, s.type, s.workflow, s.url] for s in applied]
    session.output.table(["NAME", "TYPE", "WORKFLOW", "URL"], rows, [s.raw for s in applied])


_lifecycle(
    sources,
    "source",
    _source_fields,
    {
        "pause": "(its consumers stop; messages wait at the broker).",
        "resume": "(its consumers start again).",
        "delete": "and its rejected messages (the broker's queue or stream stays).",
    },
)


@sources.command("rejections")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@api_command
def source_rejections(session: Session, name: str, limit: int) -> None:
    """The messages source NAME rejected, newest first, with the reason."""
    found = session.client.source_rejections(name, limit)
    rows = [[str(r.get("rejected_at")), str(r.get("message_id")), str(r.get("reason"))] for r in found]
    session.output.table(["REJECTED", "MESSAGE", "REASON"], rows, found)
