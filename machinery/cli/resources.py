"""``machinery services``, ``machinery workflows`` and ``machinery events``: the API's resources from a
terminal (list, get, apply, delete, versions, history, stop, redrive)."""

from __future__ import annotations

from typing import Any

import click

from machinery.cli.common import (
    Session,
    api_command,
    complete_event,
    complete_service,
    complete_workflow,
    read_definitions,
    read_json,
)
from machinery.cli.output import duration, when
from machinery.cli.running import follow_and_report, quiet_option
from machinery.client import Event, HistoryEvent, Service, Workflow
from machinery.status import ExecutionStatus

#: Events ``machinery events list`` shows unless told otherwise.
DEFAULT_LIST_LIMIT = 20


def _names(fields: tuple[Any, ...]) -> str:
    return ", ".join(f"{field.name}: {field.type}" for field in fields) or "-"


# -- services ---------------------------------------------------------------------------------------------


@click.group()
def services() -> None:
    """Registered HTTP services: list, get, apply, delete."""


def _service_fields(service: Service) -> list[tuple[str, str]]:
    fields = [
        ("name", service.name),
        ("id", service.service_id),
        ("address", service.address),
        ("method", service.method or "POST"),
        ("inputs", _names(service.inputs)),
        ("outputs", _names(service.outputs)),
    ]
    if service.timeout_seconds is not None:
        fields.append(("timeout", f"{service.timeout_seconds:g} s"))
    if service.headers:
        fields.append(("headers", ", ".join(sorted(service.headers))))
    if service.description:
        fields.append(("description", service.description))
    return [*fields, ("created", when(service.created_at)), ("updated", when(service.updated_at))]


@services.command("list")
@api_command
def list_services(session: Session) -> None:
    """List the registered services."""
    found = session.client.list_services()
    rows = [[s.name, s.address, _names(s.inputs), _names(s.outputs), when(s.updated_at)] for s in found]
    session.output.table(["NAME", "ADDRESS", "INPUTS", "OUTPUTS", "UPDATED"], rows, [s.raw for s in found])


@services.command("get")
@click.argument("service", shell_complete=complete_service)
@api_command
def get_service(session: Session, service: str) -> None:
    """Show SERVICE (a name or an id)."""
    found = session.client.get_service(service)
    session.output.record(_service_fields(found), found.raw)


@services.command("apply")
@click.option("-f", "--file", "files", required=True, multiple=True, help="a JSON definition (- for stdin)")
@api_command
def apply_services(session: Session, files: tuple[str, ...]) -> None:
    """Register services, or update those already registered under the same names.

    Each file holds one service definition or a list of them.
    """
    applied = [session.client.create_service(definition) for definition in read_definitions(files)]
    rows = [[s.name, s.service_id, s.address] for s in applied]
    session.output.table(["NAME", "ID", "ADDRESS"], rows, [s.raw for s in applied])


@services.command("delete")
@click.argument("service", shell_complete=complete_service)
@api_command
def delete_service(session: Session, service: str) -> None:
    """Delete SERVICE (refused while a workflow uses it)."""
    session.client.delete_service(service)
    session.output.note(f"deleted service {service}")


# -- workflows --------------------------------------------------------------------------------------------


@click.group()
def workflows() -> None:
    """Workflows and their versions: list, get, apply, delete, versions."""


def _workflow_steps(workflow: Workflow) -> str:
    if workflow.services:
        return " → ".join(workflow.services)
    states = (workflow.definition or {}).get("States")
    return f"{len(states)} states" if isinstance(states, dict) else "-"


def _workflow_row(workflow: Workflow) -> list[str]:
    kind = f"{workflow.form}, express" if workflow.express else workflow.form
    return [workflow.name, str(workflow.version), kind, _workflow_steps(workflow), when(workflow.updated_at)]


@workflows.command("list")
@api_command
def list_workflows(session: Session) -> None:
    """List the workflows (their latest versions)."""
    found = session.client.list_workflows()
    columns = ["NAME", "VERSION", "FORM", "SERVICES", "UPDATED"]
    session.output.table(columns, [_workflow_row(w) for w in found], [w.raw for w in found])


@workflows.command("get")
@click.argument("workflow", shell_complete=complete_workflow)
@click.option("--version", type=click.IntRange(min=1), help="a version other than the latest")
@api_command
def get_workflow(session: Session, workflow: str, version: int | None) -> None:
    """Show WORKFLOW (a name or an id) and the Amazon States Language it runs."""
    found = session.client.get_workflow(workflow, version)
    fields = [
        ("name", found.name),
        ("id", found.workflow_id),
        ("version", str(found.version)),
        ("form", found.form),
        ("express", "yes" if found.express else "no"),
        ("services", ", ".join(found.services) or "-"),
        ("inputs", _names(found.inputs)),
        ("outputs", _names(found.outputs)),
        ("created", when(found.created_at)),
        ("updated", when(found.updated_at)),
    ]
    session.output.record(fields, found.raw, [("definition", found.definition)])


@workflows.command("apply")
@click.option("-f", "--file", "files", required=True, multiple=True, help="a JSON definition (- for stdin)")
@click.option("--name", help="the name, for a file that holds a bare state machine (StartAt, States)")
@api_command
def apply_workflows(session: Session, files: tuple[str, ...], name: str | None) -> None:
    """Create workflows, or add a version to those that exist under the same names.

    Each file holds a workflow (the simple form or {"name", "definition"}) or a list of them; a bare
    Amazon States Language state machine is accepted with --name.
    """
    definitions = read_definitions(files)
    if name is not None:
        if len(definitions) != 1:
            raise click.BadParameter("--name applies to a single definition", param_hint="--name")
        document = definitions[0]
        definitions = [
            {"name": name, "definition": document} if "StartAt" in document else {**document, "name": name}
        ]
    applied = [session.client.create_workflow(definition) for definition in definitions]
    rows = [[w.name, str(w.version), w.workflow_id] for w in applied]
    session.output.table(["NAME", "VERSION", "ID"], rows, [w.raw for w in applied])


@workflows.command("delete")
@click.argument("workflow", shell_complete=complete_workflow)
@api_command
def delete_workflow(session: Session, workflow: str) -> None:
    """Delete WORKFLOW and its versions."""
    session.client.delete_workflow(workflow)
    session.output.note(f"deleted workflow {workflow}")


@workflows.command("versions")
@click.argument("workflow", shell_complete=complete_workflow)
@api_command
def list_versions(session: Session, workflow: str) -> None:
    """List the versions of WORKFLOW, oldest first."""
    found = session.client.list_versions(workflow)
    rows = [[str(w.version), w.form, _workflow_steps(w), when(w.created_at)] for w in found]
    session.output.table(["VERSION", "FORM", "SERVICES", "CREATED"], rows, [w.raw for w in found])


# -- events -----------------------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Events (executions): list, get, history, stop, redrive. Start one with `machinery run`."""


def event_fields(event: Event) -> list[tuple[str, str]]:
    """The fields ``events get`` shows for an event."""
    fields = [
        ("event", event.event_id),
        ("name", event.name),
        ("workflow", f"{event.workflow_name} (version {event.workflow_version})"),
        ("status", event.status.value),
        ("started", when(event.acknowledged_at)),
        ("finished", when(event.finished_at)),
        ("duration", _event_duration(event)),
    ]
    if event.parent_event_id:
        fields.append(("parent", event.parent_event_id))
    if event.error is not None:
        fields += [("error", event.error), ("cause", event.cause or "")]
    return fields


def _event_duration(event: Event) -> str:
    return "-" if event.finished_at is None else duration(event.finished_at - event.acknowledged_at)


@events.command("list")
@click.option("--workflow", shell_complete=complete_workflow, help="only this workflow's events")
@click.option(
    "--status", type=click.Choice([s.value for s in ExecutionStatus]), help="only events in this status"
)
@click.option("--parent", shell_complete=complete_event, help="the child executions of this event")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
    help="at most this many",
)
@click.option("--all", "every", is_flag=True, help="every event (no limit)")
@api_command
def list_events(
    session: Session, workflow: str | None, status: str | None, parent: str | None, limit: int, every: bool
) -> None:
    """List events, newest first."""
    found: list[Event] = []
    page_size = min(limit, 1000) if not every else 1000
    for event in session.client.iter_events(
        workflow=workflow, status=status, parent=parent, page_size=page_size
    ):
        if not every and len(found) == limit:
            break
        found.append(event)
    rows = [
        [
            e.event_id,
            f"{e.workflow_name}:{e.workflow_version}",
            e.status.value,
            when(e.acknowledged_at),
            _event_duration(e),
        ]
        for e in found
    ]
    session.output.table(["EVENT", "WORKFLOW", "STATUS", "STARTED", "DURATION"], rows, [e.raw for e in found])


@events.command("get")
@click.argument("event", shell_complete=complete_event)
@click.option(
    "--wait", type=click.FloatRange(0, 3600), default=0, help="wait up to this many seconds for it to end"
)
@api_command
def get_event(session: Session, event: str, wait: float) -> None:
    """Show EVENT (its id): status, times, output or error."""
    found = session.client.get_event(event, wait=wait or None)
    blobs = [("output", found.output)] if found.succeeded else []
    session.output.record(event_fields(found), found.raw, blobs)


def history_detail(entry: HistoryEvent) -> str:
    """A short account of a history event: the state it enters or exits, else its error, else ``-``."""
    if entry.state_name is not None:
        return entry.state_name
    error = entry.details.get("error")
    if error is not None:
        cause = str(entry.details.get("cause") or "")
        return f"{error}: {cause}" if cause else str(error)
    return str(entry.details.get("resource") or "-")


@events.command("history")
@click.argument("event", shell_complete=complete_event)
@click.option("--limit", type=click.IntRange(min=1), help="at most this many history events")
@click.option("--reverse", is_flag=True, help="newest first")
@api_command
def event_history(session: Session, event: str, limit: int | None, reverse: bool) -> None:
    """Show what happened in EVENT, in Step Functions' event types."""
    found: list[HistoryEvent] = []
    for entry in session.client.iter_history(event, reverse=reverse, page_size=min(limit or 1000, 1000)):
        if limit is not None and len(found) == limit:
            break
        found.append(entry)
    rows = [[str(e.id), when(e.timestamp), e.type, history_detail(e)] for e in found]
    session.output.table(["ID", "TIME", "TYPE", "STATE OR DETAIL"], rows, [e.raw for e in found])


@events.command("stop")
@click.argument("event", shell_complete=complete_event)
@click.option("--error", help="the error recorded (Step Functions' StopExecution error)")
@click.option("--cause", help="the cause recorded")
@api_command
def stop_event(session: Session, event: str, error: str | None, cause: str | None) -> None:
    """Stop (abort) a running EVENT."""
    stopped = session.client.stop_event(event, error=error, cause=cause)
    session.output.record(event_fields(stopped), stopped.raw)


@events.command("redrive")
@click.argument("event", shell_complete=complete_event)
@click.option("--input", "state_input", metavar="JSON|@FILE|-", help="the input of the state that runs again")
@click.option("--no-wait", is_flag=True, help="print the record and return without following it")
@quiet_option
@api_command
def redrive(session: Session, event: str, state_input: str | None, no_wait: bool, quiet: bool) -> None:
    """Run a failed, timed-out or aborted EVENT again from what did not finish, and follow it as
    `machinery watch` does (only what happens from the redrive on).

    Exits with 0 when the execution then succeeds, 1 when it fails again, times out or is aborted.
    """
    client = session.client
    newest = client.history_page(event, limit=1, reverse=True).events
    if state_input is None:
        redriven = client.redrive_event(event)
    else:
        redriven = client.redrive_event(event, state_input=read_json(state_input, "--input"))
    if no_wait:
        if session.output.as_json:
            session.output.json(redriven.raw)
        else:
            click.echo(redriven.event_id)
        return
    follow_and_report(session, redriven, quiet, after=newest[0].id if newest else 0)
