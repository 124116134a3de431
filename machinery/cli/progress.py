"""Following an execution: its history read as it grows, shown state by state.

:class:`Progress` folds history events into one row per state (entered, finished, failed); a
:class:`LiveDisplay` redraws them as a table on a terminal (rich's ``Live``), a :class:`LineDisplay`
prints one plain line per step when standard error is not a terminal. :func:`follow` drives either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from machinery.cli.output import duration
from machinery.client import Client, Event, HistoryEvent
from machinery.status import ExecutionStatus

#: Seconds the follower waits on the event between two reads of its history: the long-poll returns at
#: once when the event ends, so this is only how stale the display may be while it runs.
POLL_SECONDS = 0.5
#: History events read per request while catching up with a long history.
HISTORY_PAGE = 1000

#: Endings of the history event types that tell of a step gone wrong (a task failed, timed out...).
_ERROR_SUFFIXES = ("Failed", "TimedOut", "Aborted")
_STATUS_STYLE = {
    ExecutionStatus.RUNNING: "yellow",
    ExecutionStatus.SUCCEEDED: "green",
    ExecutionStatus.FAILED: "red",
    ExecutionStatus.TIMED_OUT: "red",
    ExecutionStatus.ABORTED: "magenta",
}


@dataclass
class StateRow:
    """One state of the machine as the history tells it so far (a Map's iterations add up in one row)."""

    name: str
    type: str
    entered: int = 0
    exited: int = 0
    first_entered: datetime | None = None
    last_exited: datetime | None = None
    failed: bool = False

    @property
    def active(self) -> int:
        return self.entered - self.exited

    @property
    def elapsed(self) -> str:
        if self.first_entered is None or self.last_exited is None or self.active:
            return ""
        return duration(self.last_exited - self.first_entered)

    @property
    def summary(self) -> str:
        """How long the state took; for a state entered several times (a Map's iterations, a loop), how
        many times, and how many of those are done while some run."""
        if self.entered <= 1:
            return self.elapsed
        if self.active:
            return f"{self.exited}/{self.entered} done"
        return f"{self.entered} times, {self.elapsed}"


class Progress:
    """The states of one execution, in the order they were first entered, and its errors."""

    def __init__(self) -> None:
        self.rows: dict[str, StateRow] = {}
        self.last_id = 0
        self.errors: list[str] = []

    def add(self, entry: HistoryEvent) -> StateRow | None:
        """Take one history event; returns the row it changed, if any."""
        self.last_id = max(self.last_id, entry.id)
        name, kind = entry.state_name, entry.state_type
        if name is not None and kind is not None:
            row = self.rows.setdefault(name, StateRow(name, kind))
            if entry.state_entered:
                row.entered += 1
                row.first_entered = row.first_entered or entry.timestamp
            else:
                row.exited += 1
                row.last_exited = entry.timestamp
            return row
        if is_step_error(entry):
            self.errors.append(error_text(entry))
        return None

    def finish(self, event: Event) -> None:
        """The execution ended: states still active did not finish."""
        if not event.running and not event.succeeded:
            for row in self.rows.values():
                row.failed = row.failed or row.active > 0


def is_step_error(entry: HistoryEvent) -> bool:
    """A step went wrong (a task failed or timed out: retried, caught, or the end of the execution)."""
    return entry.type.endswith(_ERROR_SUFFIXES) and not entry.type.startswith("Execution")


def error_text(entry: HistoryEvent) -> str:
    error = entry.details.get("error")
    cause = entry.details.get("cause")
    text = entry.type if error is None else f"{entry.type} {error}"
    return f"{text}: {cause}" if cause else text


class Display(Protocol):
    def start(self, event: Event) -> None: ...
    def history(self, progress: Progress, entry: HistoryEvent, row: StateRow | None) -> None: ...
    def refresh(self, progress: Progress, event: Event) -> None: ...
    def close(self, progress: Progress, event: Event) -> None: ...


class LineDisplay:
    """One plain line per step (standard error not a terminal, or a log)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, event: Event) -> None:
        self._line(f"event {event.event_id}: {event.workflow_name} version {event.workflow_version}")

    def history(self, progress: Progress, entry: HistoryEvent, row: StateRow | None) -> None:
        if row is not None:
            if entry.state_entered:
                self._line(f"entered  {row.name} ({row.type})")
            else:
                took = row.elapsed if row.entered == 1 else f"{row.exited}/{row.entered} done"
                self._line(f"finished {row.name} ({row.type}){f' {took}' if took else ''}")
        elif is_step_error(entry):
            self._line(f"error    {error_text(entry)}")

    def refresh(self, progress: Progress, event: Event) -> None:
        pass

    def close(self, progress: Progress, event: Event) -> None:
        took = (
            "" if event.finished_at is None else f" in {duration(event.finished_at - event.acknowledged_at)}"
        )
        self._line(f"{event.status.value}{took}")


class LiveDisplay:
    """A table of the states redrawn in place on a terminal, with a spinner on those running."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.started = time.monotonic()

    def start(self, event: Event) -> None:
        self.started = time.monotonic()
        self.live = Live(self._render(Progress(), event), console=self.console, refresh_per_second=10)
        self.live.start()

    def history(self, progress: Progress, entry: HistoryEvent, row: StateRow | None) -> None:
        pass  # drawn by refresh, once per page of history

    def refresh(self, progress: Progress, event: Event) -> None:
        if self.live is not None:
            self.live.update(self._render(progress, event))

    def close(self, progress: Progress, event: Event) -> None:
        if self.live is not None:
            self.live.update(self._render(progress, event))
            self.live.stop()

    def _render(self, progress: Progress, event: Event) -> RenderableType:
        title = Text.assemble(
            (f"{event.workflow_name}", "bold"),
            f" version {event.workflow_version}  ",
            (event.event_id, "dim"),
        )
        table = Table.grid(padding=(0, 2))
        for _ in range(4):
            table.add_column()
        for row in progress.rows.values():
            table.add_row(_marker(row, event), row.name, Text(row.type, style="dim"), row.summary)
        parts: list[RenderableType] = [title, table]
        parts += [Text(f"error  {text}", style="red") for text in progress.errors[-3:]]
        parts.append(_Status(event, self.started))
        return Group(*parts)


class _Status:
    """The execution's status line; while it runs, the time since the follower started, redrawn at each
    refresh of the live display."""

    def __init__(self, event: Event, started: float) -> None:
        self.event = event
        self.started = started

    def __rich__(self) -> Text:
        event = self.event
        status = Text(event.status.value, style=_STATUS_STYLE.get(event.status, ""))
        if event.finished_at is not None:
            status.append(f" in {duration(event.finished_at - event.acknowledged_at)}")
        elif event.running:
            status.append(f" {duration(time.monotonic() - self.started)}", style="dim")
        return status


def _marker(row: StateRow, event: Event) -> RenderableType:
    if row.failed:
        return Text("✗", style="red")
    if row.active and event.running:
        return Spinner("dots", style="yellow")
    return Text("✓", style="green")


def follow(client: Client, event: Event, display: Display, after: int = 0) -> Event:
    """Show ``event`` until it ends (its history past the id ``after``); returns its final record.

    Reads the history past the last event seen, then long-polls the event for :data:`POLL_SECONDS`
    (which returns as soon as it ends), until a read made after the end.
    """
    progress = Progress()
    progress.last_id = after
    display.start(event)
    try:
        while True:
            after = progress.last_id
            while True:
                page = client.history_page(event.event_id, after=after, limit=HISTORY_PAGE)
                for entry in page.events:
                    if entry.id > progress.last_id:  # a server without paging answers from the start
                        display.history(progress, entry, progress.add(entry))
                display.refresh(progress, event)
                if page.next_cursor is None:
                    break
                after = page.next_cursor
            if not event.running:
                break
            event = client.get_event(event.event_id, wait=POLL_SECONDS)
    finally:
        progress.finish(event)
        display.close(progress, event)
    return event
