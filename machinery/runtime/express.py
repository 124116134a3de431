"""Express executions: run in memory on one event loop, with only the final record stored.

Like Step Functions' Express workflows they trade durability for speed: nothing is written while they
run, so a crash loses them. They use the same pure interpreter, task invoker and join rule
(:func:`machinery.storage.base.decide_join`) as durable executions; only the bookkeeping differs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from machinery.asl.model import CompiledMachine
from machinery.engine.interpreter import Interpreter, Limits
from machinery.engine.types import (
    ACTIVE,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
    Effect,
    ExecutionContext,
    HistoryEvent,
    InvokeTask,
    ReadItems,
    ResumeEvent,
    StartChildren,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from machinery.runtime import loops, spans
from machinery.runtime.commits import execution_context, join_spec
from machinery.runtime.groupcommit import GroupCommit, group_writers
from machinery.runtime.items import read_items
from machinery.runtime.notify import Notifier
from machinery.runtime.tasks import CallIdentity, TaskInvoker
from machinery.runtime.worker import WorkerSettings
from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord, JoinState, Storage, decide_join
from machinery.telemetry import metrics

logger = logging.getLogger(__name__)


@dataclass
class _Run:
    record: ExecutionRecord
    history: list[HistoryEvent] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    stop_reason: tuple[str | None, str | None] | None = None
    trace_parent: str | None = None
    #: Its final record is being stored (in the loop tick's transaction): it can no longer be aborted.
    ending: bool = False


class ExpressRunner:
    """Runs express executions on a private event loop thread; thread-safe entry points."""

    def __init__(
        self,
        storage: Storage,
        settings: WorkerSettings,
        notifier: Notifier,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.notifier = notifier
        self.clock = clock
        self.invoker = TaskInvoker.for_settings(storage, settings)
        self._runs: dict[str, _Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._waiting: list[tuple[_Run, CompiledMachine]] = []  # submitted before start()
        self._lock = threading.Lock()
        # Final records only; a blocking storage's from the loop's default executor.
        writers = group_writers(storage, settings.storage_writers)
        self._group = GroupCommit(storage, lambda _start, _claimed: None, None, writers)

    def start(self) -> None:
        loop = loops.loop_factory(self.settings.event_loop)()
        self._thread = threading.Thread(target=loop.run_forever, name="machinery-express", daemon=True)
        self._thread.start()
        with self._lock:
            self._loop = loop
            waiting, self._waiting = self._waiting, []
        for run, machine in waiting:
            self._begin(run, machine)

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the running express executions and stop the loop thread."""
        loop = self._loop
        if self._thread is None or loop is None:
            return

        async def shut_down() -> None:
            tasks = [run.task for run in list(self._runs.values()) if run.task is not None]
            for run in list(self._runs.values()):
                if run.task is not None and not run.ending:
                    run.task.cancel()
            # Each stores its final record (aborted, or the one it was storing) in a tick to come.
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.invoker.close()

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self._loop = None
        loop.close()

    # entry points (any thread) -------------------------------------------------------------------

    def submit(
        self, record: ExecutionRecord, machine: CompiledMachine, trace_parent: str | None = None
    ) -> None:
        """Start an execution; its record is readable through :meth:`running` until it is stored.

        :param trace_parent: the ``traceparent`` the execution continues (see ``Branch.trace_parent``).
        """
        run = _Run(record, trace_parent=trace_parent)
        self._runs[record.execution_id] = run
        with self._lock:
            if self._loop is None:
                self._waiting.append((run, machine))
                return
        self._begin(run, machine)

    async def execute(self, record: ExecutionRecord, machine: CompiledMachine) -> None:
        """Run an execution on the current event loop until its record is stored (what :meth:`submit`
        does on the runner's own loop; for callers that drive a loop themselves, such as unit tests)."""
        run = _Run(record)
        self._runs[record.execution_id] = run
        run.task = asyncio.current_task()
        await self._execute(run, machine)

    def _begin(self, run: _Run, machine: CompiledMachine) -> None:
        loop = self._loop
        assert loop is not None

        def begin() -> None:
            run.task = loop.create_task(self._execute(run, machine))

        loop.call_soon_threadsafe(begin)

    def running(self, execution_id: str) -> tuple[ExecutionRecord, list[HistoryEvent]] | None:
        run = self._runs.get(execution_id)
        return None if run is None else (run.record, list(run.history))

    async def abort(self, execution_id: str, error: str | None, cause: str | None) -> bool:
        """Abort a running express execution (on its loop) and wait until its record is stored; False
        if it is not running, or ended before the stop (its record was already being stored)."""
        run = self._runs.get(execution_id)
        if run is None or run.task is None or run.task.done():
            return False
        aborting = not run.ending  # else it ended before the stop: its record is being stored
        if aborting:
            run.stop_reason = (error, cause)
            run.task.cancel()
        await asyncio.wait({run.task})
        return aborting

    def stop_execution(self, execution_id: str, error: str | None, cause: str | None) -> bool:
        """Abort a running express execution and wait until its record is stored; False if not running."""

        if self._loop is None:
            return False
        future = asyncio.run_coroutine_threadsafe(self.abort(execution_id, error, cause), self._loop)
        try:
            return future.result(30)
        except concurrent.futures.TimeoutError:
            return False

    # the run ---------------------------------------------------------------------------------------

    async def _execute(self, run: _Run, machine: CompiledMachine) -> None:
        record = run.record
        context = execution_context(record)
        root = Branch(
            branch_id=record.execution_id,
            execution_id=record.execution_id,
            container=(),
            state_input=record.input,
            trace_parent=run.trace_parent,
        )
        timeout = machine.root.timeout_seconds
        final: dict[str, Any]
        try:
            if timeout:
                async with asyncio.timeout(float(timeout) * self.settings.time_scale):
                    branch = await self._run_branch(run, machine, context, root)
            else:
                branch = await self._run_branch(run, machine, context, root)
            final = {"status": ExecutionStatus(branch.status), "error": branch.error, "cause": branch.cause}
            if branch.status == SUCCEEDED:
                final["output"] = branch.output
        except TimeoutError:
            final = {
                "status": ExecutionStatus.TIMED_OUT,
                "error": "States.Timeout",
                "cause": "Execution timed out",
            }
            run.history.append(HistoryEvent("ExecutionTimedOut", final.copy(), self.clock()))
        except asyncio.CancelledError:
            error, cause = run.stop_reason or (None, None)
            final = {"status": ExecutionStatus.ABORTED, "error": error, "cause": cause}
            details = {"error": error, "cause": cause} if error else {}
            run.history.append(HistoryEvent("ExecutionAborted", details, self.clock()))
        except Exception as exc:  # pylint: disable=broad-exception-caught  # a bug must not leave it RUNNING
            logger.exception("express execution %s failed", record.execution_id)
            final = {"status": ExecutionStatus.FAILED, "error": "States.Runtime", "cause": str(exc)}
            run.history.append(HistoryEvent("ExecutionFailed", {"error": final["error"]}, self.clock()))
        finished = replace(record, finished_at=self.clock(), **final)
        ended = finished.finished_at or record.started_at
        metrics.execution_finished(record.workflow_name, final["status"], ended - record.started_at)
        spans.record_execution(
            record.execution_id,
            record.workflow_name,
            run.trace_parent,
            record.started_at,
            ended,
            final["status"],
            final.get("error"),
        )
        stored: ExecutionRecord | None = None  # what the waiters are told: nothing unless it was stored
        run.ending = True
        try:
            # In one transaction with the others that ended meanwhile (a blocking storage's from a thread).
            await self._group.store_finished(finished, run.history)
            stored = finished
        finally:
            self._runs.pop(record.execution_id, None)
            self.notifier.finished(record.execution_id, stored)

    async def _run_branch(
        self, run: _Run, machine: CompiledMachine, context: ExecutionContext, branch: Branch
    ) -> Branch:
        limits = Limits(data_limit=self.settings.data_limit)
        before = branch
        step: Step = Interpreter(machine, context, limits).start(branch, self.clock())
        while True:
            run.history.extend(step.history)
            spans.record_step(context.execution_id, before, step)
            branch = before = step.branch
            if branch.status != ACTIVE or not step.effects:
                return branch
            event = await self._perform(run, machine, context, branch, step.effects[0])
            step = Interpreter(machine, context, limits).resume(branch, event, self.clock())

    async def _perform(
        self,
        run: _Run,
        machine: CompiledMachine,
        context: ExecutionContext,
        branch: Branch,
        effect: Effect,
    ) -> ResumeEvent:
        if isinstance(effect, InvokeTask):
            if effect.wait_for_token:
                return TaskFailed("States.Runtime", "Express workflows do not support .waitForTaskToken")
            trace = spans.call_parent(context.execution_id, branch)
            identity = CallIdentity(context.execution_id, branch.branch_id, trace=trace)
            outcome = await self.invoker.invoke(effect, identity)
            if outcome.error is not None:
                return TaskFailed(outcome.error, outcome.cause)
            return TaskSucceeded(outcome.output)
        if isinstance(effect, ReadItems):
            return await read_items(self.invoker, effect)
        if isinstance(effect, StartTimer):
            delay = max(0.0, effect.due - self.clock()) * self.settings.time_scale
            await asyncio.sleep(delay)
            return TimerFired()
        return await self._run_children(run, machine, context, branch, effect)

    async def _run_children(
        self,
        run: _Run,
        machine: CompiledMachine,
        context: ExecutionContext,
        parent: Branch,
        effect: StartChildren,
    ) -> ResumeEvent:
        spec = join_spec(parent, effect)
        join_id, total = spec.join_id, spec.total
        first = spec.initially_started
        join = JoinState(spec=spec, started=first)
        results: list[Branch | None] = [None] * total
        trace_parent = spans.children_parent(context.execution_id, parent)
        pending: dict[asyncio.Task[Branch], int] = {}

        def launch(index: int) -> None:
            child = effect.children[index]
            branch = Branch(
                branch_id=f"{join_id}/{index}",
                execution_id=parent.execution_id,
                container=child.container,
                parent_id=parent.branch_id,
                index=index,
                state_input=child.input,
                map_item=child.map_item,
                variables=dict(parent.variables),
                trace_parent=trace_parent,
            )
            pending[asyncio.ensure_future(self._run_branch(run, machine, context, branch))] = index

        for index in range(first):
            launch(index)
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = pending.pop(task)
                    child = task.result()
                    results[index] = child
                    decision = decide_join(join, child.status == SUCCEEDED, child.error, child.cause)
                    for following in decision.start_indexes:
                        launch(following)
                    if decision.close and decision.error is not None:
                        return ChildrenFailed(decision.error, decision.cause or "")
                    if decision.close:
                        return ChildrenSucceeded(
                            [
                                c.output if c.status == SUCCEEDED else {"Error": c.error, "Cause": c.cause}
                                for c in results
                                if c is not None
                            ]
                        )
            return ChildrenSucceeded([])
        finally:
            for task in pending:
                task.cancel()
