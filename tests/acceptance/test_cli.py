"""The ``machinery`` command as a user runs it: help lists the settings, serve stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.demo import REPOSITORY, DemoError, free_port, request, wait_until_healthy


@pytest.mark.parametrize("command", [[], ["serve"], ["worker"]], ids=["machinery", "serve", "worker"])
def test_help_lists_every_setting(command: list[str]) -> None:
    from machinery.config import SETTINGS

    shown = subprocess.run(
        [sys.executable, "-m", "machinery", *command, "--help"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(f"MACHINERY_{name}" in shown for name in SETTINGS)


def test_serve_stops_cleanly_on_sigterm_while_busy(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "machinery", "serve", "--port", str(port), "--database-url",
             f"sqlite:///{tmp_path / 'db.sqlite'}"],
            cwd=REPOSITORY,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(base, process)
            definition = {
                "StartAt": "Wait",
                "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}},
            }
            assert request("POST", f"{base}/w", {"name": "long", "definition": definition})[0] == 201
            assert request("POST", f"{base}/e/long?wait=0", {})[0] == 202
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = log.read_text()
    assert "Traceback" not in text and "ERROR" not in text, text


def test_run_app_starts_the_development_server(tmp_path: Path) -> None:
    """``./run_app`` (the original project's helper) serves the API with a worker, in one serving process
    beside the reloader's watcher, and stops with it."""
    from machinery.client import Client

    port = free_port()
    log = tmp_path / "run_app.log"
    environment = {**os.environ, "MACHINERY_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    with log.open("w") as output:
        process = subprocess.Popen(
            ["./run_app", "--port", str(port)],
            cwd=REPOSITORY,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            try:
                wait_until_healthy(base, process)
            except DemoError as error:
                pytest.fail(f"{error}\n--- ./run_app's output\n{log.read_text()[-4000:]}")
            with Client(base) as client:
                definition = {
                    "StartAt": "Done",
                    "States": {"Done": {"Type": "Pass", "Result": 7, "End": True}},
                }
                client.create_workflow({"name": "dev", "definition": definition})
                assert client.start_event("dev", {}).output == 7  # a worker runs in the serving process
            os.killpg(process.pid, signal.SIGTERM)
            assert process.wait(15) in (0, -signal.SIGTERM)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    text = log.read_text()
    assert "Debug mode: on" in text and text.count("development server)") == 1, text
