"""How the client commands print: rich tables and highlighted JSON on a terminal, plain tab-separated lines
when piped (no terminal control codes), JSON with ``--json``. Results go to standard output; messages,
progress and errors to standard error."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.json import JSON
from rich.table import Table
from rich.text import Text

from machinery.client import ApiError


def dumps(document: Any, indent: int | None = 2) -> str:
    """JSON as the commands print it: UTF-8 text, keys in the server's order."""
    return json.dumps(document, indent=indent, ensure_ascii=False)


def when(moment: datetime | None) -> str:
    """A timestamp in the local time zone, to the second (``-`` for none)."""
    return "-" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | timedelta | None) -> str:
    """``12 ms``, ``3.4 s``, ``2m 05s``, ``1h 02m`` (``-`` for none)."""
    if seconds is None:
        return "-"
    value = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


class Output:
    """Where and how one command prints.

    :param as_json: ``--json``: results are printed as the server's JSON, for scripts.
    """

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    @property
    def terminal(self) -> bool:
        """Standard output is a terminal (rich's test: a TTY, or ``FORCE_COLOR``/``TTY_COMPATIBLE``)."""
        return self.console.is_terminal

    def json(self, document: Any) -> None:
        click.echo(dumps(document))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[str]], documents: Sequence[Any]) -> None:
        """A listing: a table on a terminal, a header and tab-separated rows when piped, JSON documents
        with ``--json``."""
        if self.as_json:
            self.json(list(documents))
        elif self.terminal:
            table = Table(*columns, box=box.SIMPLE_HEAD, header_style="bold")
            for row in rows:
                table.add_row(*row)
            self.console.print(table)
        else:
            for row in [columns, *rows]:
                click.echo("\t".join(row))

    def record(
        self, fields: Sequence[tuple[str, str]], document: Any, blobs: Sequence[tuple[str, Any]] = ()
    ) -> None:
        """One record: its fields, then its JSON members (a definition, an output) pretty-printed."""
        if self.as_json:
            self.json(document)
            return
        if self.terminal:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column()
            for label, value in fields:
                grid.add_row(label, value)
            self.console.print(grid)
            for title, blob in blobs:
                self.console.print(Text(f"\n{title}", style="bold"))
                self.console.print(JSON(dumps(blob)))
            return
        for label, value in fields:
            click.echo(f"{label}\t{value}")
        for title, blob in blobs:
            click.echo(f"{title}\t{dumps(blob, indent=None)}")

    def note(self, message: str) -> None:
        """Say what was done (standard error, so that standard output stays the results)."""
        click.echo(message, err=True)

    def failure(self, message: str) -> None:
        if self.errors.is_terminal:
            self.errors.print(Text("error: ", style="bold red") + Text(message))
        else:
            click.echo(f"error: {message}", err=True)

    def problem(self, error: ApiError) -> None:
        """The server's refusal: its problem details (as JSON with ``--json``), on standard error."""
        problem = error.problem
        if self.as_json:
            body = {
                "type": problem.type,
                "title": problem.title,
                "status": problem.status,
                "detail": problem.detail,
                "instance": problem.instance,
                "error": problem.error,
                "message": problem.detail,
                "errors": [issue.to_json() for issue in problem.issues],
                **problem.extensions,
            }
            click.echo(dumps(body), err=True)
            return
        self.failure(str(error))


def mapping_fields(document: Mapping[str, Any], names: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, text)`` for the members of ``document`` that are set, in ``names``' order."""
    return [(name, str(document[name])) for name in names if document.get(name) not in (None, "", [], {})]
