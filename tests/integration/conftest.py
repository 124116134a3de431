"""Fixtures of the integration tests: real databases, one fresh database per test.

PostgreSQL: the server named by ``MACHINERY_TEST_POSTGRES_URL`` (default: trust auth on 127.0.0.1:5432,
database ``test``). Each test gets ``CREATE DATABASE machinery_t_<random> TEMPLATE <migrated template>``,
dropped at teardown. Without a reachable server the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlparse

import pytest

if TYPE_CHECKING:
    from psycopg import Connection

ADMIN_URL = os.environ.get("MACHINERY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def database_url(name: str) -> str:
    """The admin URL pointing at another database of the same server."""
    return urlparse(ADMIN_URL)._replace(path=f"/{name}").geturl()


def _template_name() -> str:
    """Named after the schema it holds, so a schema change builds a new template and reruns reuse it."""
    from machinery.storage.postgres import load_schema
    from machinery.storage.queries import load_migrations

    digest = hashlib.sha256(load_schema().encode())
    for version, sql in load_migrations("postgres"):
        digest.update(f"{version}:{sql}".encode())
    return f"machinery_template_{digest.hexdigest()[:12]}"


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the PostgreSQL tests", pytrace=False)
    pytest.skip(f"{reason}: start the server or set MACHINERY_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Connection[Any]]:
    """An autocommit connection to the server's admin database (CREATE/DROP DATABASE)."""
    try:
        import psycopg
    except ImportError as exc:
        _unavailable(f"psycopg is not installed ({exc}); pip install -e '.[dev]'")
    try:
        connection = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc})")
    with connection:
        yield connection


@pytest.fixture(scope="session")
def postgres_template(postgres_admin: Connection[Any]) -> str:
    """A migrated database to copy: built once per schema, under a lock shared by concurrent test runs."""
    from psycopg import sql

    from machinery.storage.postgres import PostgresStorage

    name = _template_name()
    postgres_admin.execute("SELECT pg_advisory_lock(hashtext('machinery.test_template'))")
    try:
        if postgres_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            # Built under another name and renamed when complete: a crash never leaves a half template.
            building = f"{name}_{uuid.uuid4().hex[:8]}"
            postgres_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
            storage = PostgresStorage(database_url(building), pool_min_size=1, pool_max_size=1)
            try:
                storage.migrate()
            finally:
                storage.close()
            postgres_admin.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(name)
                )
            )
        _drop_abandoned_databases(postgres_admin)
    finally:
        postgres_admin.execute("SELECT pg_advisory_unlock(hashtext('machinery.test_template'))")
    return name


def _drop_abandoned_databases(admin: Connection[Any]) -> None:
    """Test databases over an hour old: their session was killed before its teardown (a test times out
    long before that)."""
    names = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'machinery_t_%'").fetchall()
    for (name,) in names:
        created = name.split("_")[2]
        if created.isdigit() and int(created) < time.time() - 3600:
            _drop_database(admin, name)


def _create_database(admin: Connection[Any], template: str) -> str:
    from psycopg import sql

    # The creation time in the name lets a later session drop what a killed one left behind.
    name = f"machinery_t_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    admin.execute(
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    )
    return name


def _drop_database(admin: Connection[Any], name: str) -> None:
    from psycopg import sql

    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url(postgres_admin: Connection[Any], postgres_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated, empty PostgreSQL database for this test only."""
    name = _create_database(postgres_admin, postgres_template)
    try:
        yield database_url(name)
    finally:
        _drop_database(postgres_admin, name)


@pytest.fixture
def postgres_empty_database(postgres_admin: Connection[Any]) -> Iterator[Callable[[], str]]:
    """Make databases with no schema at all (for migration tests): each call returns a new one's URL."""
    made: list[str] = []

    def make() -> str:
        made.append(_create_database(postgres_admin, "template0"))
        return database_url(made[-1])

    try:
        yield make
    finally:
        for name in made:
            _drop_database(postgres_admin, name)
