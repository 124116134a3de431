"""TestState: run one state on its own, with its result mocked or its task really called.

The state runs in a machine of its own, where each state it may go to (``Next``, a Catcher's or a Choice
rule's) is a ``Succeed`` stand-in: whichever the branch reaches is the ``nextState``. A Task (or Map,
Parallel) waits for a result: the ``mock`` (a result or an error) or, without one, the real call of its
resource. A Retrier that still has attempts makes the status ``RETRIABLE``; a Catcher that handles the
error makes it ``CAUGHT_ERROR``; a Wait state does not wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from machinery.asl.compiler import compile_machine
from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.model import JSONATA, State, is_set
from machinery.asl.validation import validate_definition
from machinery.engine.context import context_object
from machinery.engine.dataflow import JsonPathFlow, merge_result, render
from machinery.engine.interpreter import Interpreter, Limits, iso_time
from machinery.engine.jsonata_flow import JsonataFlow
from machinery.engine.types import (
    FAILED,
    PHASE_CHILDREN,
    PHASE_RETRY,
    PHASE_TASK,
    PHASE_WAIT,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
    ExecutionContext,
    InvokeTask,
    ResumeEvent,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from machinery.errors import Conflict, FieldIssue, InvalidDefinition
from machinery.runtime.tasks import CallIdentity, TaskInvoker, TaskOutcome

#: How a test without a mock calls a task: ``(effect) -> outcome``.
Caller = Callable[[InvokeTask], TaskOutcome]


@dataclass(frozen=True)
class Mock:
    result: Any = None
    error: str | None = None
    cause: str = ""
    has_result: bool = False


@dataclass
class StateTestOutcome:
    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    next_state: str | None = None
    inspection: dict[str, Any] = field(default_factory=dict)


class StateTestError(Conflict):
    """A TestState request that cannot run (AWS: ``ValidationException``)."""


def _targets(state: dict[str, Any]) -> list[str]:
    found = [state["Next"]] if isinstance(state.get("Next"), str) else []
    for catcher in state.get("Catch") or []:
        if isinstance(catcher, dict) and isinstance(catcher.get("Next"), str):
            found.append(catcher["Next"])
    for rule in state.get("Choices") or []:
        if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
            found.append(rule["Next"])
    if isinstance(state.get("Default"), str):
        found.append(state["Default"])
    return list(dict.fromkeys(found))


def isolated_machine(definition: Any, state_name: str | None) -> tuple[dict[str, Any], str]:
    """The one-state machine that runs the state under test, and its name in it."""
    if not isinstance(definition, dict):
        raise InvalidDefinition(
            "the definition must be an object", issues=[FieldIssue("definition", "not an object")]
        )
    language = {"QueryLanguage": definition["QueryLanguage"]} if "QueryLanguage" in definition else {}
    if state_name is not None:
        states = definition.get("States")
        if not isinstance(states, dict) or state_name not in states:
            raise StateTestError(f"the definition has no state '{state_name}'")
        state, name = states[state_name], state_name
    else:
        state, name = definition, "TestState"
        language = {}
    if not isinstance(state, dict):
        raise InvalidDefinition(
            "the state must be an object", issues=[FieldIssue("definition", "not an object")]
        )
    targets = _targets(state)
    if name in targets:
        name = f"{name} (under test)"
    machine = {**language, "StartAt": name, "States": {name: state}}
    for target in targets:
        machine["States"][target] = {"Type": "Succeed"}
    return machine, name


# pylint: disable-next=too-many-arguments,too-many-positional-arguments  # TestState's own parameters
def run_state_test(
    definition: Any,
    state_name: str | None,
    state_input: Any,
    variables: dict[str, Any],
    mock: Mock | None,
    call: Caller | None,
    retry_count: int = 0,
    inspect: bool = False,
    data_limit: int = 256 * 1024,
) -> StateTestOutcome:
    """Run the state under test once (see the module's docstring)."""
    machine_definition, name = isolated_machine(definition, state_name)
    problems = validate_definition(machine_definition)
    if problems:
        raise InvalidDefinition(
            "invalid state definition",
            issues=[FieldIssue(f"definition{p.path}", f"{p.code}: {p.message}") for p in problems],
        )
    machine = compile_machine(machine_definition)
    state = machine.state((), name)
    now = time.time()
    context = ExecutionContext(
        execution_id="test-state",
        name="TestState",
        input=state_input,
        start_time=iso_time(now),
        state_machine_id="test-state",
        state_machine_name="TestState",
    )
    interpreter = Interpreter(machine, context, Limits(data_limit=data_limit))
    branch = Branch(branch_id="test-state", execution_id="test-state", container=(), state_input=state_input)
    branch.variables = dict(variables)
    step = interpreter.start(branch, now)
    result: Any = None
    event = _outcome_needed(step, state, mock, call, retry_count)
    if event is not None:
        if isinstance(event, TaskSucceeded):
            result = event.output
        elif isinstance(event, ChildrenSucceeded):
            result = event.outputs
        step = _resume(interpreter, step, event, now)
    outcome = _judge(step, state, name)
    if inspect:
        outcome.inspection = _inspection(state, state_input, variables, result, step, context)
    return outcome


def _outcome_needed(
    step: Step, state: State, mock: Mock | None, call: Caller | None, retry_count: int
) -> ResumeEvent | None:
    """What the waiting state gets: the mock, or the real call's outcome; None when it does not wait."""
    branch = step.branch
    if branch.status != "ACTIVE":
        return None
    if branch.phase == PHASE_WAIT:
        return TimerFired()
    if state.retry:
        branch.retry_counts = [retry_count] * len(state.retry)
    if branch.phase == PHASE_CHILDREN:
        if mock is None:
            raise StateTestError("TestState runs a Map or Parallel state with a mock of its result only")
        if mock.error is not None:
            return ChildrenFailed(mock.error, mock.cause)
        if not isinstance(mock.result, list):
            raise StateTestError("the mock result of a Map or Parallel state must be a JSON array")
        return ChildrenSucceeded(mock.result)
    if branch.phase != PHASE_TASK:
        return None
    if mock is not None:
        return TaskFailed(mock.error, mock.cause) if mock.error is not None else TaskSucceeded(mock.result)
    effect = next(e for e in step.effects if isinstance(e, InvokeTask))
    if effect.wait_for_token:
        raise StateTestError("TestState does not wait for a task token: give a mock")
    if call is None:
        raise StateTestError("this task can only be tested with a mock")
    outcome = call(effect)
    return (
        TaskFailed(outcome.error, outcome.cause)
        if outcome.error is not None
        else TaskSucceeded(outcome.output)
    )


def _resume(interpreter: Interpreter, step: Step, event: ResumeEvent, now: float) -> Step:
    resumed = interpreter.resume(step.branch, event, now)
    resumed.history[:0] = step.history
    return resumed


_FAILURES = ("Failed", "TimedOut")


def _judge(step: Step, state: State, name: str) -> StateTestOutcome:
    branch = step.branch
    failure = next(
        (e for e in reversed(step.history) if e.type.endswith(_FAILURES) and "error" in e.details), None
    )
    error = None if failure is None else failure.details.get("error")
    cause = None if failure is None else failure.details.get("cause")
    if branch.phase == PHASE_RETRY:
        return StateTestOutcome("RETRIABLE", error=branch.error or error, cause=branch.cause or cause)
    if branch.status == FAILED:
        return StateTestOutcome("FAILED", error=branch.error, cause=branch.cause)
    if branch.status == SUCCEEDED:
        next_state = branch.state if branch.state != name else None
        if next_state is not None and failure is not None and state.catch:
            return StateTestOutcome("CAUGHT_ERROR", branch.output, error, cause, next_state)
        return StateTestOutcome("SUCCEEDED", branch.output, next_state=next_state)
    raise StateTestError(f"the state did not finish (it waits: {branch.phase})")


def _inspection(
    state: State,
    state_input: Any,
    variables: dict[str, Any],
    result: Any,
    step: Step,
    execution: ExecutionContext,
) -> dict[str, Any]:
    """DEBUG's ``inspectionData``: the data after each step of the state's data flow, as far as it got."""
    data: dict[str, Any] = {"input": state_input}
    branch = Branch(branch_id="test-state", execution_id="test-state", container=(), state=state.name)
    context = context_object(execution, branch, state, time.time())
    try:
        if state.query_language == JSONATA:
            flow: Any = JsonataFlow(state, state_input, context, variables)
            if state.type in ("Task", "Map", "Parallel"):
                data["afterArguments"] = flow.payload()
        else:
            flow = JsonPathFlow(state, state_input, context, variables)
            data["afterInputPath"] = flow.effective_input()
            if state.type in ("Task", "Map", "Parallel"):
                data["afterParameters"] = flow.payload()
            if result is not None:
                selected = result
                if is_set(state.result_selector):
                    selected = render(state.result_selector, result, context, variables, "ResultSelector")
                data["afterResultSelector"] = selected
                data["afterResultPath"] = merge_result(state_input, state.result_path, selected)
    except (StatesError, PathSyntaxError):
        pass  # the run itself reports the error; inspection stops where it failed
    if result is not None:
        data["result"] = result
    data["variables"] = dict(step.branch.variables)
    retry = next((e for e in step.effects if isinstance(e, StartTimer) and e.purpose == "retry"), None)
    if retry is not None:
        data["errorDetails"] = {"retryBackoffIntervalSeconds": int(max(0.0, retry.due - time.time()))}
    return data


def real_caller(invoker_factory: Callable[[], TaskInvoker]) -> Caller:
    """Call a task's resource as a worker would, on an event loop of its own."""

    def call(effect: InvokeTask) -> TaskOutcome:
        async def invoke() -> TaskOutcome:
            invoker = invoker_factory()
            try:
                return await invoker.invoke(effect, CallIdentity("test-state", "test-state"))
            finally:
                await invoker.close()

        return asyncio.run(invoke())

    return call
