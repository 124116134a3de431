"""Schedules: when they tick, what each tick starts, and firing a schedule's cursor exactly once.

A schedule is a cron expression (5 fields, or 6 with seconds first, in a time zone) or a rate
(``rate(5 minutes)``). Its runtime state lives in one work item, its *cursor* (kind
:data:`~machinery.storage.base.WORK_SCHEDULE`, pseudo execution id ``schedule:<id>``), due at the next
tick. A worker claims the cursor under a lease like any work; :func:`fire_schedule` then starts the due
ticks' executions, consumes the cursor under its fence and inserts the next one, all in one transaction
(:meth:`~machinery.storage.base.Storage.start_executions`). Each tick's execution id derives from the
schedule and the tick (:func:`tick_execution_id`), so a tick repeated after a crash creates nothing:
exactly one execution per tick, whatever the number of workers.

The cron library is croniter (maintained under pallets-eco): it takes 5- and 6-field expressions,
``@hourly``-style aliases, ranges, steps, ``L`` and ``#``, works in any time zone and handles the days
daylight saving time starts or ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from machinery.errors import FieldIssue, InvalidEventData, LeaseLost
from machinery.runtime.starts import check_event_data, derived_id, new_execution
from machinery.status import ExecutionStatus
from machinery.storage.base import WORK_SCHEDULE, NewExecution, StartResult, Storage, WorkItem
from machinery.telemetry import metrics

logger = logging.getLogger(__name__)

#: The resource kind schedules are stored under (key: the schedule's name).
SCHEDULE_KIND = "schedule"
OVERLAP_POLICIES = ("skip", "allow", "buffer_one")
#: Where a paused schedule's cursor waits (9999-12-31T23:59:59Z): it keeps its state, and never fires.
PAUSED_DUE = 253402300799.0
#: How often a schedule holding a buffered tick looks whether the execution it waits for has ended.
BUFFER_RECHECK_SECONDS = 2.0
#: Executions one firing starts at most; the cursor is then due again at once for the rest.
MAX_STARTS_PER_FIRING = 100
#: How many missed ticks are counted as skipped at most (counting a cron expression's ticks costs time).
MAX_COUNTED_SKIPS = 1000
#: The placeholders a schedule's input may use in its strings.
SCHEDULED_TIME = "<machinery.scheduled-time>"
SCHEDULE_NAME = "<machinery.schedule-name>"

_RATE = re.compile(r"^rate\(\s*(\d{1,9})\s+(second|minute|hour|day)s?\s*\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ScheduleProblem(ValueError):
    """An expression or time zone that cannot be used (its message says why)."""


@dataclass(frozen=True)
class Recurrence:
    """When a schedule ticks: ``cron`` (with ``timezone``) or ``rate_seconds`` from ``anchor``."""

    expression: str
    timezone: str = "UTC"
    anchor: float = 0.0

    @property
    def rate_seconds(self) -> int | None:
        match = _RATE.match(self.expression.strip())
        if match is None:
            return None
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]

    def check(self) -> None:
        """:raises ScheduleProblem: the expression or the time zone is not valid, or never ticks."""
        text = self.expression.strip()
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleProblem(f"unknown time zone {self.timezone!r}") from exc
        if text.startswith("rate("):
            rate = self.rate_seconds
            if rate is None:
                raise ScheduleProblem(
                    "must be rate(<n> <unit>) with a unit of seconds, minutes, hours or days"
                )
            if rate < 1:
                raise ScheduleProblem("a rate must be at least 1 second")
            return
        fields = text.split()
        if not (len(fields) == 1 and text.startswith("@")) and len(fields) not in (5, 6):
            raise ScheduleProblem(
                f"a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds first); "
                f"this one has {len(fields)}"
            )
        try:
            croniter(text, datetime.now(zone), second_at_beginning=len(fields) == 6).get_next(float)
        except (CroniterError, ValueError, KeyError) as exc:
            raise ScheduleProblem(f"not a valid cron expression: {exc}") from exc

    def _cron(self, start: float) -> croniter:
        text = self.expression.strip()
        moment = datetime.fromtimestamp(start, ZoneInfo(self.timezone))
        return croniter(text, moment, ret_type=float, second_at_beginning=len(text.split()) == 6)

    def next_after(self, moment: float) -> float | None:
        """The first tick strictly after ``moment`` (None: it never ticks again)."""
        rate = self.rate_seconds
        if rate is not None:
            steps = max(1, int((moment - self.anchor) // rate) + 1)
            tick = self.anchor + steps * rate
            return tick if tick > moment else tick + rate
        iterator = self._cron(moment)
        try:
            tick = float(iterator.get_next())
            while self._repeated(tick):
                tick = float(iterator.get_next())
        except CroniterError:
            return None
        return tick

    def _repeated(self, tick: float) -> bool:
        """A tick at a fixed hour in the hour that repeats when daylight saving time ends: it ran in the
        first pass of that hour already (as cron runs such jobs once); wildcard hours run in both."""
        fields = self.expression.split()
        if len(fields) < 5:
            return False  # an @alias: @hourly runs in both passes, @daily at midnight never meets one
        hour = fields[2] if len(fields) == 6 else fields[1]
        return "*" not in hour and datetime.fromtimestamp(tick, ZoneInfo(self.timezone)).fold == 1

    def ticks(self, after: float, until: float, limit: int) -> list[float]:
        """Ticks in ``(after, until]``, the earliest first, at most ``limit``."""
        found: list[float] = []
        tick = self.next_after(after)
        while tick is not None and tick <= until and len(found) < limit:
            found.append(tick)
            tick = self.next_after(tick)
        return found

    def last_ticks(self, after: float, until: float, count: int) -> list[float]:
        """The latest ``count`` ticks in ``(after, until]``, the earliest first."""
        if count <= 0:
            return []
        rate = self.rate_seconds
        if rate is not None:
            last = self.anchor + ((until - self.anchor) // rate) * rate
            picked = [last - i * rate for i in range(count)]
            return sorted(t for t in picked if after < t <= until and t > self.anchor)
        iterator = self._cron(until + 0.001)
        picked = []
        while len(picked) < count:
            try:
                tick = float(iterator.get_prev())
            except CroniterError:
                break
            if tick <= after:
                break
            if not self._repeated(tick):
                picked.append(tick)
        return sorted(picked)

    def count_ticks(self, after: float, until: float, cap: int) -> int:
        """How many ticks fall in ``(after, until]`` (counting stops at ``cap``)."""
        rate = self.rate_seconds
        if rate is not None:
            first = self.next_after(after)
            if first is None or first > until:
                return 0
            return min(cap, int((until - first) // rate) + 1)
        return len(self.ticks(after, until, cap))


@dataclass(frozen=True)
class Schedule:
    """A schedule as stored (resource ``schedule/<name>``). ``revision`` grows with every change."""

    schedule_id: str
    name: str
    workflow: str
    expression: str
    timezone: str
    input: Any
    overlap: str
    catch_up: int
    grace_seconds: float
    paused: bool
    revision: int
    anchor: float
    created_at: float
    updated_at: float
    callback_url: str | None = None
    description: str = ""

    @property
    def recurrence(self) -> Recurrence:
        return Recurrence(self.expression, self.timezone, self.anchor)

    @property
    def cursor_id(self) -> str:
        """The pseudo execution id of its cursor work item."""
        return cursor_id(self.schedule_id)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Schedule:
        return cls(**body)


def cursor_id(schedule_id: str) -> str:
    return f"schedule:{schedule_id}"


@dataclass(frozen=True)
class CursorState:
    """A schedule's runtime state, the payload of its cursor.

    ``after`` is the latest tick already dealt with (started, buffered or skipped); ``last_execution``
    the id of the latest execution started (the overlap policy looks at it); ``buffered`` a tick held
    back by ``buffer_one`` until that execution ends.
    """

    schedule_id: str
    name: str
    revision: int
    after: float
    last_execution: str | None = None
    buffered: float | None = None
    started: int = 0
    skipped: int = 0
    last_tick: float | None = None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: Any) -> CursorState:
        return cls(**body)


def cursor_item(state: CursorState, due: float) -> WorkItem:
    """The cursor work item carrying ``state``, due at ``due``."""
    return WorkItem(cursor_id(state.schedule_id), state.schedule_id, WORK_SCHEDULE, due, state.to_json())


def tick_execution_id(schedule_id: str, tick: float) -> str:
    """The execution id of a tick: the dedup key that makes a repeated start create nothing."""
    return derived_id("schedule", schedule_id, str(round(tick * 1000)))


def tick_execution_name(schedule_name: str, tick: float) -> str:
    return f"{schedule_name}-{datetime.fromtimestamp(tick, UTC).strftime('%Y%m%dT%H%M%SZ')}"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_input(template: Any, schedule_name: str, tick: float) -> Any:
    """The schedule's input for one tick: the placeholders in its strings replaced."""
    if isinstance(template, str):
        return template.replace(SCHEDULED_TIME, iso(tick)).replace(SCHEDULE_NAME, schedule_name)
    if isinstance(template, list):
        return [render_input(item, schedule_name, tick) for item in template]
    if isinstance(template, dict):
        return {key: render_input(value, schedule_name, tick) for key, value in template.items()}
    return template


# planning: pure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one firing does: start these ticks, then leave the cursor with ``state`` due at ``due``."""

    ticks: list[float]
    state: CursorState
    due: float
    skipped_ticks: list[float] = field(default_factory=list)


def plan_firing(schedule: Schedule, state: CursorState, now: float, running: Callable[[str], bool]) -> Plan:
    """Decide which ticks start now under the catch-up and overlap policies.

    Ticks up to ``grace_seconds`` late are on time and all run; earlier ones were missed (downtime):
    the latest ``catch_up`` of them run, the others are skipped. Each tick then meets the overlap
    policy in order: while the previous execution runs, ``skip`` drops the tick, ``buffer_one`` keeps
    one tick back until it ends (later ones are dropped), ``allow`` starts it anyway. ``running`` says
    whether a stored execution is still running.
    """
    recurrence = schedule.recurrence
    on_time_from = max(state.after, now - schedule.grace_seconds)
    missed_run = recurrence.last_ticks(state.after, on_time_from, schedule.catch_up)
    missed = recurrence.count_ticks(state.after, on_time_from, MAX_COUNTED_SKIPS)
    on_time = recurrence.ticks(on_time_from, now, MAX_STARTS_PER_FIRING)
    due = missed_run + on_time
    skipped = max(0, missed - len(missed_run))
    more = len(due) > MAX_STARTS_PER_FIRING
    due = due[:MAX_STARTS_PER_FIRING]
    after = due[-1] if due else (on_time_from if missed else state.after)

    last = state.last_execution
    last_running = last is not None and running(last)
    buffered = state.buffered
    starts: list[float] = []
    dropped: list[float] = []
    queue = ([buffered] if buffered is not None else []) + due
    buffered = None
    for tick in queue:
        if not last_running or schedule.overlap == "allow":
            starts.append(tick)
            last_running = True
        elif schedule.overlap == "buffer_one" and buffered is None:
            buffered = tick
        else:
            dropped.append(tick)
    new_state = replace(
        state,
        after=after,
        buffered=buffered,
        started=state.started + len(starts),
        skipped=state.skipped + skipped + len(dropped),
        last_tick=starts[-1] if starts else state.last_tick,
    )
    if more:
        next_due = now
    else:
        following = recurrence.next_after(after)
        next_due = PAUSED_DUE if following is None else following
        if buffered is not None:
            next_due = min(next_due, now + BUFFER_RECHECK_SECONDS)
    return Plan(starts, new_state, next_due, dropped)


# firing: storage --------------------------------------------------------------------------------------


def fire_schedule(
    storage: Storage,
    item: WorkItem,
    now: float,
    time_scale: float = 1.0,
    claim_owner: str | None = None,
    lease_seconds: float = 30.0,
) -> StartResult:
    """Fire a claimed cursor: start its due ticks and move it on, in one transaction.

    A cursor whose schedule is gone or has changed since (an older revision) is dropped: the change
    put a new cursor in its place. An execution a tick cannot start (its workflow is gone, is express,
    or does not accept the input any more) is skipped with the reason kept in ``last_error``.

    :raises LeaseLost: the cursor was taken over or replaced meanwhile; nothing was written.
    """
    state = CursorState.from_json(item.payload)
    body = storage.get_resource(SCHEDULE_KIND, state.name)
    schedule = Schedule.from_json(body) if body is not None else None
    if schedule is None or schedule.schedule_id != state.schedule_id or schedule.revision != state.revision:
        return storage.start_executions([], now, consumed=item)
    if schedule.paused:
        return storage.start_executions([], now, consumed=item, follow=[cursor_item(state, PAUSED_DUE)])

    known: dict[str, bool] = {}

    def running(execution_id: str) -> bool:
        if execution_id not in known:
            record = storage.get_execution(execution_id)
            known[execution_id] = record is not None and record.status == ExecutionStatus.RUNNING
        return known[execution_id]

    plan = plan_firing(schedule, state, now, running)
    starts, error = _tick_executions(storage, schedule, plan.ticks, now, time_scale)
    new_state = plan.state
    if error is not None:
        new_state = replace(
            new_state,
            started=state.started,
            skipped=new_state.skipped + len(plan.ticks),
            last_tick=state.last_tick,
            last_error=error,
        )
    elif starts:
        new_state = replace(new_state, last_error=None)
    if starts:
        new_state = replace(new_state, last_execution=starts[-1].record.execution_id)
    result = storage.start_executions(
        starts,
        now,
        consumed=item,
        follow=[cursor_item(new_state, plan.due)],
        claim_owner=claim_owner,
        lease_until=now + lease_seconds,
    )
    if result.created:
        metrics.execution_started(starts[0].record.workflow_name, len(result.created))
    label = f"schedule/{schedule.name}"
    for _created in result.created:
        metrics.event_source_message(label, "started")
    for _dropped in plan.skipped_ticks:
        metrics.event_source_message(label, "skipped")
    if starts:
        logger.info(
            "schedule %s started %d execution(s), %d new",
            schedule.name,
            len(starts),
            len(result.created),
            extra={"schedule": schedule.name},
        )
    return result


def _tick_executions(
    storage: Storage, schedule: Schedule, ticks: Sequence[float], now: float, time_scale: float
) -> tuple[list[NewExecution], str | None]:
    """The executions of ``ticks``; none, with the reason, when the workflow cannot take them."""
    if not ticks:
        return [], None
    workflow = storage.get_workflow(schedule.workflow)
    if workflow is None:
        return [], f"workflow {schedule.workflow!r} does not exist"
    if workflow.express:
        return [], f"workflow {schedule.workflow!r} is express: schedules start standard workflows only"
    starts = []
    for tick in ticks:
        data = render_input(schedule.input, schedule.name, tick)
        try:
            check_event_data(workflow, data)
        except InvalidEventData as exc:
            return [], f"{exc.message}: " + "; ".join(f"{i.field} {i.message}" for i in exc.issues)
        starts.append(
            new_execution(
                workflow,
                data,
                now,
                time_scale=time_scale,
                execution_id=tick_execution_id(schedule.schedule_id, tick),
                name=tick_execution_name(schedule.name, tick),
                callback_url=schedule.callback_url,
            )
        )
    return starts, None


def recurrence_issue(expression: str, timezone: str) -> FieldIssue | None:
    """What is wrong with a schedule's expression or time zone, for the API (None: nothing)."""
    try:
        Recurrence(expression, timezone).check()
    except ScheduleProblem as exc:
        where = "timezone" if "time zone" in str(exc) else "expression"
        return FieldIssue(where, str(exc))
    return None


__all__ = ["LeaseLost", "fire_schedule", "plan_firing"]
