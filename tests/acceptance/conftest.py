"""Fixtures of the acceptance tests: a real machinery server in a subprocess and the example services."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from examples.demo import DemoError, load_definition, machinery_process
from examples.demo import text_services as run_text_services
from tests.acceptance.cluster import Cluster, RecordingService

# PostgreSQL: the integration tests' fixtures (a fresh database per test from a migrated template).
from tests.integration.conftest import postgres_admin, postgres_template, postgres_url  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that restart the shared PostgreSQL server run after every other test of the session."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_postgres") is not None)


@pytest.fixture
def machinery_server(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Start fresh servers on demand: each call runs ``python -m machinery serve`` on a free port.

    Each server gets its own SQLite database under ``tmp_path`` and is terminated at teardown.
    The call returns the server's base URL once ``GET /healthcheck`` answers 204.
    """
    numbers = itertools.count(1)
    with ExitStack() as stack:

        def start() -> str:
            directory = tmp_path / f"machinery-{next(numbers)}"
            directory.mkdir()
            log_path = directory / "server.log"
            log = stack.enter_context(log_path.open("w"))
            try:
                return stack.enter_context(machinery_process(f"sqlite:///{directory / 'db.sqlite'}", log))
            except DemoError as error:
                pytest.fail(f"{error}\n--- server log\n{log_path.read_text()[-4000:]}")

        yield start


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per test module, with the example services running and registered and the seed's
    ``process-text`` workflow defined; yields its base URL. Tests that share it use names of their own."""
    from machinery.client import Client

    directory = tmp_path_factory.mktemp("seeded")
    with (
        (directory / "server.log").open("w") as log,
        machinery_process(f"sqlite:///{directory / 'db.sqlite'}", log) as url,
        run_text_services() as services,
        Client(url) as client,
    ):
        for kind, address in services.items():
            client.create_service({**load_definition(f"service-{kind}.json"), "address": f"{address}/event"})
        client.create_workflow(load_definition("workflow-process-text.json"))
        yield url


@pytest.fixture
def text_services() -> Iterator[dict[str, str]]:
    """The example services ``upper``, ``reverse`` and ``space-counter`` on free ports, by base URL."""
    with run_text_services() as urls:
        yield urls


@pytest.fixture
def recording_service() -> Iterator[RecordingService]:
    """A loopback service that records every task call and which worker process made it."""
    service = RecordingService()
    yield service
    service.close()


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:  # noqa: F811 (the fixture)
    """API and worker processes on a fresh PostgreSQL database (not started: set
    ``cluster.environment`` first, then ``cluster.start(workers)``); all are stopped at teardown."""
    processes = Cluster(postgres_url, tmp_path)
    try:
        yield processes
    finally:
        processes.stop()
