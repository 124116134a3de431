"""The worker's and the express runner's event loop (MACHINERY_EVENT_LOOP), and timestamps."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import uvloop
from hypothesis import given
from hypothesis import strategies as st

from machinery.config import DEFAULTS, worker_settings
from machinery.control.events import Orchestrator
from machinery.engine.context import iso_time
from machinery.runtime import loops
from machinery.runtime.worker import WorkerSettings
from machinery.storage.memory import MemoryStorage


def test_uvloop_is_the_default_and_asyncio_can_be_chosen() -> None:
    assert worker_settings(DEFAULTS).event_loop == "uvloop"
    assert worker_settings({**DEFAULTS, "EVENT_LOOP": " AsyncIO "}).event_loop == "asyncio"
    fast, plain = loops.loop_factory("uvloop")(), loops.loop_factory("asyncio")()
    try:
        assert isinstance(fast, uvloop.Loop)
        assert not isinstance(plain, uvloop.Loop) and isinstance(plain, asyncio.AbstractEventLoop)
    finally:
        fast.close()
        plain.close()


def test_an_unknown_loop_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="MACHINERY_EVENT_LOOP: 'tokio' is not one of uvloop, asyncio"):
        worker_settings({**DEFAULTS, "EVENT_LOOP": "tokio"})


@pytest.mark.parametrize("kind", ["uvloop", "asyncio"])
def test_the_worker_and_the_express_runner_run_on_the_chosen_loop(kind: str) -> None:
    orchestrator = Orchestrator(MemoryStorage(), WorkerSettings(event_loop=kind, finish_poll_interval=0))
    orchestrator.start()
    try:
        assert orchestrator.worker is not None
        worker_loop, express_loop = orchestrator.worker._loop, orchestrator.express._loop
        assert worker_loop is not None and express_loop is not None
        assert isinstance(worker_loop, uvloop.Loop) == (kind == "uvloop")
        assert isinstance(express_loop, uvloop.Loop) == (kind == "uvloop")
        assert loops.run(asyncio.sleep(0, "done"), kind) == "done"
    finally:
        orchestrator.stop()


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_bad_event_loop_setting_stops_the_command_with_one_line(command: str, tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "machinery", command, "--database-url", f"sqlite:///{tmp_path}/x.db"],
        env={"MACHINERY_EVENT_LOOP": "tokio", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: MACHINERY_EVENT_LOOP: 'tokio' is not one of uvloop, asyncio"


def _strftime_iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# From the year 1000 on: before it, glibc's %Y does not pad the year to four digits (ISO 8601 does).
@given(st.floats(min_value=-30_610_224_000, max_value=253_402_300_799, allow_nan=False))
def test_iso_time_writes_what_strftime_writes(epoch: float) -> None:
    assert iso_time(epoch) == _strftime_iso(epoch)


@pytest.mark.parametrize(
    "epoch",
    [0.0, -0.5, 1.9999996, 1.0000004, -1.0000004, 1764600000.9995, 1764600000.99949, math.nextafter(2.0, 0)],
)
def test_iso_time_rounds_microseconds_as_datetime_does(epoch: float) -> None:
    assert iso_time(epoch) == _strftime_iso(epoch)
    assert iso_time(epoch) == iso_time(epoch)  # the cached second gives the same text
