"""The worker: claims due work from storage, runs the interpreter, performs effects, records results.

One asyncio loop (in its own thread when embedded in ``machinery serve``) runs many executions at once:
task calls are awaited concurrently through one pooled keep-alive client, while storage calls are quick
synchronous writes. Every transition is committed before the next begins, under the claimed work item's
fence, so a worker that lost its lease cannot commit over the new owner.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from machinery.asl.compiler import compile_machine
from machinery.asl.model import CompiledMachine
from machinery.engine.context import epoch_of
from machinery.engine.interpreter import Interpreter, Limits, iso_time, map_run_id
from machinery.engine.types import (
    ACTIVE,
    FAILED,
    PHASE_TASK,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
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
from machinery.errors import LeaseLost, StorageError
from machinery.runtime import commits, loops, spans, webhooks
from machinery.runtime.activities import activity_name, enqueue_activity_task, wake_key
from machinery.runtime.groupcommit import GroupCommit, group_writers
from machinery.runtime.items import read_items
from machinery.runtime.notify import Notifier
from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.publish import is_broker_url, publish_record
from machinery.runtime.retention import NO_RETENTION, Retention, RetentionSettings
from machinery.runtime.schedules import fire_schedule
from machinery.runtime.sources.manager import SourceManager
from machinery.runtime.tasks import CallIdentity, TaskInvoker
from machinery.runtime.webhooks import deliver_webhook
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    MAP_RUN,
    WORK_CHILDREN,
    WORK_READ,
    WORK_SCHEDULE,
    WORK_START,
    WORK_TASK,
    WORK_TIMEOUT,
    WORK_TIMER,
    WORK_TOKEN,
    WORK_WEBHOOK,
    ClaimedStart,
    Commit,
    CommitResult,
    ExecutionRecord,
    NewExecution,
    Storage,
    WorkItem,
)
from machinery.telemetry import metrics

logger = logging.getLogger(__name__)

_CONTEXT_CACHE_SIZE = 10_000
_STORAGE_THREADS = 8
_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkerSettings:
    """Tunables, from ``MACHINERY_*`` settings."""

    lease_seconds: float = 30.0
    poll_interval: float = 1.0
    batch_size: int = 256
    max_in_flight: int = 1024
    time_scale: float = 1.0
    data_limit: int = 256 * 1024
    lambda_endpoint: str | None = None
    public_url: str | None = None
    webhook_secret: str | None = None
    webhook_attempts: int = webhooks.DEFAULT_ATTEMPTS
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    #: Consume the event sources (machinery.runtime.sources.manager) on this worker's loop.
    consume_sources: bool = True
    source_refresh_seconds: float = 2.0
    #: Off unless given (the server passes ``MACHINERY_RETENTION_DAYS``).
    retention: RetentionSettings = NO_RETENTION
    #: Seconds between looks for executions another process finished while a request here waits for
    #: them (0: never look; waits then end on their own timeouts).
    finish_poll_interval: float = 0.02
    #: The worker's and the express runner's event loop: ``uvloop`` or ``asyncio`` (runtime.loops).
    event_loop: str = loops.UVLOOP
    #: Group transactions written at once on a blocking storage (0: its own choice, group_writers()).
    storage_writers: int = 0


class Worker:
    """Runs work from one storage. ``start()`` runs it in a background thread; ``stop()`` ends it."""

    def __init__(
        self,
        storage: Storage,
        settings: WorkerSettings | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.settings = settings or WorkerSettings()
        self.notifier = notifier or Notifier()
        self.clock = clock
        # host:pid:random names the worker in leases, logs and the X-Machinery-Worker header of its calls.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.invoker = TaskInvoker.for_settings(storage, self.settings)
        self.retention = Retention(storage, self.settings.retention, clock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._in_flight: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._loop_thread: int | None = None
        self._submitted = 0  # handed over by submit(), not yet spawned on the loop
        # Storage calls of network backends run in threads (see _blocking); the caches below are then
        # shared by those threads, of which the group transactions take up to ``writers`` at once.
        writers = group_writers(storage, self.settings.storage_writers)
        self._storage_pool: ThreadPoolExecutor | None = (
            ThreadPoolExecutor(
                max_workers=max(_STORAGE_THREADS, writers + 2), thread_name_prefix="machinery-storage"
            )
            if storage.blocking_io
            else None
        )
        self._cache_lock = threading.Lock()
        self.sources: SourceManager | None = None
        self._submitted_lock = threading.Lock()
        # Workflow versions never change: their compiled machines are cached by (id, version).
        self._machines: dict[tuple[str, int], tuple[CompiledMachine, str]] = {}
        # The branch a commit just wrote, by the work item of it that the commit handed back here.
        self._owned_branches: dict[int, Branch] = {}
        self._group = GroupCommit(storage, self._take_started, self._storage_pool, writers)
        # What the $$ context needs of an execution never changes either, nor its workflow version.
        self._contexts: OrderedDict[str, tuple[ExecutionContext, tuple[str, int]]] = OrderedDict()

    # lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name="machinery-worker", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _thread_main(self) -> None:
        loops.run(self.run(), self.settings.event_loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Ask the loop to look for due work now (thread-safe)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            if threading.get_ident() == self._loop_thread:
                wake.set()
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    def submit(self, items: list[WorkItem], started: NewExecution | None = None) -> None:
        """Run work this worker already holds the lease of (thread-safe): no claim needed.

        ``started``: the execution these items start, just stored: its first step reads neither its
        record nor its root branch back.
        """
        loop = self._loop
        if not items or loop is None or loop.is_closed():
            return
        with self._submitted_lock:
            self._submitted += len(items)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._spawn_submitted, items, started)

    def create(
        self, new: NewExecution, lease_until: float
    ) -> concurrent.futures.Future[list[WorkItem]] | None:
        """Store a new execution in this loop tick's group commit, then run its first step here
        (thread-safe): the future gets the work it claimed once stored, or the error storing it failed
        with. None when this worker takes no creations (its loop does not run or has no room): the
        caller stores the execution itself.
        """
        loop = self._loop
        if loop is None or not self.takes_submissions():
            return None
        future: concurrent.futures.Future[list[WorkItem]] = concurrent.futures.Future()
        with self._submitted_lock:
            self._submitted += len(new.work)
        try:
            loop.call_soon_threadsafe(self._group.start, ClaimedStart(new, self.owner, lease_until), future)
        except RuntimeError:  # the loop closed in between
            with self._submitted_lock:
                self._submitted -= len(new.work)
            return None
        return future

    def _take_started(self, start: ClaimedStart, claimed: list[WorkItem] | None) -> None:
        """A new execution of :meth:`create` was stored (``claimed``: its first work) or was not."""
        with self._submitted_lock:
            self._submitted -= len(start.new.work)
        if claimed is not None and not self._stopping:
            self._run_started(claimed, start.new)

    def _spawn_submitted(self, items: list[WorkItem], started: NewExecution | None = None) -> None:
        with self._submitted_lock:
            self._submitted -= len(items)
        self._run_started(items, started)

    def _run_started(self, items: list[WorkItem], started: NewExecution | None) -> None:
        if started is not None:
            self._remember_context(started.record)
            for item in items:
                if item.branch_id == started.root.branch_id and item.work_id is not None:
                    self._owned_branches[item.work_id] = started.root
        self._spawn(items)

    def _spawn(self, items: list[WorkItem]) -> None:
        for item in items:
            assert item.work_id is not None
            self._in_flight.add(item.work_id)
            task = asyncio.create_task(self._process(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        metrics.set_in_flight(len(self._in_flight))

    def has_room(self) -> bool:
        return self._room() > 0

    def _room(self) -> int:
        # Submissions not yet spawned count too: other threads must not queue work without bound.
        return self.settings.max_in_flight - len(self._in_flight) - self._submitted

    def takes_submissions(self) -> bool:
        """Whether :meth:`submit` would run work now (the loop runs and has room)."""
        loop = self._loop
        return loop is not None and loop.is_running() and not self._stopping and self.has_room()

    async def run_until_idle(self, rounds: int = 1000) -> int:
        """Claim due work and run it, and what it sets in motion, until nothing is due or running; the
        number of items claimed. For callers that drive the loop themselves (unit tests, tools): no
        thread, no lease renewal, no sleeping."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        claimed_total = 0
        for _ in range(rounds):
            claimed = await self._claim()
            claimed_total += len(claimed)
            self._spawn(claimed)
            if not self._tasks:
                return claimed_total
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        return claimed_total

    async def run(self) -> None:
        """Claim and run due work until :meth:`stop`, then cancel what runs and release the leases."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._ready.set()
        renew = asyncio.create_task(self._renew_leases())
        sources = self._consume_sources()
        retain = asyncio.create_task(self.retention.run(self._blocking)) if self.retention.enabled else None
        self._listen_for_work()
        try:
            while not self._stopping:
                self._wake.clear()
                if not self.has_room():
                    # Full: what is due waits for a slot, and an item that frees one wakes the loop
                    # (looking at the due work meanwhile would spin, a read per turn).
                    await self._wait_for_wake(self.settings.poll_interval)
                    continue
                claimed = await self._claim()
                self._spawn(claimed)
                if len(claimed) >= self.settings.batch_size:
                    await asyncio.sleep(0)
                    continue
                await self._sleep_until_due()
        finally:
            self._group.fail_starts(StorageError("the worker stopped before the execution was stored"))
            renew.cancel()
            if sources is not None:
                sources.cancel()
                await asyncio.gather(sources, return_exceptions=True)
            if retain is not None:
                retain.cancel()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._group.written()  # a thread's transaction: its waiters are told before the pool ends
            await self.invoker.close()
            if self._storage_pool is not None:
                self._storage_pool.shutdown(wait=True, cancel_futures=True)
            try:
                self.storage.release_leases(self.owner)
            except StorageError:
                logger.warning("could not release leases of %s", self.owner)

    def _consume_sources(self) -> asyncio.Task[None] | None:
        """Run the event sources' consumers on this loop (they hand their executions to this worker)."""
        if not self.settings.consume_sources:
            return None
        self.sources = SourceManager.of_worker(self, self.settings)
        return asyncio.create_task(self.sources.run(), name="machinery-sources")

    def refresh_sources(self) -> None:
        """Look at the stored event sources now, not at the next refresh (thread-safe)."""
        loop, sources = self._loop, self.sources
        if loop is not None and sources is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(sources.refresh)

    async def blocking(self, call: Callable[..., _T], *args: Any) -> _T:
        """Run a storage call as this worker does (see :meth:`_blocking`), for what runs on its loop."""
        return await self._blocking(call, *args)

    async def _claim(self) -> list[WorkItem]:
        room = self.settings.max_in_flight - len(self._in_flight)
        if room <= 0:
            return []
        started = time.perf_counter()
        try:
            claimed = await self._blocking(
                self.storage.claim_work,
                self.owner,
                self.clock(),
                min(room, self.settings.batch_size),
                self.settings.lease_seconds,
            )
        except StorageError:
            logger.exception("claiming work failed; retrying")
            return []
        metrics.storage_committed("claim", time.perf_counter() - started)
        # A fence past 1 means an earlier claim did not finish the item (a webhook's is rescheduled).
        taken_over = sum(1 for item in claimed if item.fence > 1 and item.kind != WORK_WEBHOOK)
        if taken_over:
            metrics.leases_taken_over(taken_over)
        return claimed

    async def _sleep_until_due(self) -> None:
        assert self._wake is not None
        timeout = self.settings.poll_interval
        try:
            due = await self._blocking(self.storage.next_due)
        except StorageError:
            due = None
        if due is not None:
            timeout = max(0.0, min(timeout, due - self.clock()))
        if timeout <= 0:
            await asyncio.sleep(0)
            return
        await self._wait_for_wake(timeout)

    async def _wait_for_wake(self, timeout: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _listen_for_work(self) -> None:
        """Wake the loop when another process commits work (PostgreSQL ``LISTEN``); polling stays the
        fallback. A daemon thread, so that stopping never waits out a blocked ``wait_for_work``."""
        if not self.storage.pushes_wake_ups:
            return  # the backend has no wake-ups: wait_for_work would return at once

        def listen() -> None:
            while not self._stopping:
                try:
                    woken = self.storage.wait_for_work(self.settings.poll_interval)
                except Exception:  # pylint: disable=broad-exception-caught  # fall back on polling
                    logger.exception("waiting for work notifications failed; polling")
                    time.sleep(self.settings.poll_interval)
                    continue
                if woken:
                    self.wake()

        threading.Thread(target=listen, name="machinery-listen", daemon=True).start()

    async def _renew_leases(self) -> None:
        interval = max(0.5, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            if self._in_flight:
                try:
                    self.storage.renew_leases(
                        self.owner, list(self._in_flight), self.clock() + self.settings.lease_seconds
                    )
                except StorageError:
                    logger.warning("lease renewal failed")

    # processing --------------------------------------------------------------------------------

    async def _process(self, item: WorkItem) -> None:
        """Run a claimed item, then whatever its commit handed straight back to this worker."""
        current: WorkItem | None = item
        while current is not None:
            following: list[WorkItem] = []
            try:
                following = await self._dispatch(current)
            except LeaseLost:
                metrics.lease_lost()
                logger.info(
                    "lease lost for %s; another worker owns it",
                    current.branch_id,
                    extra={"execution_id": current.execution_id},
                )
            except StorageError as exc:
                # Storage is down or full: the item is run again when its lease expires.
                logger.warning(
                    "work item %s of %s not recorded (%s); retried when its lease expires",
                    current.kind,
                    current.execution_id,
                    exc.message,
                    extra={"execution_id": current.execution_id},
                )
            except Exception:  # pylint: disable=broad-exception-caught  # one item's bug must not stop the worker
                logger.exception(
                    "work item %s of %s failed",
                    current.kind,
                    current.execution_id,
                    extra={"execution_id": current.execution_id},
                )
            finally:
                assert current.work_id is not None
                self._in_flight.discard(current.work_id)
                self._owned_branches.pop(current.work_id, None)
                metrics.set_in_flight(len(self._in_flight))
            current = None
            if following:
                current = following[0]
                assert current.work_id is not None
                self._in_flight.add(current.work_id)
                self._spawn(following[1:])
        if self._room() <= 1:
            # There was no room before this item ended: the claim loop waits for one (run()).
            self.wake()

    async def _dispatch(self, item: WorkItem) -> list[WorkItem]:
        """Process one item; returns the work its commit handed back to this worker."""
        if item.kind == WORK_WEBHOOK:
            await self._send_webhook(item)
            return []
        if item.kind == WORK_TIMEOUT:
            await self._blocking(self._timeout_execution, item)
            return []
        if item.kind == WORK_SCHEDULE:
            return await self._blocking(self._fire_schedule, item)
        loaded = await self._blocking(self._load, item)
        if loaded is None:
            await self._blocking(self._retire, item)
            return []
        execution, branch, interpreter = loaded
        now = self.clock()
        if item.kind == WORK_START:
            # A branch that has a state already was redriven: it enters that state again.
            redriven = branch.state is not None
            step = interpreter.redrive(branch, now) if redriven else interpreter.start(branch, now)
        elif item.kind == WORK_TASK:
            effect = InvokeTask(**item.payload)
            activity = activity_name(effect.resource)
            if activity is not None:
                # Taken by a worker of the activity (GetActivityTask), which reports with the token.
                await self._blocking(self._queue_activity_task, item, branch, effect, activity)
                return []
            identity = CallIdentity(
                execution.execution_id,
                branch.branch_id,
                self._callback_url(),
                self.owner,
                spans.call_parent(execution.execution_id, branch),
            )
            outcome = await self.invoker.invoke(effect, identity)
            if effect.wait_for_token and not outcome.failed:
                # The service answers later through the callback routes; the task stays open.
                await self._blocking(self._park_for_token, item, branch, effect)
                return []
            step = interpreter.resume(branch, commits.outcome_event(outcome), self.clock())
        elif item.kind == WORK_TOKEN:
            payload = item.payload or {}
            if payload.get("token") != branch.task_token:
                # A timeout or heartbeat timer of an earlier task attempt: stale.
                await self._blocking(self.storage.complete_work, item)
                return []
            if payload.get("error") is not None:
                event: ResumeEvent = TaskFailed(str(payload["error"]), str(payload.get("cause") or ""))
            else:
                event = TaskSucceeded(payload.get("output"))
            step = interpreter.resume(branch, event, now)
        elif item.kind == WORK_TIMER:
            step = interpreter.resume(branch, TimerFired(), now)
        elif item.kind == WORK_CHILDREN:
            children = await self._blocking(self._children_event, item)
            step = interpreter.resume(branch, children, now)
        elif item.kind == WORK_READ:
            event = await read_items(self.invoker, ReadItems(**item.payload))
            step = interpreter.resume(branch, event, self.clock())
        else:
            logger.error("unknown work kind %s", item.kind)
            await self._blocking(self.storage.complete_work, item)
            return []
        return await self._commit(item, execution, step, branch)

    async def _blocking(self, call: Callable[..., _T], *args: Any) -> _T:
        """Run a storage-bound call: in a thread for backends that wait on the network (PostgreSQL,
        MongoDB), so the loop goes on with other executions' task calls; inline for SQLite, whose calls
        are short and serialised anyway."""
        if self._storage_pool is None:
            return call(*args)
        return await asyncio.get_running_loop().run_in_executor(self._storage_pool, call, *args)

    def _load(self, item: WorkItem) -> tuple[ExecutionContext, Branch, Interpreter] | None:
        """The branch an item is for, and an interpreter for its execution; None when it is over.

        A stopped or finished execution has cancelled or finished branches, so checking the branch is
        enough; what the context needs of the execution and the compiled machine are cached.
        """
        branch = self._owned_branches.pop(item.work_id, None) if item.work_id is not None else None
        if branch is None:
            branch = self.storage.get_branch(item.branch_id)
        if branch is None or branch.status != ACTIVE:
            return None
        with self._cache_lock:
            cached = self._contexts.get(item.execution_id)
            if cached is not None:
                self._contexts.move_to_end(item.execution_id)
        if cached is None:
            execution = self.storage.get_execution(item.execution_id)
            if execution is None or execution.status != ExecutionStatus.RUNNING:
                return None
            if self._machine((execution.workflow_id, execution.workflow_version)) is None:
                return None
            cached = self._remember_context(execution)
        context, key = cached
        machine_entry = self._machine(key)
        if machine_entry is None:
            return None
        interpreter = Interpreter(machine_entry[0], context, Limits(data_limit=self.settings.data_limit))
        return context, branch, interpreter

    def _remember_context(self, record: ExecutionRecord) -> tuple[ExecutionContext, tuple[str, int]]:
        """Cache what the steps of ``record``'s execution need of it (its context, its machine's key)."""
        cached = (commits.execution_context(record), (record.workflow_id, record.workflow_version))
        with self._cache_lock:
            self._contexts[record.execution_id] = cached
            if len(self._contexts) > _CONTEXT_CACHE_SIZE:
                self._contexts.popitem(last=False)
        return cached

    def _machine(self, key: tuple[str, int]) -> tuple[CompiledMachine, str] | None:
        entry = self._machines.get(key)  # a dict read or write is atomic; a duplicate compile is harmless
        if entry is None:
            workflow = self.storage.get_workflow(key[0], key[1])
            if workflow is None:
                return None
            entry = (compile_machine(workflow.definition), workflow.name)
            self._machines[key] = entry
        return entry

    def _retire(self, item: WorkItem) -> None:
        """Drop an item whose branch is over, except the start of a child that succeeded before its join
        was reopened by a redrive: admitted again, it is counted again without running."""
        if item.kind == WORK_START:
            branch = self.storage.get_branch(item.branch_id)
            if branch is not None and branch.status == SUCCEEDED and branch.parent_id is not None:
                self.storage.commit(Commit(branch.execution_id, item, branch), self.clock())
                self.wake()
                return
        self.storage.complete_work(item)

    def _children_event(self, item: WorkItem) -> ResumeEvent:
        payload = item.payload or {}
        if payload.get("error") is not None:
            return ChildrenFailed(str(payload["error"]), str(payload.get("cause") or ""))
        outputs: list[Any] = []
        for child in self.storage.child_results(str(payload["join_id"])):
            if child.status == SUCCEEDED:
                outputs.append(child.output)
            else:
                outputs.append({"Error": child.error, "Cause": child.cause})
        return ChildrenSucceeded(outputs)

    async def _commit(
        self, item: WorkItem, execution: ExecutionContext, step: Step, before: Branch
    ) -> list[WorkItem]:
        """Commit a step (in the loop tick's group commit); the work it handed back to this worker.

        ``before`` is the branch as the step found it (the spans of the states it left are read from both).

        The branch just written (and the children a fan-out started) is kept for the handed-back item of
        the same branch, so its next step does not read it back: nobody else changes a branch while its
        work item is leased here, and whoever cancels it (a stop, a failed sibling) deletes that item,
        which fences this worker out.
        """
        started = time.perf_counter()
        if self._storage_pool is not None and any(isinstance(e, StartChildren) for e in step.effects):
            # Adding children may read the execution (_add_children): not on the loop.
            commit, result, now = await self._blocking(self._build_and_commit, item, execution, step)
        else:
            commit, now = self._build_commit(item, execution, step)
            result = await self._group.commit(commit, now)
        metrics.storage_committed("transition", time.perf_counter() - started)
        self._observe_step(execution, before, step, result.execution_finished)
        if result.execution_finished:
            self.notifier.finished(execution.execution_id, commits.ending(step.branch, now))
        if result.new_work > len(result.claimed):
            # Work this worker was not handed (timers, fan-out children): let the claim loop look.
            self.wake()
        written = {child.branch_id: child for child in commit.children}
        if step.branch.status == ACTIVE:
            written[step.branch.branch_id] = step.branch
        for claimed in result.claimed:
            owned = written.get(claimed.branch_id)
            if owned is not None and claimed.work_id is not None:
                self._owned_branches[claimed.work_id] = owned
        return result.claimed

    def _observe_step(
        self, execution: ExecutionContext, before: Branch, step: Step, execution_finished: bool
    ) -> None:
        """Metrics, spans and the log line of a committed step."""
        workflow = execution.state_machine_name
        spans.record_step(execution.execution_id, before, step)
        for effect in step.effects:
            if isinstance(effect, StartTimer) and effect.purpose == "retry":
                metrics.retry_scheduled(workflow)
            elif isinstance(effect, StartChildren) and effect.distributed:
                metrics.execution_started(workflow, len(effect.children))
        branch = step.branch
        if not (execution_finished and branch.owns_execution and branch.status in (SUCCEEDED, FAILED)):
            return
        now = self.clock()
        started_at = epoch_of(execution.start_time)
        metrics.execution_finished(workflow, branch.status, now - started_at)
        spans.record_execution(
            execution.execution_id,
            workflow,
            branch.trace_parent,
            started_at,
            now,
            branch.status,
            branch.error,
        )
        logger.debug(
            "execution %s ended: %s",
            execution.execution_id,
            branch.status,
            extra={"execution_id": execution.execution_id},
        )

    def _build_and_commit(
        self, item: WorkItem, execution: ExecutionContext, step: Step
    ) -> tuple[Commit, CommitResult, float]:
        commit, now = self._build_commit(item, execution, step)
        return commit, self.storage.commit(commit, now), now

    def _build_commit(self, item: WorkItem, execution: ExecutionContext, step: Step) -> tuple[Commit, float]:
        now = self.clock()
        commit = commits.step_commit(item, execution, step, now, self.settings.time_scale)
        for effect in step.effects:
            if isinstance(effect, StartChildren):
                self._add_children(commit, step.branch, effect, execution, now)
        # Go on here without a claim: with this branch's next step, or with the children a fan-out
        # starts if they fit within max_in_flight (a larger one's are claimed in batches instead).
        if self._room() > (0 if commit.join is None else commit.join.initially_started):
            commit.claim_owner = self.owner
            commit.lease_until = now + self.settings.lease_seconds
        return commit, now

    def _add_children(
        self, commit: Commit, parent: Branch, effect: StartChildren, execution: ExecutionContext, now: float
    ) -> None:
        """The children a step starts; a distributed Map's run them as child executions of the
        execution's own workflow version, recorded as its Map Run."""
        pinned: tuple[str, int] | None = None
        if effect.distributed:
            with self._cache_lock:
                cached = self._contexts.get(execution.execution_id)
            # Workers run durable executions only (express ones run inline in the express runner).
            if cached is not None:
                pinned = cached[1]
            else:
                record = self.storage.get_execution(execution.execution_id)
                if record is not None:
                    pinned = (record.workflow_id, record.workflow_version)
        join_id = commits.add_children(commit, parent, effect, execution, now, pinned)
        if pinned is not None:
            # What the AWS API's DescribeMapRun and ListExecutions(mapRunArn) read; the same on a replay.
            self.storage.put_resource(
                MAP_RUN,
                map_run_id(join_id),
                {
                    "execution_id": execution.execution_id,
                    "join_id": join_id,
                    "label": effect.label,
                    "state": effect.state_name,
                    "total": len(effect.children),
                    "started_at": now,
                },
            )

    def _park_for_token(self, item: WorkItem, branch: Branch, effect: InvokeTask) -> None:
        # The service may have reported its outcome before it answered the call, and that outcome may
        # already be applied: then the task is over and writing the waiting branch back would undo it.
        current = self.storage.get_branch(branch.branch_id)
        if current is None or current.task_token != effect.task_token or current.phase != PHASE_TASK:
            self.storage.complete_work(item)
            return
        branch = current
        now = self.clock()
        work: list[WorkItem] = []
        commit = Commit(execution_id=item.execution_id, consumed=item, branch=branch, work=work)
        if effect.heartbeat_seconds:
            work.append(
                WorkItem(
                    item.execution_id,
                    branch.branch_id,
                    WORK_TOKEN,
                    self._scaled(now + effect.heartbeat_seconds, now),
                    {"error": "States.HeartbeatTimeout", "cause": "", "token": effect.task_token},
                )
            )
        if effect.timeout_seconds:
            work.append(
                WorkItem(
                    item.execution_id,
                    branch.branch_id,
                    WORK_TOKEN,
                    self._scaled(now + effect.timeout_seconds, now),
                    {"error": "States.Timeout", "cause": "", "token": effect.task_token},
                )
            )
        self.storage.commit(commit, now)
        self.wake()  # its timers may be due before the loop next looks

    def _queue_activity_task(self, item: WorkItem, branch: Branch, effect: InvokeTask, activity: str) -> None:
        assert effect.task_token is not None
        enqueue_activity_task(self.storage, activity, effect.task_token, effect.payload, self.clock())
        self._park_for_token(item, branch, effect)
        self.notifier.finished(wake_key(activity))

    def _fire_schedule(self, item: WorkItem) -> list[WorkItem]:
        """Start a schedule's due ticks; the new executions' first work comes back to this worker."""
        owner = self.owner if self.has_room() else None
        settings = self.settings
        result = fire_schedule(
            self.storage, item, self.clock(), settings.time_scale, owner, settings.lease_seconds
        )
        self.wake()  # the next tick may be due before the loop next looks
        return result.claimed

    def _timeout_execution(self, item: WorkItem) -> None:
        now = self.clock()
        if self.storage.finish_execution(
            item.execution_id, ExecutionStatus.TIMED_OUT, now, "States.Timeout", "Execution timed out"
        ):
            self.notifier.finished(item.execution_id)
            record = self.storage.get_execution(item.execution_id)
            if record is not None:
                metrics.execution_finished(record.workflow_name, record.status, now - record.started_at)
                spans.record_ended(self.storage, record, now)
        self.storage.complete_work(item)

    async def _send_webhook(self, item: WorkItem) -> None:
        """One delivery attempt; the attempt count travels in the rescheduled item's payload."""
        execution = await self._blocking(self.storage.get_execution, item.execution_id)
        if execution is None or not execution.callback_url:
            await self._blocking(self.storage.complete_work, item)
            return
        secret = self.settings.webhook_secret
        if is_broker_url(execution.callback_url):
            delivery = await publish_record(execution, secret, self.clock(), self.settings.outbound)
        else:
            delivery = await deliver_webhook(self.invoker.client, execution, secret, self.clock())
        attempt = int((item.payload or {}).get("attempt", 0)) + 1
        now = self.clock()
        details: dict[str, Any] = {
            "url": execution.callback_url,
            "attempts": attempt,
            "status": delivery.status,
        }
        if delivery.delivered:
            metrics.webhook_attempted("delivered")
            outcome = HistoryEvent(webhooks.DELIVERED, details, now)
            await self._blocking(self.storage.complete_work, item, None, None, [outcome])
            return
        details["error"] = delivery.error
        if delivery.final or attempt >= self.settings.webhook_attempts:
            metrics.webhook_attempted("failed")
            outcome = HistoryEvent(webhooks.GAVE_UP, details, now)
            await self._blocking(self.storage.complete_work, item, None, None, [outcome])
            return
        metrics.webhook_attempted("retried")
        due = now + webhooks.retry_delay(attempt) * self.settings.time_scale
        failed = HistoryEvent(webhooks.ATTEMPT_FAILED, {**details, "next_attempt_at": iso_time(due)}, now)
        await self._blocking(self.storage.complete_work, item, due, {"attempt": attempt}, [failed])
        self.wake()

    def _scaled(self, due: float, now: float) -> float:
        return commits.scaled(due, now, self.settings.time_scale)

    def _callback_url(self) -> str | None:
        if not self.settings.public_url:
            return None
        return f"{self.settings.public_url.rstrip('/')}/tasks"


__all__ = ["Worker", "WorkerSettings"]
