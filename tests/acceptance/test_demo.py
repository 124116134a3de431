"""``python examples/demo.py`` prints the README's result."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
EXPECTED = '{"message": "! GNINROM EHT NI ESIR LLIW NUS EHT", "space_count": 7}\n'


def run_demo(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "examples/demo.py", *arguments],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


@pytest.mark.parametrize("arguments", [(), ("--asl",)], ids=["simple", "asl"])
def test_demo_starts_everything_and_prints_the_output(arguments: tuple[str, ...]) -> None:
    finished = run_demo(*arguments)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == EXPECTED


def test_demo_runs_twice_against_a_running_server(machinery_server: Callable[[], str]) -> None:
    server = machinery_server()
    for _ in range(2):
        finished = run_demo("--server", server)
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout == EXPECTED
