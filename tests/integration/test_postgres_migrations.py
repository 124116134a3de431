"""PostgreSQL migrations: applying every migration in order gives exactly the fresh schema.

``migrate()`` gives an empty database ``schema.sql`` and an older one the migrations it lacks; both paths
must end in the same schema. A new migration therefore also changes ``schema.sql``; this test says where
they differ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from machinery.storage.postgres import PostgresStorage
from machinery.storage.queries import load_migrations, load_queries

pytestmark = pytest.mark.postgres

_COLUMNS = """
SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default, is_identity,
       identity_generation, character_maximum_length, numeric_precision
FROM information_schema.columns WHERE table_schema = 'public'
"""
_INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
_CONSTRAINTS = """
SELECT rel.relname, con.conname, con.contype, pg_get_constraintdef(con.oid)
FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
JOIN pg_namespace ns ON ns.oid = rel.relnamespace WHERE ns.nspname = 'public'
"""


def describe(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes and constraints, sorted so that creation order does not matter."""
    with psycopg.connect(url) as connection:
        return {
            name: sorted(connection.execute(query).fetchall(), key=repr)
            for name, query in (("columns", _COLUMNS), ("indexes", _INDEXES), ("constraints", _CONSTRAINTS))
        }


def applied_versions(url: str) -> list[int]:
    with psycopg.connect(url) as connection:
        return [
            row[0] for row in connection.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]


def test_migration_files_are_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _sql in load_migrations("postgres")]
    assert versions == list(range(1, len(versions) + 1))


def test_applying_all_migrations_equals_the_fresh_schema(postgres_empty_database: Callable[[], str]) -> None:
    fresh_url, migrated_url = postgres_empty_database(), postgres_empty_database()
    fresh = PostgresStorage(fresh_url)
    fresh.migrate()  # an empty database: schema.sql
    fresh.close()

    # The oldest database there is: the first migration alone, recorded as applied. migrate() then adds
    # the rest one by one, as an upgrade in the field would.
    queries = load_queries("postgres")
    (first_version, first_sql), *_later = load_migrations("postgres")
    with psycopg.connect(migrated_url) as connection:
        connection.execute(queries["migrations_table"])
        connection.execute(first_sql)
        connection.execute(queries["migration_record"], {"version": first_version, "now": 0.0})
    upgraded = PostgresStorage(migrated_url)
    upgraded.migrate()
    upgraded.close()

    migrated, expected = describe(migrated_url), describe(fresh_url)
    differences = {
        kind: {
            "only after the migrations": sorted(set(migrated[kind]) - set(expected[kind]), key=repr),
            "only in schema.sql": sorted(set(expected[kind]) - set(migrated[kind]), key=repr),
        }
        for kind in expected
        if migrated[kind] != expected[kind]
    }
    assert not differences, f"migrations and schema.sql disagree: {differences}"
    every_version = [version for version, _sql in load_migrations("postgres")]
    assert applied_versions(fresh_url) == applied_versions(migrated_url) == every_version


def test_migrate_twice_changes_nothing(postgres_empty_database: Callable[[], str]) -> None:
    url = postgres_empty_database()
    storage = PostgresStorage(url)
    storage.migrate()
    before = describe(url)
    storage.migrate()
    storage.close()
    assert describe(url) == before
    assert applied_versions(url) == [version for version, _sql in load_migrations("postgres")]


def test_concurrent_migrations_apply_each_version_once(postgres_empty_database: Callable[[], str]) -> None:
    """Several processes starting at once on an empty database: the advisory lock serialises them."""
    url = postgres_empty_database()
    storages = [PostgresStorage(url, pool_min_size=1, pool_max_size=1) for _ in range(4)]
    barrier = threading.Barrier(len(storages))

    def migrate(storage: PostgresStorage) -> None:
        barrier.wait()
        storage.migrate()

    try:
        with ThreadPoolExecutor(len(storages)) as pool:
            for future in [pool.submit(migrate, storage) for storage in storages]:
                future.result(timeout=60)
    finally:
        for storage in storages:
            storage.close()
    assert applied_versions(url) == [version for version, _sql in load_migrations("postgres")]
