"""SQLite-only behaviour: processes that start together on one file.

``machinery serve --processes N`` and several ``machinery migrate`` commands open one fresh file at the
same moment: the migration runner must apply each migration once and none may fail.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from machinery.storage.base import WORK_TIMER, ApiTokenRecord, WorkItem
from machinery.storage.queries import load_migrations
from machinery.storage.sqlite import SQLiteStorage

MIGRATORS = 6
ROUNDS = 10


def applied_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as connection:
        return [
            row[0] for row in connection.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_migrators_on_a_fresh_file_apply_each_migration_once(tmp_path: Path, round_: int) -> None:
    path = tmp_path / f"fresh-{round_}.db"
    barrier = threading.Barrier(MIGRATORS)

    def migrate() -> None:
        storage = SQLiteStorage(str(path))
        try:
            barrier.wait(timeout=30)
            storage.migrate()
        finally:
            storage.close()

    with ThreadPoolExecutor(MIGRATORS) as pool:
        for future in [pool.submit(migrate) for _ in range(MIGRATORS)]:
            future.result(timeout=60)
    assert applied_versions(path) == [version for version, _sql in load_migrations("sqlite")]


def test_the_applied_migrations_are_read_under_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a migrator decides what to apply, no other connection can start writing: a second migrator
    waits, then finds everything applied (reading first and locking later let two apply migration 1)."""
    import machinery.storage.sqlite as sqlite_module

    path = tmp_path / "fresh.db"
    probes: list[str] = []

    def load_while_probing(dialect: str) -> list[tuple[int, str]]:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            probes.append("another connection could write")
        except sqlite3.OperationalError as exc:
            probes.append(str(exc))
        finally:
            probe.close()
        return load_migrations(dialect)

    monkeypatch.setattr(sqlite_module, "load_migrations", load_while_probing)
    storage = SQLiteStorage(str(path))
    try:
        storage.migrate()
    finally:
        storage.close()
    assert probes == ["database is locked"]


def test_concurrent_migrate_commands_on_a_fresh_file_all_succeed(tmp_path: Path) -> None:
    """The issue's reproduction: four ``machinery migrate`` processes started together, three times."""
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'cli-{round_}.db'}"
        env = {**os.environ, "MACHINERY_DATABASE_URL": url}
        commands = [
            subprocess.Popen(
                [sys.executable, "-m", "machinery", "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(4)
        ]
        results = [command.communicate(timeout=120) for command in commands]
        failures = [
            err.decode() for command, (_out, err) in zip(commands, results, strict=True) if command.returncode
        ]
        assert not failures, failures
        assert applied_versions(tmp_path / f"cli-{round_}.db") == [v for v, _sql in load_migrations("sqlite")]


def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Migrations run in one transaction: a broken one rolls back every statement before it."""
    import machinery.storage.sqlite as sqlite_module

    good = load_migrations("sqlite")
    broken = [*good, (len(good) + 1, "CREATE TABLE extra (x INTEGER);\nCREATE TABLE broken (;\n")]
    monkeypatch.setattr(sqlite_module, "load_migrations", lambda _dialect: broken)
    storage = SQLiteStorage(str(tmp_path / "broken.db"))
    try:
        with pytest.raises(Exception, match=f"migration {len(good) + 1} failed"):
            storage.migrate()
    finally:
        storage.close()
    with sqlite3.connect(tmp_path / "broken.db") as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "extra" not in tables and "services" not in tables


def test_cached_definitions_follow_changes_made_by_another_process(tmp_path: Path) -> None:
    """Services and workflows are cached; a change committed through another connection (another
    process) is seen on the next lookup, a change made here at once."""
    path = str(tmp_path / "shared.db")
    here, there = SQLiteStorage(path), SQLiteStorage(path)
    try:
        here.migrate()
        there.migrate()
        here.upsert_service("upper", "http://127.0.0.1:1/a", [], [], {}, 1.0)
        assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
        assert there.get_service("upper") is there.get_service("upper")  # cached
        here.upsert_service("upper", "http://127.0.0.1:1/b", [], [], {}, 2.0)
        assert there.get_service("upper").address == "http://127.0.0.1:1/b"  # type: ignore[union-attr]
        assert there.get_workflow("flow") is None
        here.save_workflow("flow", {}, {"StartAt": "A"}, [], False, 3.0)
        assert there.get_workflow("flow").version == 1  # type: ignore[union-attr]
        there.save_workflow("flow", {}, {"StartAt": "B"}, [], False, 4.0)
        assert there.get_workflow("flow").definition == {"StartAt": "B"}  # type: ignore[union-attr]
        assert here.get_workflow("flow").version == 2  # type: ignore[union-attr]
        assert here.get_workflow("flow", 1).definition == {"StartAt": "A"}  # type: ignore[union-attr]
        service = here.get_service("upper")
        assert service is not None
        there.delete_service(service.service_id)
        assert here.get_service("upper") is None
        # Work committed elsewhere moves SQLite's data_version but not the generation: the cache stays.
        cached = here.get_workflow("flow")
        there.add_work([WorkItem("exec", "exec", WORK_TIMER, 5.0)])
        assert here.get_workflow("flow") is cached
    finally:
        here.close()
        there.close()


def test_a_token_created_by_another_process_closes_an_open_server_at_once(tmp_path: Path) -> None:
    """Whether any API token exists is asked on every request of an open server and cached with the
    definitions: another process's first token (and its revocation) is seen on the next question."""
    path = str(tmp_path / "shared.db")
    here, there = SQLiteStorage(path), SQLiteStorage(path)
    try:
        here.migrate()
        assert not there.has_api_tokens()
        statements: list[str] = []
        there._db.set_trace_callback(statements.append)
        assert not there.has_api_tokens()
        assert statements == []  # cached: nothing read
        here.create_api_token(ApiTokenRecord("tok_1", "ci", "write", "hash-1", "MKIA0000000000000001", 1.0))
        assert there.has_api_tokens()
        here.delete_api_token("tok_1")
        assert not there.has_api_tokens()
    finally:
        here.close()
        there.close()


def test_a_cached_lookup_reads_nothing_until_a_process_moves_the_shared_counter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock file holds a counter that a process moves after committing a definition change: while
    it stands still, a cached lookup runs no statement; a writer that died between its commit and the
    counter's move is caught by the recheck every GENERATION_RECHECK_SECONDS."""
    import machinery.storage.sqlite as sqlite_module

    path = str(tmp_path / "shared.db")
    here, there = SQLiteStorage(path), SQLiteStorage(path)
    statements: list[str] = []
    try:
        here.migrate()
        here.upsert_service("upper", "http://127.0.0.1:1/a", [], [], {}, 1.0)
        assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
        there._db.set_trace_callback(statements.append)
        for _ in range(3):
            assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
        here.add_work([WorkItem("exec", "exec", WORK_TIMER, 5.0)])  # not a definition: the counter stays
        assert there.get_service("upper").address == "http://127.0.0.1:1/a"  # type: ignore[union-attr]
        assert statements == []
        here.upsert_service("upper", "http://127.0.0.1:1/b", [], [], {}, 2.0)
        assert there.get_service("upper").address == "http://127.0.0.1:1/b"  # type: ignore[union-attr]
        assert statements  # the counter moved: the generation was read, then the service
        # A writer killed after its commit, before the counter moved: seen at the next recheck.
        with sqlite3.connect(path) as raw:
            raw.execute("UPDATE services SET body = json_set(body, '$.address', 'http://127.0.0.1:1/c')")
            raw.execute("UPDATE definitions_generation SET value = value + 1 WHERE id = 1")
        assert there.get_service("upper").address == "http://127.0.0.1:1/b"  # type: ignore[union-attr]
        monkeypatch.setattr(sqlite_module, "GENERATION_RECHECK_SECONDS", 0.0)
        assert there.get_service("upper").address == "http://127.0.0.1:1/c"  # type: ignore[union-attr]
    finally:
        here.close()
        there.close()


def _fill_up(storage: SQLiteStorage) -> None:
    """Cap the file at its current size, so that the next writes find the disk full (SQLITE_FULL)."""
    pages = storage._db.execute("PRAGMA page_count").fetchone()[0]
    storage._db.execute(f"PRAGMA max_page_count = {int(pages)}")


def test_a_full_disk_is_a_clear_storage_full_error_and_nothing_is_damaged(tmp_path: Path) -> None:
    """Found by bench/chaos.py on a full tmpfs: SQLite rolls a transaction back by itself on SQLITE_FULL,
    the ROLLBACK that followed failed ("no transaction is active"), and the raw sqlite3 error became a 500.
    """
    from machinery.errors import StorageError, StorageFull

    storage = SQLiteStorage(str(tmp_path / "full.db"))
    storage.migrate()
    workflow, _ = storage.save_workflow("wf", {"name": "wf"}, {"StartAt": "A", "States": {}}, [], False, 1.0)
    _fill_up(storage)
    big = "x" * 100_000
    with pytest.raises(StorageFull) as raised:
        for n in range(100):
            storage.save_workflow(f"wf-{n}", {"name": big}, {"StartAt": "A", "States": {}}, [], False, 1.0)
    assert isinstance(raised.value, StorageError) and raised.value.status == 507
    assert "full" in raised.value.message
    assert not storage._db.in_transaction
    # What was stored is intact and readable, and writing works again once there is room.
    assert storage.get_workflow("wf") == workflow
    assert storage._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    storage._db.execute("PRAGMA max_page_count = 1073741823")
    storage.save_workflow("after", {"name": "after"}, {"StartAt": "A", "States": {}}, [], False, 2.0)
    assert storage.get_workflow("after") is not None
    storage.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only: elsewhere the test skips; the max_page_count test above still runs)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_commit_that_finds_the_disk_full_is_a_storage_full_error(small_tmpfs: Path) -> None:
    """The WAL append at COMMIT is where a real full disk shows first (see the test above)."""
    from machinery.errors import StorageFull

    storage = SQLiteStorage(str(small_tmpfs / "full.db"))
    storage.migrate()
    stored: list[str] = []
    with pytest.raises(StorageFull):
        for n in range(10_000):
            storage.save_workflow(
                f"wf-{n}", {"pad": "x" * 4000}, {"StartAt": "A", "States": {}}, [], False, 1.0
            )
            stored.append(f"wf-{n}")
    assert stored and not storage._db.in_transaction
    assert [storage.get_workflow(name) is not None for name in stored[-3:]] == [True] * 3
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)
    storage.save_workflow("after", {"pad": "x"}, {"StartAt": "A", "States": {}}, [], False, 2.0)
    assert storage._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    storage.close()
