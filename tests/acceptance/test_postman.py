"""The Postman collections pass under Newman against fresh servers.

The seed's collection is the proof of concept's functional contract and is read unmodified from
``../shared/seed`` (the test skips without it, except under CI); ours covers every route. Newman comes
from ``npm install --prefix .ci/node newman``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.shared import SHARED, require_shared

REPOSITORY = Path(__file__).resolve().parents[2]
NEWMAN = REPOSITORY / ".ci" / "node" / "node_modules" / ".bin" / "newman"
SEED_COLLECTION = SHARED / "seed" / "postman" / "Machinery.postman_collection.json"
OUR_COLLECTION = REPOSITORY / "postman" / "machinery.postman_collection.json"
OUR_ENVIRONMENT = REPOSITORY / "postman" / "loopback.postman_environment.json"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def newman() -> Path:
    if not NEWMAN.exists():
        if os.environ.get("MACHINERY_SKIP_NEWMAN") == "1":
            pytest.skip("newman is not installed and MACHINERY_SKIP_NEWMAN=1")
        pytest.fail(f"{NEWMAN} is missing: run `npm install --prefix .ci/node newman` in {REPOSITORY}")
    return NEWMAN


def host_port(url: str) -> str:
    return urlsplit(url).netloc


def run_newman(newman: Path, collection: Path, server: str, services: dict[str, str], *extra: str) -> None:
    variables = {
        "APP_URL": host_port(server),
        "UPPER_URL": host_port(services["upper"]),
        "REVERSE_URL": host_port(services["reverse"]),
        "SPACE_URL": host_port(services["space-counter"]),
    }
    command = [str(newman), "run", str(collection), *extra, "--color", "off", "--disable-unicode"]
    command += ["--timeout-request", "30000"]
    for name, value in variables.items():
        command += ["--env-var", f"{name}={value}"]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert finished.returncode == 0, f"newman failed:\n{finished.stdout}\n{finished.stderr}"


def test_the_seed_collection_passes(
    newman: Path, machinery_server: Callable[[], str], text_services: dict[str, str]
) -> None:
    # A fresh server: the seed expects `reverse` not to be registered.
    run_newman(newman, require_shared(SEED_COLLECTION), machinery_server(), text_services)


def test_our_collection_passes_twice_on_the_same_server(
    newman: Path, machinery_server: Callable[[], str], text_services: dict[str, str]
) -> None:
    server = machinery_server()
    for _ in range(2):
        run_newman(newman, OUR_COLLECTION, server, text_services, "--environment", str(OUR_ENVIRONMENT))
