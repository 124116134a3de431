"""What every ``machinery`` command shares: help that lists the settings, exit codes, logging set-up."""

from __future__ import annotations

import click

#: Exit statuses of the client commands, besides 0 (done) and click's 2 (a usage error).
EXIT_EXECUTION_FAILED = 1
EXIT_API_ERROR = 3


#: The client commands' own settings, shown with the server's in ``--help``.
CLIENT_SETTINGS: dict[str, tuple[str, str]] = {
    "URL": ("http://127.0.0.1:5000", "client commands: the server's base URL (--url)"),
    "TOKEN": ("", "client commands: API token sent as Authorization: Bearer (--token)"),
}


def format_settings(formatter: click.HelpFormatter) -> None:
    """Write the settings section: every ``MACHINERY_*`` variable with its default and meaning.

    The server's settings are imported here, when help is shown, so that client commands (and shell
    completion, which runs the program at every tab) do not load the server's modules.
    """
    from machinery.config import SETTINGS

    settings = {**SETTINGS, **CLIENT_SETTINGS}
    rows = [
        (f"MACHINERY_{name}", f"{text} (default: {default!r})") for name, (default, text) in settings.items()
    ]
    with formatter.section("Settings (environment variables)"):
        formatter.write_dl(rows, col_max=34)


class SettingsCommand(click.Command):
    """A command whose ``--help`` ends with the settings (the server commands: they read them all)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        format_settings(formatter)


class RootGroup(click.Group):
    """The ``machinery`` group: its help lists the settings too, and commands keep the order they were
    added in (servers first, then the client commands) instead of click's alphabetical order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        format_settings(formatter)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Log to standard error at ``level``, as text or JSON lines (only the CLI configures handlers)."""
    from machinery.telemetry.logs import configure_logging as configure

    configure(level, log_format)
