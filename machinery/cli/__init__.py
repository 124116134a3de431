"""The ``machinery`` command (on click).

One module per family of commands, each a plain click command or group:

- :mod:`machinery.cli.server`: ``serve``, ``worker``, ``migrate`` (they run the server's code);
- :mod:`machinery.cli.admin`: ``tokens``, ``purge`` (they work on the database, as ``migrate`` does);
- :mod:`machinery.cli.running`: ``run`` and ``watch`` (start and follow executions, with
  :mod:`machinery.cli.progress` showing their states);
- :mod:`machinery.cli.resources`: ``services``, ``workflows``, ``events`` (the API's resources);
- :mod:`machinery.cli.completion`: ``completion`` (the shell completion script).

The client commands talk to a server through :mod:`machinery.client` only; :func:`machinery.cli.common.
api_command` gives them ``--url``, ``--token`` and ``--json`` and reports the server's refusals, and
:mod:`machinery.cli.output` prints (tables on a terminal, plain lines when piped).

To add a command: write it as a click command (or group) in the module of its family, or in a new module
under ``machinery/cli/``, and add it to :data:`COMMANDS` below; ``machinery --help`` lists the commands in
that order. A server command that reads the ``MACHINERY_*`` settings uses ``cls=SettingsCommand``
(:mod:`machinery.cli.base`) so that its ``--help`` lists them, and imports the server's modules inside
its function, not at the top of the module: every ``machinery`` invocation, shell completion included,
imports all the command modules.
"""

from __future__ import annotations

import click

from machinery.cli import admin, completion, resources, running, server, triggers
from machinery.cli.base import RootGroup, configure_logging

#: Every command of ``machinery``, in the order ``--help`` shows them.
COMMANDS: list[click.Command] = [
    server.serve,
    server.worker,
    server.migrate,
    admin.tokens,
    admin.purge,
    running.run,
    running.watch,
    resources.services,
    resources.workflows,
    resources.events,
    triggers.schedules,
    triggers.sources,
    completion.completion,
]


@click.group(
    cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.option(
    "--log-level",
    envvar="MACHINERY_LOG_LEVEL",
    show_envvar=True,
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    help="what the commands log to standard error",
)
@click.option(
    "--log-format",
    envvar="MACHINERY_LOG_FORMAT",
    show_envvar=True,
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"], case_sensitive=False),
    help="log lines as text, or one JSON object per line",
)
@click.version_option(package_name="machinery")
def cli(log_level: str, log_format: str) -> None:
    """A durable workflow orchestrator for HTTP services."""
    configure_logging(log_level, log_format.lower())


for _command in COMMANDS:
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run ``machinery`` with ``argv`` (default: the process's arguments); returns the exit status."""
    try:
        cli.main(args=argv, prog_name="machinery")
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        click.echo(code, err=True)  # SystemExit("message"), as the interpreter would print it
        return 1
    return 0
