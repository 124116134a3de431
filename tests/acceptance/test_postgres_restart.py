"""PostgreSQL restarted while executions run: the API and the workers reconnect and every execution ends.

This restarts the machine's PostgreSQL server, which every PostgreSQL test shares: the
``restarts_postgres`` marker moves it after all other tests of the session (``tests/acceptance/conftest.py``),
and its fixture starts the server again and waits for it even when the test fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from examples.workflows import scale_out_definition
from tests.acceptance.cluster import (
    Call,
    Cluster,
    RecordingService,
    await_executions,
    check_executions,
    check_hold_histories,
    hold_definition,
    hold_output,
    register,
    start_executions,
)
from tests.integration.conftest import (
    ADMIN_URL,
    _create_database,
    _drop_database,
    _unavailable,
    database_url,
)

pytestmark = [pytest.mark.postgres, pytest.mark.restarts_postgres]

HELD = 30
FLOWING = 300
AFTER_RESTART = 50
#: How long the server may take to stop or to accept connections again.
SERVER_DEADLINE_SECONDS = 60.0


def _cluster_version() -> str | None:
    """The version of the machine's ``main`` cluster, when exactly one is installed."""
    versions = [path.name for path in Path("/etc/postgresql").glob("*") if (path / "main").is_dir()]
    return versions[0] if len(versions) == 1 else None


def _pg_ctlcluster(version: str, action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=SERVER_DEADLINE_SECONDS,
    )


def _ready() -> bool:
    url = urlparse(ADMIN_URL)
    probe = ["pg_isready", "-q", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432)]
    return subprocess.run(probe, timeout=10).returncode == 0


def _wait_ready() -> None:
    deadline = time.monotonic() + SERVER_DEADLINE_SECONDS
    while not _ready():
        assert time.monotonic() < deadline, "PostgreSQL did not accept connections again"
        time.sleep(0.1)  # pg_isready has no way to wait for the server


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh database, like the shared fixture's, made and dropped over connections of its own: the
    restart breaks the session's admin connection."""
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as admin:
        name = _create_database(admin, postgres_template)
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=10) as admin:
            _drop_database(admin, name)


@pytest.fixture
def restart_postgres(postgres_url: str) -> Iterator[Callable[[Callable[[], None]], None]]:
    """``restart(while_stopped)``: stop the local server, call ``while_stopped``, start it, wait until
    it accepts connections. At teardown the server is started if it is down, whatever happened."""
    version = _cluster_version()
    if urlparse(ADMIN_URL).hostname not in ("127.0.0.1", "localhost") or version is None:
        _unavailable("the test server is not this machine's single pg_ctlcluster cluster")
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_isready") is None:
        _unavailable("pg_ctlcluster and pg_isready are needed to restart the server")
    owner = Path(f"/etc/postgresql/{version}/main").stat().st_uid
    if os.geteuid() not in (0, owner):
        _unavailable(f"only root or {pwd.getpwuid(owner).pw_name} may restart the server")
    assert version is not None

    def restart(while_stopped: Callable[[], None]) -> None:
        _pg_ctlcluster(version, "stop")
        try:
            while_stopped()
        finally:
            _pg_ctlcluster(version, "start")
            _wait_ready()

    try:
        yield restart
    finally:
        if not _ready():
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                timeout=SERVER_DEADLINE_SECONDS,
            )
            _wait_ready()


@pytest.mark.timeout(240)
def test_postgres_restart_mid_run_every_execution_finishes_once(
    cluster: Cluster,
    recording_service: RecordingService,
    restart_postgres: Callable[[Callable[[], None]], None],
) -> None:
    cluster.environment.update({"MACHINERY_LEASE_SECONDS": "3", "MACHINERY_POLL_INTERVAL": "0.5"})
    cluster.start(workers=2)
    recording_service.owners.processes = cluster.workers()
    register(cluster.api_url, "held", hold_definition(recording_service.url))
    register(cluster.api_url, "flowing", scale_out_definition(recording_service.url))
    held_ids = start_executions(cluster.api_url, "held", list(range(HELD)))
    flowing_inputs = list(range(FLOWING))
    flowing_ids = start_executions(cluster.api_url, "flowing", flowing_inputs)

    def mid_run(calls: list[Call]) -> bool:
        held = sum(1 for call in calls if call.step == "hold")
        return held >= HELD and len(calls) >= HELD * 2 + FLOWING

    assert recording_service.wait_for(mid_run, 60), cluster.log_tails()
    finished_before = sum(1 for call in recording_service.snapshot() if call.step == "right")
    # The held calls are answered while the server is down: their results cannot be committed then.
    restart_postgres(recording_service.open_gate)
    assert finished_before < FLOWING, "every execution had finished before the restart"

    later_inputs = list(range(FLOWING, FLOWING + AFTER_RESTART))
    later_ids = start_executions(cluster.api_url, "flowing", later_inputs)
    deadline = time.monotonic() + 90
    records = await_executions(cluster.api_url, held_ids + flowing_ids + later_ids, deadline)

    try:
        for event_id, n in zip(held_ids, range(HELD), strict=True):
            assert records[event_id]["status"] == "SUCCEEDED", records[event_id]
            assert records[event_id]["output"] == hold_output(n)
        check_hold_histories(cluster.database_url, held_ids)
        check_executions(
            cluster.database_url, flowing_ids + later_ids, flowing_inputs + later_inputs, records
        )
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{cluster.log_tails()}") from None
    # Calls in flight during the outage may have been made again, always as the same attempt (the same
    # Idempotency-Key); no call became a new attempt.
    made = Counter((call.step, call.key) for call in recording_service.snapshot())
    per_step = Counter(step for step, _key in made)
    total = FLOWING + AFTER_RESTART
    assert per_step == {
        "first": HELD,
        "hold": HELD,
        "last": HELD,
        "fetch": total,
        "even": total // 2,
        "odd": total - total // 2,
        "left": total,
        "right": total,
    }
