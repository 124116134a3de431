"""The pure ASL interpreter.

Given a compiled machine, a branch (plain data) and what just happened, it returns the branch's next
state, the effects the runtime must perform (call a task, set a timer, start child branches) and the
history to append. It does no I/O and reads no clock: ``now`` is passed in, and so is the source of the
random bytes that make task tokens unguessable. A branch runs through Pass, Choice, Succeed and Fail
states in one call and stops at the first state that needs the outside world.
"""

from __future__ import annotations

import base64
import hashlib
import math
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.jsonata import QUERY_EVALUATION_ERROR, QueryEvaluationError
from machinery.asl.model import JSONATA, Catcher, CompiledMachine, Retrier, State
from machinery.engine.context import context_object, iso_time
from machinery.engine.dataflow import (
    DEFAULT_DATA_LIMIT,
    JsonPathFlow,
    Outcome,
    StateFlow,
    batch_inputs,
    check_size,
    to_json_text,
)
from machinery.engine.jsonata_flow import JsonataFlow
from machinery.engine.types import (
    ACTIVE,
    FAILED,
    PHASE_CHILDREN,
    PHASE_DONE,
    PHASE_READ,
    PHASE_RETRY,
    PHASE_TASK,
    PHASE_WAIT,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
    ChildStart,
    ExecutionContext,
    HistoryEvent,
    InvokeTask,
    ItemsRead,
    ItemsReadFailed,
    ReadItems,
    ResumeEvent,
    StartChildren,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)

#: Errors that no Retry or Catch handles: the execution fails (AWS: "not retriable").
_TERMINAL = frozenset({"States.Runtime"})
#: Errors that ``States.ALL`` and ``States.TaskFailed`` do not match (naming them explicitly does).
_UNCATCHABLE_BY_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})
#: Errors of the engine itself whose cause AWS prefixes with the state and its entered event.
_PREFIXED_ERRORS = frozenset({"States.Runtime", "States.QueryEvaluationError"})
_PREFIX = "An error occurred while executing the state"
#: A Map state's ItemReader failed to read its items.
ITEM_READER_FAILED = "States.ItemReaderFailed"
#: Guard against a machine that loops through Pass/Choice states forever within one call.
_MAX_SYNC_TRANSITIONS = 100_000
#: Random bytes in every task token (128 bits): whoever can read an execution cannot forge its tokens.
TASK_TOKEN_RANDOM_BYTES = 16


__all__ = ["Interpreter", "Limits", "decode_task_token", "iso_time", "map_run_arn", "map_run_id"]


@dataclass(frozen=True)
class Limits:
    """Tunable limits of the interpreter."""

    data_limit: int = DEFAULT_DATA_LIMIT


class Interpreter:
    """Runs the states of one branch of a compiled machine for one call of :meth:`start` or :meth:`resume`.

    Cheap to build; build one per call (it remembers the branch it is working on). ``random_bytes``
    supplies the randomness of task tokens (tests may pass a deterministic one).
    """

    def __init__(
        self,
        machine: CompiledMachine,
        execution: ExecutionContext,
        limits: Limits | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ):
        self.machine = machine
        self.execution = execution
        self.limits = limits or Limits()
        self.random_bytes = random_bytes

    # Entry points -----------------------------------------------------------------------------

    def start(self, branch: Branch, now: float) -> Step:
        """Run a fresh branch from its container's ``StartAt`` with ``branch.state_input`` as input."""
        branch = _copy(branch)
        self._current_branch = branch
        step = Step(branch=branch)
        if branch.owns_execution:
            branch.event_cursor = 0
            self._record(
                step,
                "ExecutionStarted",
                {
                    "input": to_json_text(branch.state_input),
                    "inputDetails": {"truncated": False},
                    "roleArn": self.execution.role_arn,
                },
                now,
            )
        elif branch.map_item is not None:
            self._record(step, "MapIterationStarted", {"index": branch.index}, now)
        container = self.machine.container(branch.container)
        self._run(step, container.start_at, branch.state_input, now)
        return step

    def redrive(self, branch: Branch, now: float) -> Step:
        """Enter again the state a redriven branch did not finish, with the input it had then."""
        branch = _copy(branch)
        self._current_branch = branch
        step = Step(branch=branch)
        assert branch.state is not None
        self._run(step, branch.state, branch.state_input, now)
        return step

    def heartbeat_seconds(self, branch: Branch) -> float | None:
        """``HeartbeatSeconds`` (or ``HeartbeatSecondsPath``) of the Task state ``branch`` waits in.

        Evaluated as when the task was scheduled: the branch keeps the state's input and variables while
        the task is outstanding. ``None`` when the state has none or the path no longer resolves.
        """
        if branch.state is None:
            return None
        state = self.machine.state(branch.container, branch.state)
        if state.type != "Task":
            return None
        self._current_branch = branch
        try:
            return self._flow(state, branch.state_input, 0.0).task_limits()[1]
        except (StatesError, PathSyntaxError):
            return None

    def resume(self, branch: Branch, event: ResumeEvent, now: float) -> Step:
        """Continue a waiting branch with what happened."""
        branch = _copy(branch)
        self._current_branch = branch
        step = Step(branch=branch)
        if branch.status != ACTIVE or branch.state is None:
            return step
        state = self.machine.state(branch.container, branch.state)
        try:
            if isinstance(event, TaskSucceeded) and branch.phase == PHASE_TASK:
                self._task_succeeded(step, state, event.output, now)
            elif isinstance(event, TaskFailed) and branch.phase == PHASE_TASK:
                self._record_task_started(step, state, now)
                prefix = _task_event_prefix(state.resource)
                failure = {**_task_resource(state), "error": event.error, "cause": event.cause}
                if event.error in ("States.Timeout", "States.HeartbeatTimeout"):
                    self._record(step, f"{prefix}TimedOut", failure, now)
                else:
                    self._record(step, f"{prefix}Failed", failure, now)
                self._state_failed(step, state, event.error, event.cause, now)
            elif isinstance(event, TimerFired) and branch.phase == PHASE_WAIT:
                outcome = self._flow(state, branch.state_input, now).wait_outcome(branch.pending)
                next_name, next_input = self._exit(step, state, outcome, now)
                if next_name is not None:
                    self._run(step, next_name, next_input, now)
            elif isinstance(event, TimerFired) and branch.phase == PHASE_RETRY:
                self._schedule_task_or_children(step, state, now)
            elif isinstance(event, ChildrenSucceeded) and branch.phase == PHASE_CHILDREN:
                self._children_succeeded(step, state, event.outputs, now)
            elif isinstance(event, ChildrenFailed) and branch.phase == PHASE_CHILDREN:
                kind = "Map" if state.type == "Map" else "Parallel"
                if _distributed(state):
                    self._record(step, "MapRunFailed", {"error": event.error, "cause": event.cause}, now)
                self._state_failed(step, state, event.error, event.cause, now, f"{kind}StateFailed")
            elif isinstance(event, ItemsRead) and branch.phase == PHASE_READ:
                self._start_map(step, state, now, event.items)
            elif isinstance(event, ItemsReadFailed) and branch.phase == PHASE_READ:
                self._state_failed(step, state, ITEM_READER_FAILED, event.cause, now, "MapStateFailed")
            else:
                return step
        except StatesError as exc:
            self._evaluation_failed(step, state, exc, now)
            self._state_failed(step, state, exc.error, self._cause(state, exc), now)
        except PathSyntaxError as exc:
            self._state_failed(step, state, "States.Runtime", self._cause(state, _unsupported(exc)), now)
        return step

    # The state loop ---------------------------------------------------------------------------

    def _run(self, step: Step, state_name: str | None, state_input: Any, now: float) -> None:
        """Enter states one after another until one waits on the outside world or the branch ends."""
        transitions = 0
        while state_name is not None and step.branch.status == ACTIVE:
            transitions += 1
            if transitions > _MAX_SYNC_TRANSITIONS:
                self._fail_branch(
                    step,
                    "States.Runtime",
                    f"More than {_MAX_SYNC_TRANSITIONS} transitions without waiting: an infinite loop?",
                    now,
                )
                return
            state = self.machine.state(step.branch.container, state_name)
            branch = step.branch
            branch.state = state_name
            branch.state_input = state_input
            branch.entered_time = iso_time(now)
            branch.retry_counts = [0] * len(state.retry)
            branch.pending = None
            branch.phase = PHASE_DONE
            self._record(
                step,
                f"{state.type}StateEntered",
                {
                    "name": state.name,
                    "input": to_json_text(state_input),
                    "inputDetails": {"truncated": False},
                },
                now,
            )
            branch.entered_event_id = branch.event_cursor or 0
            try:
                next_name, next_input = self._enter(step, state, state_input, now)
            except StatesError as exc:
                self._evaluation_failed(step, state, exc, now)
                # A Map or Parallel state failing before it started its children still records its end.
                final = f"{state.type}StateFailed" if isinstance(exc, QueryEvaluationError) else None
                final = final if state.type in ("Map", "Parallel") else None
                self._state_failed(step, state, exc.error, self._cause(state, exc), now, final)
                return
            except PathSyntaxError as exc:
                self._state_failed(step, state, "States.Runtime", self._cause(state, _unsupported(exc)), now)
                return
            if next_name is None:
                return
            state_name, state_input = next_name, next_input

    def _enter(self, step: Step, state: State, state_input: Any, now: float) -> tuple[str | None, Any]:
        """Run one state. Returns the next state and its input, or ``(None, _)`` when it waits or ends."""
        check_size(state_input, self.limits.data_limit, state.name)
        kind = state.type
        if kind in ("Task", "Parallel", "Map"):
            self._schedule_task_or_children(step, state, now)
            return None, None
        flow = self._flow(state, state_input, now)
        if kind == "Pass":
            return self._exit(step, state, flow.pass_outcome(), now)
        if kind == "Choice":
            target, outcome = flow.choose()
            self._leave(step, state, outcome, now)
            return target, outcome.output
        if kind == "Succeed":
            outcome = flow.succeed_outcome()
            self._leave(step, state, outcome, now)
            self._succeed_branch(step, outcome.output, now)
            return None, None
        if kind == "Fail":
            error, cause = flow.fail_fields()
            self._fail_branch(step, error, cause, now)
            return None, None
        if kind == "Wait":
            due, pending = flow.wait(now)
            step.branch.pending = pending
            step.branch.phase = PHASE_WAIT
            step.effects.append(StartTimer(due=due, purpose="wait"))
            return None, None
        raise StatesError("States.Runtime", f"Unsupported state type '{kind}' in state '{state.name}'.")

    # Tasks, Parallel and Map -------------------------------------------------------------------

    def _schedule_task_or_children(self, step: Step, state: State, now: float) -> None:
        if state.type == "Task":
            self._schedule_task(step, state, now)
        elif state.type == "Parallel":
            self._start_parallel(step, state, now)
        else:
            self._start_map(step, state, now)

    def _schedule_task(self, step: Step, state: State, now: float) -> None:
        branch = step.branch
        branch.attempt += 1
        token = _task_token(branch, state.name, self.random_bytes(TASK_TOKEN_RANDOM_BYTES))
        branch.task_token = token
        flow = self._flow(state, branch.state_input, now)
        payload = flow.payload()
        resource = flow.resource()
        timeout, heartbeat = flow.task_limits()
        wait_for_token = resource.endswith(".waitForTaskToken")
        branch.phase = PHASE_TASK
        limits = {
            **({"timeoutInSeconds": int(timeout)} if timeout is not None else {}),
            **({"heartbeatInSeconds": int(heartbeat)} if heartbeat is not None else {}),
        }
        prefix = _task_event_prefix(resource)
        if prefix in ("LambdaFunction", "Activity"):
            details = {
                "resource": resource,
                "input": to_json_text(payload),
                "inputDetails": {"truncated": False},
            }
            self._record(step, f"{prefix}Scheduled", {**details, **limits}, now)
        else:
            details = {
                "resource": resource,
                "resourceType": _resource_type(resource),
                "region": "local",
                "parameters": to_json_text(payload),
            }
            self._record(step, "TaskScheduled", {**details, **limits}, now)
        step.effects.append(
            InvokeTask(
                state_name=state.name,
                resource=resource,
                payload=payload,
                attempt=branch.attempt,
                timeout_seconds=timeout,
                heartbeat_seconds=heartbeat,
                task_token=token,
                wait_for_token=wait_for_token,
            )
        )

    def _record_task_started(self, step: Step, state: State, now: float) -> None:
        # The runtime does not report the moment a call starts; the interpreter records it with the outcome,
        # which keeps the order Step Functions shows (Scheduled, Started, Succeeded/Failed/TimedOut).
        self._record(step, f"{_task_event_prefix(state.resource)}Started", _task_resource(state), now)

    def _task_succeeded(self, step: Step, state: State, result: Any, now: float) -> None:
        self._record_task_started(step, state, now)
        self._record(
            step,
            f"{_task_event_prefix(state.resource)}Succeeded",
            {**_task_resource(state), "output": to_json_text(result), "outputDetails": {"truncated": False}},
            now,
            state,
        )
        check_size(result, self.limits.data_limit, state.name)
        self._finish_with_result(step, state, result, now)

    def _finish_with_result(self, step: Step, state: State, result: Any, now: float) -> None:
        outcome = self._flow(state, step.branch.state_input, now).result_outcome(result)
        next_name, next_input = self._exit(step, state, outcome, now)
        if next_name is not None:
            self._run(step, next_name, next_input, now)

    def _start_parallel(self, step: Step, state: State, now: float) -> None:
        branch = step.branch
        effective = self._flow(state, branch.state_input, now).payload()
        branch.phase = PHASE_CHILDREN
        # Recorded on every attempt, as Step Functions does when a Retry starts the branches again.
        self._record(step, "ParallelStateStarted", {}, now)
        branch.attempt += 1
        # Children write history too: this branch no longer knows the execution's event ids.
        branch.event_cursor = None
        step.effects.append(
            StartChildren(
                kind="Parallel",
                state_name=state.name,
                children=[ChildStart(container=key, input=effective) for key in state.branches],
            )
        )

    def _start_map(self, step: Step, state: State, now: float, read: list[Any] | None = None) -> None:
        """Start a Map's iterations; with an ``ItemReader`` that needs I/O, first ask for its items.

        ``read`` is what the runtime's reader returned (:class:`ItemsRead`), ``None`` before reading.
        """
        branch = step.branch
        flow = self._flow(state, branch.state_input, now)
        items = read
        if state.item_reader is not None:
            reader = flow.item_reader()
            if items is None and reader.resource is not None:
                branch.phase = PHASE_READ
                step.effects.append(
                    ReadItems(
                        state_name=state.name,
                        resource=reader.resource,
                        parameters=reader.parameters,
                        reader_config=reader.reader_config,
                    )
                )
                return
            if items is None:
                items = reader.inline_items()
            if reader.max_items:
                items = items[: reader.max_items]
        inputs = flow.map_inputs(items)
        batcher = flow.item_batcher() if state.item_batcher is not None else None
        if batcher is not None:
            # ItemBatcher: each child processes a batch, {"Items": [...], "BatchInput": ...}.
            batches = batch_inputs([item_input for _item, item_input in inputs], batcher)
            inputs = [({"Index": index, "Value": batch}, batch) for index, batch in enumerate(batches)]
        children = [
            ChildStart(container=state.processor or (), input=item_input, map_item=item)
            for item, item_input in inputs
        ]
        # Recorded on every attempt and before the limits are checked, as Step Functions does.
        self._record(step, "MapStateStarted", {"length": len(children)}, now)
        limits = flow.map_limits()
        tolerated_pct = limits.tolerated_failure_percentage
        if tolerated_pct is not None and not 0 <= tolerated_pct <= 100:
            raise StatesError("States.Runtime", "ToleratedFailurePercentage must be between 0 and 100.")
        branch.phase = PHASE_CHILDREN
        branch.attempt += 1
        distributed = _distributed(state)
        if distributed:
            # As Step Functions shows it: the iterations run as child executions of a "map run".
            self._record(step, "MapRunStarted", {"mapRunArn": self._map_run_arn(state, branch)}, now)
        branch.event_cursor = None
        if not children:
            self._children_succeeded(step, state, [], now)
            return
        step.effects.append(
            StartChildren(
                kind="Map",
                state_name=state.name,
                children=children,
                max_concurrency=limits.max_concurrency or 0,
                tolerated_failure_count=limits.tolerated_failure_count or 0,
                tolerated_failure_percentage=float(tolerated_pct or 0.0),
                distributed=distributed,
                label=state.label or state.name,
            )
        )

    def _map_run_arn(self, state: State, branch: Branch) -> str:
        """``arn:...:mapRun:<machine>/<label>:<run id>``; the run id is the same on a replay."""
        return map_run_arn(self.execution, state.label or state.name, f"{branch.branch_id}@{branch.attempt}")

    def _children_succeeded(self, step: Step, state: State, outputs: list[Any], now: float) -> None:
        kind = "Map" if state.type == "Map" else "Parallel"
        if _distributed(state):
            self._record(step, "MapRunSucceeded", {}, now)
        self._record(step, f"{kind}StateSucceeded", {}, now)
        self._finish_with_result(step, state, outputs, now)

    # Errors -------------------------------------------------------------------------------------

    def _state_failed(
        self, step: Step, state: State, error: str, cause: str, now: float, final_event: str | None = None
    ) -> None:
        """Apply the state's Retry, then its Catch; otherwise fail the branch.

        ``final_event`` (``MapStateFailed`` ...) is recorded when the error is not retried.
        """
        branch = step.branch
        if error in _TERMINAL:
            if final_event:
                self._record(step, final_event, {}, now)
            self._fail_branch(step, error, cause, now)
            return
        retry_index = _match_retrier(state.retry, error)
        if retry_index is not None and state.type in ("Task", "Parallel", "Map"):
            retrier = state.retry[retry_index]
            counts = list(branch.retry_counts) or [0] * len(state.retry)
            attempts = counts[retry_index]
            if attempts < retrier.max_attempts:
                counts[retry_index] = attempts + 1
                branch.retry_counts = counts
                branch.phase = PHASE_RETRY
                delay = _backoff(retrier, attempts, branch)
                step.effects.append(StartTimer(due=now + delay, purpose="retry"))
                return
        if final_event:
            self._record(step, final_event, {}, now)
        catcher = _match_catcher(state.catch, error)
        if catcher is not None:
            try:
                outcome = self._flow(state, branch.state_input, now).caught(catcher, error, cause)
                self._leave(step, state, outcome, now)
            except StatesError as exc:
                # The Catcher itself failed (its Output, Assign or ResultPath): nothing handles that.
                self._evaluation_failed(step, state, exc, now)
                self._fail_branch(step, exc.error, self._cause(state, exc), now)
                return
            except PathSyntaxError as exc:
                self._fail_branch(step, "States.Runtime", self._cause(state, _unsupported(exc)), now)
                return
            self._run(step, catcher.next, outcome.output, now)
            return
        self._fail_branch(step, error, cause, now)

    # Branch endings -----------------------------------------------------------------------------

    def _exit(self, step: Step, state: State, outcome: Outcome, now: float) -> tuple[str | None, Any]:
        """Leave ``state`` and return the next state and its input (``(None, None)`` at the end)."""
        self._leave(step, state, outcome, now)
        if state.end or state.next is None:
            self._succeed_branch(step, outcome.output, now)
            return None, None
        return state.next, outcome.output

    def _succeed_branch(self, step: Step, output: Any, now: float) -> None:
        branch = step.branch
        branch.status = SUCCEEDED
        branch.phase = PHASE_DONE
        branch.output = output
        branch.pending = None
        if branch.owns_execution:
            self._record(
                step,
                "ExecutionSucceeded",
                {"output": to_json_text(output), "outputDetails": {"truncated": False}},
                now,
            )
        elif branch.map_item is not None:
            self._record(step, "MapIterationSucceeded", {"index": branch.index}, now)

    def _fail_branch(self, step: Step, error: str | None, cause: str | None, now: float) -> None:
        branch = step.branch
        branch.status = FAILED
        branch.phase = PHASE_DONE
        branch.error = error
        branch.cause = cause
        branch.pending = None
        if branch.owns_execution:
            details = {key: value for key, value in (("error", error), ("cause", cause)) if value is not None}
            self._record(step, "ExecutionFailed", details, now)
        elif branch.map_item is not None:
            self._record(step, "MapIterationFailed", {"index": branch.index}, now)

    # Helpers ------------------------------------------------------------------------------------

    _current_branch: Branch | None = None

    def _flow(self, state: State, state_input: Any, now: float) -> StateFlow:
        """The data flow of ``state`` in the current branch, in the state's query language."""
        branch = self._current_branch
        assert branch is not None
        context = context_object(self.execution, branch, state, now)
        if state.query_language == JSONATA:
            return JsonataFlow(state, state_input, context, branch.variables)
        return JsonPathFlow(state, state_input, context, branch.variables)

    def _record(
        self, step: Step, kind: str, details: dict[str, Any], now: float, state: State | None = None
    ) -> None:
        step.history.append(HistoryEvent(kind, details, now))
        if step.branch.event_cursor is not None:
            step.branch.event_cursor += 1

    def _cause(self, state: State, exc: StatesError) -> str:
        """The cause of an error the engine raised in ``state``, worded as Step Functions words it."""
        if exc.error not in _PREFIXED_ERRORS or exc.cause.startswith(_PREFIX):
            return exc.cause
        entered = self._current_branch.entered_event_id if self._current_branch else 0
        where = f" (entered at the event id #{entered})" if entered else ""
        return f"{_PREFIX} '{state.name}'{where}. {exc.cause}"

    def _leave(self, step: Step, state: State, outcome: Outcome, now: float) -> None:
        """Check the output's size, assign the state's variables and record ``...StateExited``."""
        check_size(outcome.output, self.limits.data_limit, state.name)
        details: dict[str, Any] = {}
        if outcome.assigned is not None:
            step.branch.variables.update(outcome.assigned)
            details["assignedVariables"] = {
                name: to_json_text(value) for name, value in outcome.assigned.items()
            }
            details["assignedVariablesDetails"] = {"truncated": False}
        details.update(
            {
                "name": state.name,
                "output": to_json_text(outcome.output),
                "outputDetails": {"truncated": False},
            }
        )
        self._record(step, f"{state.type}StateExited", details, now)

    def _evaluation_failed(self, step: Step, state: State, exc: StatesError, now: float) -> None:
        """Record AWS's ``EvaluationFailed`` event for an expression (or Map input) that failed."""
        if exc.error != QUERY_EVALUATION_ERROR:
            return
        details = {"cause": self._cause(state, exc), "error": exc.error}
        location = getattr(exc, "location", "")
        if location:
            details["location"] = location
        details["state"] = state.name
        self._record(step, "EvaluationFailed", details, now)


def map_run_id(join_id: str) -> str:
    """The run id of the map run that a distributed Map's join is (the same on every replay)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"machinery:{join_id}"))


def map_run_arn(execution: ExecutionContext, label: str, join_id: str) -> str:
    """``arn:...:mapRun:<machine>/<label>:<run id>`` of the map run of ``join_id``."""
    return (
        f"arn:aws:states:{execution.region}:{execution.account}:mapRun:"
        f"{execution.state_machine_name}/{label}:{map_run_id(join_id)}"
    )


def _unsupported(exc: PathSyntaxError) -> StatesError:
    # Validation rejects what it knows to be wrong; what slips through fails the execution, not the worker.
    return StatesError("States.Runtime", str(exc))


def _distributed(state: State) -> bool:
    return state.type == "Map" and state.processor_mode == "DISTRIBUTED"


def _copy(branch: Branch) -> Branch:
    # What dataclasses.replace gives, at a tenth of its cost (it goes through __init__ and its defaults;
    # a copy per transition made it 6 % of a durable execution's in-process time).
    copied = object.__new__(Branch)
    copied.__dict__.update(branch.__dict__)
    copied.retry_counts = list(branch.retry_counts)
    copied.variables = dict(branch.variables)
    return copied


def _match_retrier(retriers: tuple[Retrier, ...], error: str) -> int | None:
    for index, retrier in enumerate(retriers):
        if _error_matches(retrier.error_equals, error):
            return index
    return None


def _match_catcher(catchers: tuple[Catcher, ...], error: str) -> Catcher | None:
    for catcher in catchers:
        if _error_matches(catcher.error_equals, error):
            return catcher
    return None


def _error_matches(error_equals: tuple[str, ...], error: str) -> bool:
    for name in error_equals:
        if name == error:
            return True
        if name == "States.ALL" and error not in _UNCATCHABLE_BY_ALL:
            return True
        if name == "States.TaskFailed" and error not in _UNCATCHABLE_BY_ALL and error != "States.Timeout":
            return True
    return False


def _backoff(retrier: Retrier, attempts: int, branch: Branch) -> float:
    delay = float(retrier.interval_seconds) * math.pow(float(retrier.backoff_rate), attempts)
    if retrier.max_delay_seconds is not None:
        delay = min(delay, float(retrier.max_delay_seconds))
    if retrier.jitter_strategy == "FULL":
        # Deterministic "randomness" keeps the interpreter pure and replays identical.
        digest = hashlib.sha256(f"{branch.branch_id}:{branch.state}:{attempts}".encode()).digest()
        delay *= int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    return delay


def _task_token(branch: Branch, state_name: str, nonce: bytes) -> str:
    """Where the task is (to find it without an index) and random bytes (so it cannot be guessed).

    The token is the credential of the callback routes; it is stored on the branch and compared in full,
    so the readable part only locates the task, and the state name comes last because it may contain
    ``|``.
    """
    raw = f"{branch.execution_id}|{branch.branch_id}|{branch.attempt}|{nonce.hex()}|{state_name}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_task_token(token: str) -> tuple[str, str, str, int] | None:
    """Split a task token into execution id, branch id, state name and attempt; ``None`` if malformed."""
    try:
        padded = token + "=" * (-len(token) % 4)
        execution_id, branch_id, attempt, nonce, state_name = (
            base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode().split("|", 4)
        )
        if len(nonce) != 2 * TASK_TOKEN_RANDOM_BYTES:
            return None
        return execution_id, branch_id, state_name, int(attempt)
    except (ValueError, UnicodeDecodeError):
        return None


def _task_event_prefix(resource: str | None) -> str:
    """History events of a Task: ``LambdaFunction...`` for a Lambda ARN resource, ``Activity...`` for
    an activity ARN, else ``Task...``."""
    text = resource or ""
    if text.startswith("arn:aws:lambda:"):
        return "LambdaFunction"
    if text.startswith("arn:aws:states:") and ":activity:" in text:
        return "Activity"
    return "Task"


def _task_resource(state: State) -> dict[str, str]:
    """``resourceType`` and ``resource`` of a ``Task...`` event, as its ``TaskScheduled`` names them
    (Lambda ARN and activity events have neither)."""
    resource = state.resource if isinstance(state.resource, str) else ""
    if _task_event_prefix(resource) != "Task":
        return {}
    return {"resourceType": _resource_type(resource), "resource": resource}


def _resource_type(resource: str) -> str:
    if resource.startswith("arn:aws:states:::"):
        return resource.split(":::", 1)[1].split(":", 1)[0]
    if resource.startswith("arn:aws:lambda:"):
        return "lambda"
    if resource.startswith(("http://", "https://")):
        return "http"
    return "service"


def branch_variables(branch: Branch) -> Mapping[str, Any]:
    """The variables a branch sees (for JSONata and ``$name`` references)."""
    return branch.variables
