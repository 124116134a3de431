"""Events: starting executions, waiting for them, reading and stopping them, task-token callbacks."""

from __future__ import annotations

import concurrent.futures
import hmac
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from machinery.asl.compiler import compile_machine
from machinery.asl.model import CompiledMachine
from machinery.control import schemas
from machinery.control.definitions import find_workflow
from machinery.control.redrive import (
    DEFAULT_REDRIVE_DAYS,
    KEEP_INPUT,
    NotRedrivable,
    not_redrivable_reason,
    plan_redrive,
)
from machinery.control.schemas import check_body
from machinery.control.targets import callback_issue
from machinery.engine.dataflow import to_json_text
from machinery.engine.interpreter import Interpreter, decode_task_token
from machinery.engine.types import ACTIVE, PHASE_TASK, Branch
from machinery.errors import (
    BadRequest,
    Conflict,
    FieldIssue,
    InvalidEventData,
    NotFound,
    PayloadTooLarge,
    StorageError,
    TaskTimedOut,
)
from machinery.limits import limit_data
from machinery.runtime import spans
from machinery.runtime.commits import execution_context
from machinery.runtime.express import ExpressRunner
from machinery.runtime.notify import FinishWatcher, Notifier, Waiter
from machinery.runtime.starts import check_event_data, named_execution_id, new_execution
from machinery.runtime.webhooks import webhook_status
from machinery.runtime.worker import Worker, WorkerSettings
from machinery.status import TERMINAL_STATUSES, ExecutionStatus
from machinery.storage.base import (
    WORK_TOKEN,
    ExecutionRecord,
    NewExecution,
    Storage,
    StoredEvent,
    WorkflowRecord,
    WorkItem,
    new_id,
)
from machinery.telemetry import metrics
from machinery.telemetry.traceparent import parse as parse_traceparent

logger = logging.getLogger(__name__)

ENVELOPE_OPTIONS = frozenset(schemas.EVENT_ENVELOPE["properties"]) - {"data"}


@dataclass(frozen=True)
class EventRequest:
    """What ``POST /e/<workflow>`` asked for, after unwrapping the seed's envelope form."""

    data: Any
    callback_url: str | None = None
    name: str | None = None


def parse_event_body(body: Any) -> EventRequest:
    """The body is the event data, unless it is ``{"data": ..., <known options>}`` (the seed's envelope,
    :data:`~machinery.control.schemas.EVENT_ENVELOPE`)."""
    if isinstance(body, dict) and "data" in body and set(body) - {"data"} <= ENVELOPE_OPTIONS:
        if len(body) == 1:
            return EventRequest(body["data"])  # the seed's form: any JSON is data, there is nothing to check
        issues = check_body(schemas.EVENT_ENVELOPE, body)
        if issues:
            raise InvalidEventData("invalid event options", issues=issues)
        return EventRequest(body["data"], body.get("callback_url"), body.get("name"))
    return EventRequest(body)


def check_data_size(data: Any, limit: int, field: str) -> None:
    """Data beyond the data limit (compact UTF-8 JSON, as states measure it) is refused before anything
    is stored: it could only fail the execution with ``States.DataLimitExceeded`` after costing storage.

    :raises PayloadTooLarge: naming the limit and its setting.
    """
    if limit <= 0:
        return
    size = len(to_json_text(data).encode())
    if size > limit:
        raise PayloadTooLarge(
            f"the {field} has {size} bytes as JSON, more than the data limit of {limit} "
            "(MACHINERY_DATA_LIMIT)",
            issues=[FieldIssue(f"({field})", f"has {size} bytes (limit {limit})")],
            **limit_data("data_limit", limit),
        )


def _stored(grouped: concurrent.futures.Future[list[WorkItem]], patience: float) -> None:
    """Wait for the worker's group commit to store a new execution.

    :raises StorageError: storing it failed (the error of the transaction), or it was not stored within
        ``patience`` seconds (the lease time: the worker's loop is stuck or gone).
    """
    try:
        grouped.result(timeout=patience)
    except concurrent.futures.TimeoutError:
        raise StorageError(f"the worker did not store the execution within {patience:g} s") from None


class ExecutionNameTaken(Conflict):
    """A named start whose name an execution of the workflow already has (AWS: ExecutionAlreadyExists)."""

    code = "execution_exists"
    title = "Execution name taken"


class Orchestrator:
    """The running system as the API sees it: durable storage and its worker, plus the express runner."""

    def __init__(
        self,
        storage: Storage,
        settings: WorkerSettings,
        run_worker: bool = True,
        redrive_days: float = DEFAULT_REDRIVE_DAYS,
    ) -> None:
        self.storage = storage
        self.settings = settings
        #: How long after its end an execution may be redriven (MACHINERY_REDRIVE_DAYS).
        self.redrive_days = redrive_days
        # Named starts check and create under one lock in a process (across processes, see start_named).
        self._start_lock = threading.Lock()
        self.notifier = Notifier()
        self.worker: Worker | None = Worker(storage, settings, self.notifier) if run_worker else None
        self.express = ExpressRunner(storage, settings, self.notifier)
        # Another process may finish an execution a request here waits for (a sibling of
        # `serve --processes N`, a `machinery worker`): the watcher finds those for the waiters.
        self.watcher = (
            FinishWatcher(self.notifier, storage.finished_among, settings.finish_poll_interval)
            if settings.finish_poll_interval > 0
            else None
        )
        # Workflow versions never change: compiled machines are kept by (id, version).
        self._machines: dict[tuple[str, int], CompiledMachine] = {}

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()
        self.express.start()
        if self.watcher is not None:
            self.watcher.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        if self.worker is not None:
            self.worker.stop()
        self.express.stop()

    def machine(self, workflow: WorkflowRecord) -> CompiledMachine:
        key = (workflow.workflow_id, workflow.version)
        machine = self._machines.get(key)
        if machine is None:
            machine = self._machines[key] = compile_machine(workflow.definition)
        return machine

    # events --------------------------------------------------------------------------------------

    def start_event(
        self, workflow_ref: str, body: Any, traceparent: str | None = None, wait: float = 0.0
    ) -> ExecutionRecord:
        """Start an execution of the workflow with the event ``body``; with ``wait``, its record once it
        ended or when ``wait`` seconds have passed.

        :param traceparent: the request's W3C ``traceparent``: the execution continues that trace (an
            invalid one is ignored, as W3C trace context asks).
        """
        workflow = find_workflow(self.storage, workflow_ref)
        request = parse_event_body(body)
        if request.callback_url is not None:
            refused = callback_issue(request.callback_url, self.settings.outbound)
            if refused is not None:
                raise InvalidEventData("invalid event options", issues=[refused])
        check_data_size(request.data, self.settings.data_limit, "data")
        if wait <= 0:
            return self.start_execution(workflow, request, traceparent=traceparent)
        # Registered before the start: a finish that comes first is not missed.
        execution_id = new_id()
        waiter = self.notifier.register(execution_id)
        try:
            record = self.start_execution(workflow, request, execution_id, traceparent)
        except BaseException:
            self.notifier.unregister(execution_id, waiter)
            raise
        return self.wait_event(execution_id, wait, (record, waiter))

    def start_execution(
        self,
        workflow: WorkflowRecord,
        request: EventRequest,
        execution_id: str | None = None,
        traceparent: str | None = None,
    ) -> ExecutionRecord:
        """Start an execution of ``workflow`` at its version (any stored one, not only the latest)."""
        return self._begin(workflow, request, execution_id, traceparent)[0]

    def _begin(
        self,
        workflow: WorkflowRecord,
        request: EventRequest,
        execution_id: str | None = None,
        traceparent: str | None = None,
        only_new: bool = False,
    ) -> tuple[ExecutionRecord, bool]:
        """Start an execution; with ``only_new``, nothing is written when ``execution_id`` is stored
        already (then ``False``, and the record returned is not stored)."""
        check_event_data(workflow, request.data)
        continued = parse_traceparent(traceparent)
        trace_parent = None if continued is None else continued.header()
        new = new_execution(
            workflow,
            request.data,
            time.time(),
            time_scale=self.settings.time_scale,
            execution_id=execution_id,
            name=request.name,
            callback_url=request.callback_url,
            trace_parent=trace_parent,
        )
        record = new.record
        execution_id = record.execution_id
        if workflow.express:
            self.express.submit(record, self.machine(workflow), trace_parent)
        elif not self._create(self.storage, self.worker, new, only_new):
            return record, False
        metrics.execution_started(workflow.name)
        logger.debug(
            "execution %s of %s started", execution_id, workflow.name, extra={"execution_id": execution_id}
        )
        return record, True

    def start_named(self, workflow: WorkflowRecord, request: EventRequest) -> tuple[ExecutionRecord, bool]:
        """Start an execution whose name is unique among the workflow's ones, as Step Functions starts a
        STANDARD one: the same name and input as a running execution give that execution back
        (``False``: not started again); the name of a finished execution or other input is refused.

        The execution's id is derived from the workflow and the name (:func:`named_execution_id`), so
        that two processes (``serve --processes N``, several workers) starting the same name at once
        create one execution: the second finds the id stored and answers as if it had come later.

        :raises ExecutionNameTaken: an execution of this name exists and is not the same request.
        """
        assert request.name is not None
        execution_id = named_execution_id(workflow.workflow_id, request.name)
        with self._start_lock:
            existing = self.storage.find_execution(workflow.name, request.name)
            if existing is None or existing.workflow_id != workflow.workflow_id:
                record, created = self._begin(workflow, request, execution_id, only_new=True)
                if created:
                    return record, True
                existing = self.storage.get_execution(execution_id)
                if existing is None:  # created and purged in between: start it as new
                    return self._begin(workflow, request, execution_id, only_new=True)
            if existing.status == ExecutionStatus.RUNNING and existing.input == request.data:
                return existing, False
            raise ExecutionNameTaken(
                f"an execution named '{request.name}' already exists", execution_id=existing.execution_id
            )

    def _create(self, storage: Storage, worker: Worker | None, new: NewExecution, only_new: bool) -> bool:
        """Store a new execution; an in-process worker with room takes its first step without a claim.
        With ``only_new``, an execution whose id is stored is left alone (then ``False``)."""
        record = new.record
        started = time.perf_counter()
        owner = worker.owner if worker is not None and worker.takes_submissions() else None
        lease_until = record.started_at + self.settings.lease_seconds
        claimed: list[WorkItem] = []
        created = True
        if only_new:
            result = storage.start_executions([new], record.started_at, None, (), owner, lease_until)
            created, claimed = bool(result.created), result.claimed
        elif owner is None:
            storage.create_execution(record, new.root, list(new.work))
        else:
            assert worker is not None
            grouped = worker.create(new, lease_until)
            if grouped is not None:  # stored in the worker's group commit, which runs it from there
                _stored(grouped, self.settings.lease_seconds)
                metrics.storage_committed("create_execution", time.perf_counter() - started)
                return True
            claimed = storage.create_execution_claimed(record, new.root, list(new.work), owner, lease_until)
        metrics.storage_committed("create_execution", time.perf_counter() - started)
        if worker is not None:
            if claimed:
                worker.submit(claimed, new)
            elif created:
                worker.wake()
        return created

    def get_event(self, event_id: str) -> ExecutionRecord:
        # A running express execution lives in memory; it is stored before it leaves memory, so a miss
        # in both places means it does not exist (memory is looked at first, then storage).
        running = self.express.running(event_id)
        record = running[0] if running is not None else self.storage.get_execution(event_id)
        if record is None:
            raise NotFound(f"no event '{event_id}'", event_id=event_id)
        return record

    def wait_event(
        self, event_id: str, timeout: float, started: tuple[ExecutionRecord, Waiter] | None = None
    ) -> ExecutionRecord:
        """The event's record once it has finished, or as it is when ``timeout`` seconds have passed.

        ``started``: the record of an execution this request just started and the waiter it registered
        before starting it, so that the first look needs no read. Whoever finishes it in this process
        says how it ended, so the final record needs no read either.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if started is not None:
                (record, waiter), started = started, None
            else:
                waiter = self.notifier.register(event_id)
                record = self.get_event(event_id)
            try:
                remaining = deadline - time.monotonic()
                if record.status in TERMINAL_STATUSES or remaining <= 0:
                    return record
                # Another process finishing it wakes us through the watcher; the slices are a fallback.
                if waiter.wait(min(remaining, 0.5 if self.watcher is None and self.worker is None else 5.0)):
                    finished = waiter.outcome(record)
                    if finished is not None:
                        return finished
            finally:
                self.notifier.unregister(event_id, waiter)

    def list_events(
        self,
        workflow_ref: str | None,
        status: ExecutionStatus | None,
        limit: int,
        cursor: str | None,
        parent: str | None = None,
    ) -> tuple[list[ExecutionRecord], str | None]:
        """Top-level events, newest first; with ``parent``, that event's child executions instead."""
        if parent is not None:
            self.get_event(parent)
        workflow_id = find_workflow(self.storage, workflow_ref).workflow_id if workflow_ref else None
        if cursor is not None and self.storage.get_execution(cursor) is None:
            raise BadRequest("invalid cursor", issues=[FieldIssue("cursor", "does not name an event")])
        records = self.storage.list_executions(workflow_id, status, limit + 1, cursor, parent)
        next_cursor = records[limit - 1].execution_id if len(records) > limit else None
        return records[:limit], next_cursor

    def webhook_status(self, record: ExecutionRecord) -> dict[str, Any] | None:
        """The ``webhook`` member of an event record with a ``callback_url`` (from its last history event)."""
        if not record.callback_url:
            return None
        last = None
        if record.status in TERMINAL_STATUSES and not self.express.running(record.execution_id):
            events = self.storage.get_history(record.execution_id, limit=1, reverse=True)
            last = events[0] if events else None
        return webhook_status(record, last)

    def history(
        self, event_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> tuple[list[StoredEvent], int | None]:
        """One page of an event's history and the cursor of the next page (None on the last page).

        ``after`` is the previous page's cursor (the id of its last event); ``reverse`` reads newest
        first. Without ``limit`` the page is the whole rest of the history.
        """
        running = self.express.running(event_id)
        if running is not None:
            events = [StoredEvent(i, e.type, e.timestamp, e.details) for i, e in enumerate(running[1], 1)]
            if reverse:
                events.reverse()
            if after is not None:
                events = [e for e in events if (e.event_id < after if reverse else e.event_id > after)]
            page = events if limit is None else events[: limit + 1]
        else:
            record = self.get_event(event_id)
            wanted = None if limit is None else limit + 1
            page = self.storage.get_history(record.execution_id, after, wanted, reverse)
        if limit is not None and len(page) > limit:
            return page[:limit], page[limit - 1].event_id
        return page, None

    def redrive_event(self, event_id: str, new_input: Any = KEEP_INPUT) -> ExecutionRecord:
        """Redrive a FAILED, TIMED_OUT or ABORTED execution (see :mod:`machinery.control.redrive`).

        :param new_input: the input of the state that runs again, instead of the one it had.
        :raises NotRedrivable: it cannot be redriven (running, succeeded, express, too old ...).
        """
        record = self.get_event(event_id)
        workflow = self.storage.get_workflow(record.workflow_id, record.workflow_version)
        if workflow is None:
            reason = "State machine is in DELETING status"
            raise NotRedrivable(reason, reason=reason)
        now = time.time()
        plan = plan_redrive(
            self.storage,
            self.machine(workflow),
            record,
            now,
            self.redrive_days,
            new_input,
            self.settings.time_scale,
        )
        if not self.storage.redrive_execution(plan, now):
            current = self.get_event(event_id)
            reason = not_redrivable_reason(current, self.redrive_days, now) or "it was redriven meanwhile"
            raise NotRedrivable(reason, reason=reason)
        if self.worker is not None:
            self.worker.wake()
        return self.get_event(event_id)

    def stop_event(self, event_id: str, error: str | None, cause: str | None) -> ExecutionRecord:
        """Abort a running event (durable or express) with ``error`` and ``cause``; a Conflict if it ended."""
        record = self.get_event(event_id)
        if record.express:
            stopped = self.express.stop_execution(event_id, error, cause)
        else:
            now = time.time()
            stopped = self.storage.finish_execution(event_id, ExecutionStatus.ABORTED, now, error, cause)
            if stopped:  # an express execution's runner counts its own end
                metrics.execution_finished(
                    record.workflow_name, ExecutionStatus.ABORTED, now - record.started_at
                )
                ended = replace(record, status=ExecutionStatus.ABORTED, error=error)
                spans.record_ended(self.storage, ended, now)
        if not stopped:
            raise Conflict(f"event '{event_id}' has already finished with status {record.status}")
        self.notifier.finished(event_id)
        return self.get_event(event_id)

    # task tokens ---------------------------------------------------------------------------------

    def report_task(self, token: Any, outcome: dict[str, Any]) -> None:
        """A ``.waitForTaskToken`` service reports success, failure or a heartbeat.

        :raises NotFound: the token names no task.
        :raises TaskTimedOut: the task is no longer waiting: it ended, timed out or was retried, or its
            execution ended.
        :raises PayloadTooLarge: a success's output is beyond the data limit.
        """
        if "output" in outcome:
            check_data_size(outcome["output"], self.settings.data_limit, "output")
        decoded = decode_task_token(token) if isinstance(token, str) else None
        if decoded is None:
            raise NotFound(
                "unknown task token", issues=[FieldIssue("taskToken", "is not a valid task token")]
            )
        execution_id, branch_id, _state, _attempt = decoded
        try:
            record = self.get_event(execution_id)
        except NotFound:
            raise NotFound(
                "unknown task token", issues=[FieldIssue("taskToken", "names no execution")]
            ) from None
        storage = self.storage
        branch = storage.get_branch(branch_id)
        if branch is None:
            raise NotFound("unknown task token", issues=[FieldIssue("taskToken", "names no task")])
        if (
            record.status != ExecutionStatus.RUNNING
            or branch.status != ACTIVE
            or branch.phase != PHASE_TASK
            or not hmac.compare_digest((branch.task_token or "").encode(), token.encode())
        ):
            raise TaskTimedOut("the task of this token is no longer waiting (TaskTimedOut)")
        if outcome.get("heartbeat"):
            seconds = self._heartbeat_seconds(storage, record, branch)
            if seconds is not None:
                due = time.time() + seconds * self.settings.time_scale
                # False when the task is not parked yet (its heartbeat clock has not started) or its
                # heartbeat timeout is firing right now: either way there is nothing to push back.
                storage.extend_heartbeat(execution_id, branch_id, token, due)
            return
        storage.add_work(
            [WorkItem(execution_id, branch_id, WORK_TOKEN, time.time(), {**outcome, "token": token})]
        )
        if self.worker is not None:
            self.worker.wake()

    def _heartbeat_seconds(self, storage: Storage, record: ExecutionRecord, branch: Branch) -> float | None:
        """The ``HeartbeatSeconds`` the branch's waiting task was scheduled with."""
        workflow = storage.get_workflow(record.workflow_id, record.workflow_version)
        if workflow is None:
            return None
        return Interpreter(self.machine(workflow), execution_context(record)).heartbeat_seconds(branch)
