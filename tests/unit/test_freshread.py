"""FreshRead: calls made at the same time share a read, and none gets a value read before it asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from machinery.storage.freshread import FreshRead


class GatedReads:
    """A read that counts its runs and, while ``gate`` is closed, holds each run until it opens."""

    def __init__(self) -> None:
        self.runs = 0
        self.gate = threading.Event()
        self.gate.set()
        self.running = threading.Event()
        self.fail_run: int | None = None

    def __call__(self) -> int:
        self.runs += 1
        number = self.runs
        self.running.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if number == self.fail_run:
            raise ConnectionError(f"run {number} failed")
        return number


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def test_calls_one_after_another_each_read_afresh() -> None:
    reads = GatedReads()
    fresh = FreshRead(reads)
    assert [fresh.get(), fresh.get(), fresh.get()] == [1, 2, 3]
    assert reads.runs == 3


def test_calls_that_arrive_during_a_read_share_the_next_one() -> None:
    reads = GatedReads()
    reads.gate.clear()
    fresh = FreshRead(reads)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(fresh.get)
        assert reads.running.wait(10)
        # These began after run 1 started: its value may predate them, so run 2 serves them all.
        later = [pool.submit(fresh.get) for _ in range(3)]
        wait_until(lambda: fresh.waiting == 3)
        reads.gate.set()
        assert first.result(10) == 1
        assert [f.result(10) for f in later] == [2, 2, 2]
    assert reads.runs == 2


def test_a_failed_read_fails_every_call_it_served_and_the_next_call_reads_again() -> None:
    reads = GatedReads()
    reads.gate.clear()
    reads.fail_run = 2
    fresh = FreshRead(reads)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(fresh.get)
        assert reads.running.wait(10)
        later: list[Future[int]] = [pool.submit(fresh.get) for _ in range(2)]
        wait_until(lambda: fresh.waiting == 2)
        reads.gate.set()
        assert first.result(10) == 1
        for future in later:
            with pytest.raises(ConnectionError, match="run 2 failed"):
                future.result(10)
    assert reads.runs == 2
    assert fresh.get() == 3
