"""Named SQL queries kept in ``.sql`` files, loaded with :mod:`importlib.resources`."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Every ``-- name: x`` block of ``sql/<dialect>/queries.sql``, by name."""
    text = resources.files("machinery.storage").joinpath("sql", dialect, "queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """The ordered migrations of a dialect as ``(version, sql)``."""
    folder = resources.files("machinery.storage").joinpath("sql", dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text("utf-8")))
    return sorted(found)
