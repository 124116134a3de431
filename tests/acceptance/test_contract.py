"""Contract test: schemathesis runs every operation of ``/openapi.json`` against a live server.

The server is a real ``machinery serve`` with the seed's example services registered (so the document's
examples, ``process-text`` and ``upper``, name real resources) and its outbound calls restricted to
``localhost`` by name: whatever service addresses schemathesis invents are refused at registration
(409), so nothing leaves the machine. Every phase runs: the document's examples, the coverage and
fuzzing phases (positive and negative data), and the stateful phase, which follows the document's links
(register a service → define a workflow calling it → send an event → read it, its history, stop it).
Checks: no server error, every status, content type, header and body as documented, invalid data
refused. ``positive_data_acceptance`` is off: data the schemas allow is still refused by rules beyond
them (an unknown service, a definition that is not valid ASL), each a documented 409.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from examples.demo import machinery_process, run_example, text_services

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")

pytestmark = pytest.mark.timeout(600)


def test_every_operation_keeps_the_documented_contract(tmp_path: Path) -> None:
    settings = {
        "MACHINERY_ALLOWED_TARGETS": "localhost",
        "MACHINERY_TIME_SCALE": "0",  # Wait states and retries end at once: long polls return quickly
        "MACHINERY_SYNC_WAIT": "5",
    }
    log_path = tmp_path / "server.log"
    with (
        log_path.open("w") as log,
        text_services() as services,
        machinery_process(f"sqlite:///{tmp_path / 'db.sqlite'}", log, settings=settings) as server,
    ):
        local = {name: url.replace("127.0.0.1", "localhost") for name, url in services.items()}
        assert run_example(server, local)["message"] == "! GNINROM EHT NI ESIR LLIW NUS EHT"
        # The first token closes the loopback server: every operation then needs it, as documented (and
        # schemathesis checks that a request without it is refused).
        token = _create_token(server)
        report_dir = tmp_path / "report"
        command = [
            str(SCHEMATHESIS),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            # Every operation: by default schemathesis leaves out the one that serves the document.
            "--include-path-regex",
            "^/",
            "--report",
            "json",
            "--report-dir",
            str(report_dir),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=tmp_path)
        output = result.stdout[-20000:] + result.stderr[-4000:]
        assert result.returncode == 0, f"{output}\n--- server log\n{log_path.read_text()[-4000:]}"
        with urllib.request.urlopen(f"{server}/openapi.json") as response:  # open: it holds no data
            document = json.load(response)

    [report_path] = report_dir.glob("json-*.json")
    report = json.loads(report_path.read_text())
    operations = sum(len(item) for item in document["paths"].values())
    assert report["operations"]["tested"] == report["operations"]["total"] == operations
    assert all(phase["status"] == "success" for phase in report["phases"].values()), report["phases"]
    assert report["test_cases"]["with_failures"] == 0
    assert report["test_cases"]["generated"] >= 20 * operations
    links = next((line.strip() for line in output.splitlines() if "API Links:" in line), "")
    print(
        f"schemathesis: {operations} operations, {report['test_cases']['generated']} test cases, "
        f"{report['running_time']:.0f} s; {links}"
    )


def _create_token(server: str) -> str:
    request = urllib.request.Request(
        f"{server}/tokens",
        data=json.dumps({"name": "contract", "scope": "admin"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        token: str = json.load(response)["token"]
    return token
