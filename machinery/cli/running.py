"""``machinery run`` (start an event and follow it) and ``machinery watch`` (follow a running one).

Progress goes to standard error (a live table on a terminal, plain lines otherwise); the output, or the
record with ``--json``, to standard output. The exit status says how the execution ended: 0 succeeded,
1 failed, timed out or was aborted (3: the server refused or could not be reached).
"""

from __future__ import annotations

import sys

import click

from machinery.cli.base import EXIT_EXECUTION_FAILED
from machinery.cli.common import Session, api_command, complete_event, complete_workflow, read_json
from machinery.cli.output import dumps
from machinery.cli.progress import Display, LineDisplay, LiveDisplay, follow
from machinery.client import Event

#: The exit status of a follower interrupted by Ctrl-C (the shell's for SIGINT); the event goes on.
EXIT_INTERRUPTED = 130

quiet_option = click.option("-q", "--quiet", is_flag=True, help="show no progress, only the result")


@click.command()
@click.argument("workflow", shell_complete=complete_workflow)
@click.option(
    "--data",
    default="{}",
    show_default=True,
    metavar="JSON|@FILE|-",
    help='the event, as POST /e/<workflow> takes it (the data, or the seed\'s {"data": ...}): JSON text, '
    "@file, or - for standard input",
)
@click.option("--no-wait", is_flag=True, help="print the event id and return without following it")
@quiet_option
@api_command
def run(session: Session, workflow: str, data: str, no_wait: bool, quiet: bool) -> None:
    """Start WORKFLOW with an event and show each state as it runs; print the output.

    Exits with 0 when the execution succeeds, 1 when it fails, times out or is aborted.
    """
    body = read_json(data, "--data")
    event = session.client.post_event(workflow, body, wait=0)
    if no_wait:
        if session.output.as_json:
            session.output.json(event.raw)
        else:
            click.echo(event.event_id)
        return
    follow_and_report(session, event, quiet)


@click.command()
@click.argument("event", shell_complete=complete_event)
@quiet_option
@api_command
def watch(session: Session, event: str, quiet: bool) -> None:
    """Follow EVENT (its id) until it ends, as `machinery run` does; print its output.

    Exits with 0 when the execution succeeds, 1 when it fails, times out or is aborted.
    """
    follow_and_report(session, session.client.get_event(event), quiet)


def _display(session: Session) -> Display:
    if session.output.errors.is_terminal:
        return LiveDisplay(session.output.errors)
    return LineDisplay(sys.stderr)


def follow_and_report(session: Session, event: Event, quiet: bool, after: int = 0) -> None:
    """Follow ``event`` (its history past ``after``) to its end, print its output, set the exit status."""
    try:
        if quiet:
            final = session.client.wait_for_event(event.event_id)
        else:
            final = follow(session.client, event, _display(session), after=after)
    except KeyboardInterrupt:
        session.output.note(f"\nstill running; follow it with: machinery watch {event.event_id}")
        sys.exit(EXIT_INTERRUPTED)
    if session.output.as_json:
        session.output.json(final.raw)
    elif final.succeeded:
        click.echo(dumps(final.output, indent=None))
    if not final.succeeded:
        if not session.output.as_json:
            detail = ": ".join(part for part in (final.error, final.cause) if part)
            session.output.failure(f"{final.status.value}{f' {detail}' if detail else ''}")
        sys.exit(EXIT_EXECUTION_FAILED)
