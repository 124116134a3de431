"""Administration commands that work on the database directly, as ``migrate`` does: ``machinery tokens``
(API tokens) and ``machinery purge`` (retention on demand).

They need no running server (the first token has to be made before the server asks for one), and read the
same ``MACHINERY_*`` settings as the server: ``MACHINERY_DATABASE_URL`` and ``MACHINERY_SECRET_KEY``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from machinery.cli.base import SettingsCommand
from machinery.cli.server import database_url_option

if TYPE_CHECKING:
    from flask import Config

    from machinery.errors import MachineryError
    from machinery.storage.base import Storage

json_option = click.option("--json", "as_json", is_flag=True, help="print JSON instead of text")


def _config(database_url: str | None) -> Config:
    from flask import Config

    from machinery.config import DEFAULTS

    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env("MACHINERY")
    if database_url:
        config["DATABASE_URL"] = database_url
    return config


@contextmanager
def _storage(config: Config) -> Iterator[Storage]:
    from machinery.errors import MachineryError
    from machinery.storage import open_storage

    try:
        storage = open_storage(str(config["DATABASE_URL"]), pool_min_size=1, pool_max_size=2)
    except MachineryError as error:
        raise _failure(error) from error
    try:
        yield storage
    except MachineryError as error:
        raise _failure(error) from error
    finally:
        storage.close()


def _failure(error: MachineryError) -> click.ClickException:
    details = "".join(f"\n  {issue.field}: {issue.message}" for issue in error.issues)
    return click.ClickException(f"{error.message}{details}")


@click.group()
def tokens() -> None:
    """Manage API tokens (stored hashed: a token is shown once, when it is made).

    Once a token exists, every API request needs one (Authorization: Bearer <token>), except
    GET /healthcheck and the task-token callbacks. Scopes: read < write < admin.
    """


@tokens.command("create", cls=SettingsCommand)
@click.option(
    "--name", required=True, help="what the token is for (unique; letters, digits, ._@- and spaces)"
)
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "admin"]),
    default="read",
    show_default=True,
    help="read: GET routes; write: also create, change, start and stop; admin: also manage tokens",
)
@database_url_option
@json_option
def create(name: str, scope: str, database_url: str | None, as_json: bool) -> None:
    """Make a token and print it, with its AWS SigV4 key pair, once.

    The secret access key derives from the server key: when the server runs with MACHINERY_SECRET_KEY,
    run this command with the same setting, or the printed secret will not match the server's.
    """
    from machinery.auth.tokens import ServerKeys, create_token, issued_json

    config = _config(database_url)
    with _storage(config) as storage:
        issued = create_token(
            storage, ServerKeys(storage, str(config["SECRET_KEY"] or "")), name, scope, time.time()
        )
    if as_json:
        click.echo(json.dumps(issued_json(issued), indent=2))
        return
    click.echo(f"Created token {name!r} ({issued.record.token_id}), scope {scope}.")
    click.echo("Store these now: they are not shown again (only their hash is kept).\n")
    click.echo(f"  token              {issued.token}")
    click.echo(f"  access key id      {issued.record.access_key_id}")
    click.echo(f"  secret access key  {issued.secret_access_key}")
    click.echo(
        "\nSend the token as 'Authorization: Bearer <token>'; the key pair signs AWS SDK and CLI calls."
    )


@tokens.command("list")
@database_url_option
@json_option
def list_tokens(database_url: str | None, as_json: bool) -> None:
    """List the tokens (never their values)."""
    from machinery.auth.tokens import token_json

    with _storage(_config(database_url)) as storage:
        shown = [token_json(record) for record in storage.list_api_tokens()]
    if as_json:
        click.echo(json.dumps({"tokens": shown}, indent=2))
        return
    if not shown:
        click.echo("no tokens: the API is open to loopback callers only (machinery tokens create)")
        return
    rows = [("ID", "NAME", "SCOPE", "ACCESS KEY ID", "CREATED")]
    rows += [
        (str(t["token_id"]), str(t["name"]), str(t["scope"]), str(t["access_key_id"]), str(t["created_at"]))
        for t in shown
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@tokens.command("revoke")
@click.argument("token")
@database_url_option
def revoke(token: str, database_url: str | None) -> None:
    """Revoke TOKEN (its id or name): its bearer value, sessions and SigV4 keys stop working at once."""
    from machinery.auth.tokens import revoke_token

    with _storage(_config(database_url)) as storage:
        record = revoke_token(storage, token)
    click.echo(f"revoked token {record.name!r} ({record.token_id})")


def parse_moment(value: str) -> float:
    """``2024-05-01`` (midnight UTC) or an ISO 8601 time (``2024-05-01T12:00:00Z``; UTC when it names no
    offset) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2024-05-01) or an ISO 8601 time (2024-05-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@click.command(cls=SettingsCommand)
@click.option("--before", required=True, metavar="DATE", help="delete executions that finished before this")
@click.option(
    "--batch", type=click.IntRange(min=1), default=500, show_default=True, help="executions per transaction"
)
@database_url_option
def purge(before: str, batch: int, database_url: str | None) -> None:
    """Delete finished executions now, as retention (MACHINERY_RETENTION_DAYS) does over time.

    Each goes with its history, branches, work and child executions; running executions stay.
    """
    from machinery.runtime.retention import purge_finished

    cutoff = parse_moment(before)
    with _storage(_config(database_url)) as storage:
        deleted = purge_finished(storage, cutoff, batch)
    shown = datetime.fromtimestamp(cutoff, UTC).isoformat().replace("+00:00", "Z")
    click.echo(f"deleted {deleted} finished executions (finished before {shown})")
