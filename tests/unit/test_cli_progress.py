"""How ``machinery run`` folds a history into rows of states and prints it when piped."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from machinery.cli.progress import LineDisplay, Progress
from machinery.client import Event, HistoryEvent
from machinery.status import ExecutionStatus

START = datetime(2026, 1, 1, tzinfo=UTC)


def entry(number: int, kind: str, milliseconds: int = 0, **details: Any) -> HistoryEvent:
    return HistoryEvent(number, number - 1, START + timedelta(milliseconds=milliseconds), kind, details)


def event(status: ExecutionStatus, finished_ms: int | None = None, **members: Any) -> Event:
    finished = None if finished_ms is None else START + timedelta(milliseconds=finished_ms)
    return Event("e1", "w1", "flow", 2, "e1", status, False, START, finished, **members)


MAP_RUN = [
    entry(1, "ExecutionStarted"),
    entry(2, "MapStateEntered", 0, name="Each"),
    *[entry(3 + i, "PassStateEntered", 10, name="Item") for i in range(3)],
    entry(6, "PassStateExited", 20, name="Item"),
    entry(7, "PassStateExited", 25, name="Item"),
    entry(8, "TaskFailed", 30, error="Boom", cause="third item"),
]


def test_states_fold_into_rows_with_counts_and_times() -> None:
    progress = Progress()
    for item in MAP_RUN:
        progress.add(item)
    each, item_row = progress.rows["Each"], progress.rows["Item"]
    assert (each.type, each.active, each.summary) == ("Map", 1, "")
    assert (item_row.type, item_row.entered, item_row.exited, item_row.summary) == ("Pass", 3, 2, "2/3 done")
    assert progress.errors == ["TaskFailed Boom: third item"]
    assert progress.last_id == 8

    progress.add(entry(9, "PassStateExited", 40, name="Item"))
    progress.add(entry(10, "MapStateExited", 50, name="Each"))
    assert item_row.summary == "3 times, 30 ms" and each.summary == "50 ms"


def test_states_still_running_when_it_fails_are_marked_failed() -> None:
    progress = Progress()
    for item in MAP_RUN:
        progress.add(item)
    progress.finish(event(ExecutionStatus.RUNNING))
    assert not any(row.failed for row in progress.rows.values())  # interrupted, not ended
    progress.finish(event(ExecutionStatus.FAILED, 60, error="Boom"))
    assert progress.rows["Each"].failed and progress.rows["Item"].failed


def test_piped_lines() -> None:
    stream = io.StringIO()
    display, progress = LineDisplay(stream), Progress()
    display.start(event(ExecutionStatus.RUNNING))
    for item in [*MAP_RUN[:3], MAP_RUN[5], MAP_RUN[7]]:
        display.history(progress, item, progress.add(item))
    display.close(progress, event(ExecutionStatus.FAILED, 1500, error="Boom", cause="third item"))
    assert stream.getvalue().splitlines() == [
        "event e1: flow version 2",
        "entered  Each (Map)",
        "entered  Item (Pass)",
        "finished Item (Pass) 10 ms",
        "error    TaskFailed Boom: third item",
        "FAILED in 1.5 s",
    ]
