"""What the client commands share: ``--url``, ``--token`` and ``--json``, the client they make, the way
refusals are reported (exit status 3), JSON arguments (``JSON``, ``@file``, ``-``) and shell completion of
names and ids from the server."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from machinery.cli.base import EXIT_API_ERROR
from machinery.cli.output import Output
from machinery.client import DEFAULT_URL, ApiError, Client, ClientError

#: Seconds a completion may spend asking the server (it runs at every tab).
COMPLETION_TIMEOUT = 2.0


class Session:
    """One client command's client and output."""

    def __init__(self, url: str, token: str | None, as_json: bool) -> None:
        try:
            self.client = Client(url, token or None)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--url/--token") from exc
        self.output = Output(as_json)

    def close(self) -> None:
        self.client.close()


def api_command(function: Callable[..., None]) -> Callable[..., None]:
    """Give a command ``--url``, ``--token`` and ``--json`` and call it with a :class:`Session`.

    The server's refusals and connection failures end the command with exit status 3 and the problem on
    standard error (as JSON with ``--json``).
    """

    @click.option(
        "--url",
        envvar="MACHINERY_URL",
        show_envvar=True,
        default=DEFAULT_URL,
        show_default=True,
        help="the server's base URL",
    )
    @click.option(
        "--token", envvar="MACHINERY_TOKEN", show_envvar=True, help="API token (Authorization: Bearer)"
    )
    @click.option("--json", "as_json", is_flag=True, help="print JSON, for scripts")
    @functools.wraps(function)
    def command(*args: Any, **kwargs: Any) -> None:
        url = str(kwargs.pop("url"))
        token = kwargs.pop("token")
        as_json = bool(kwargs.pop("as_json"))
        session = Session(url, None if token is None else str(token), as_json)
        try:
            function(session, *args, **kwargs)
        except ApiError as error:
            session.output.problem(error)
            sys.exit(EXIT_API_ERROR)
        except ClientError as error:
            session.output.failure(str(error))
            sys.exit(EXIT_API_ERROR)
        finally:
            session.close()

    return command


def read_json(value: str, what: str) -> Any:
    """A JSON argument: the text itself, ``@path`` (a file's content) or ``-`` (standard input)."""
    if value == "-":
        text = sys.stdin.read()
        source = "standard input"
    elif value.startswith("@"):
        path = Path(value[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=what) from exc
        source = str(path)
    else:
        text, source = value, "the argument"
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{source} is not JSON: {exc}", param_hint=what) from exc


def read_definitions(paths: tuple[str, ...]) -> list[dict[str, Any]]:
    """The definitions in ``-f`` files (``-`` is standard input): each file holds one object or a list."""
    found: list[dict[str, Any]] = []
    for path in paths:
        document = read_json(path if path == "-" else f"@{path}", "-f")
        items = document if isinstance(document, list) else [document]
        for item in items:
            if not isinstance(item, dict):
                raise click.BadParameter(f"{path}: expected an object or a list of objects", param_hint="-f")
            found.append(item)
    return found


# -- shell completion: names and ids from the server ------------------------------------------------------


def _completion_client(ctx: click.Context) -> Client:
    url = ctx.params.get("url") or os.environ.get("MACHINERY_URL") or DEFAULT_URL
    token = ctx.params.get("token") or os.environ.get("MACHINERY_TOKEN") or None
    return Client(str(url), token, timeout=COMPLETION_TIMEOUT)


def _complete(
    ctx: click.Context, incomplete: str, names: Callable[[Client], list[tuple[str, str]]]
) -> list[CompletionItem]:
    """Ask the server; a completion that fails offers nothing rather than an error at the prompt."""
    try:
        with _completion_client(ctx) as client:
            found = names(client)
    except (ClientError, ValueError):
        return []
    return [CompletionItem(value, help=text) for value, text in found if value.startswith(incomplete)]


def complete_workflow(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _complete(
        ctx, incomplete, lambda client: [(w.name, f"version {w.version}") for w in client.list_workflows()]
    )


def complete_service(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _complete(ctx, incomplete, lambda client: [(s.name, s.address) for s in client.list_services()])


def complete_event(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    def recent(client: Client) -> list[tuple[str, str]]:
        page = client.list_events(limit=50)
        return [(e.event_id, f"{e.workflow_name} {e.status.value}") for e in page.events]

    return _complete(ctx, incomplete, recent)
