"""The ``machinery`` command as a user runs it: help lists the settings, serve stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from examples.demo import REPOSITORY, free_port, request, wait_until_healthy


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
