"""Each data-flow step of one JSONPath state visit, replayed by the engine's own functions.

The history records a state's input, a task's effective input and result, and the state's output; the
steps between (after ``InputPath``, after ``ResultSelector``, after ``ResultPath``) are not recorded. The
console asks for them here: the same ``select``/``render``/``merge_result`` the interpreter ran, over the
recorded input and result. Variables are not recorded per visit, so a path reading ``$var`` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from machinery.asl.model import JSONATA, CompiledMachine, State, is_set
from machinery.engine.context import context_object
from machinery.engine.dataflow import merge_result, render, select
from machinery.engine.types import Branch
from machinery.errors import BadRequest, FieldIssue
from machinery.runtime.commits import execution_context
from machinery.storage.base import ExecutionRecord

_STEPS_WITH_RESULT = ("Task", "Parallel", "Map")


def find_state(machine: CompiledMachine, group: str | None, name: str) -> State:
    """The state ``name`` in the container whose graph id is ``group`` (the root when None)."""
    for key, container in machine.containers.items():
        if ("/".join(key) if key else None) == group and name in container.states:
            return container.states[name]
    if group is None and name in machine.root.states:
        return machine.root.states[name]
    raise BadRequest("unknown state", issues=[FieldIssue("state", f"no state '{name}' in this workflow")])


def dataflow_steps(
    record: ExecutionRecord, state: State, state_input: Any, result: Any
) -> list[dict[str, Any]]:
    """``[{"step", "expression", "value"} | {"step", "expression", "error"}]`` in the order they apply."""
    if state.query_language == JSONATA:
        raise BadRequest(
            "JSONata states record each step", issues=[FieldIssue("state", "is a JSONata state")]
        )
    branch = Branch(
        branch_id=record.execution_id, execution_id=record.execution_id, container=(), state_input=state_input
    )
    context = context_object(execution_context(record), branch, state, record.started_at)
    variables: dict[str, Any] = {}
    steps: list[dict[str, Any]] = []

    def step(name: str, expression: Any, compute: Callable[[], Any]) -> Any:
        try:
            value = compute()
        except Exception as exc:  # a replay that cannot run says why instead of failing the page
            steps.append({"step": name, "expression": expression, "error": str(exc)})
            raise _Stop from exc
        steps.append({"step": name, "expression": expression, "value": value})
        return value

    try:
        effective = step(
            "InputPath",
            state.input_path,
            lambda: select(state.input_path, state_input, context, variables, "InputPath"),
        )
        if state.type in ("Choice", "Wait", "Succeed", "Fail"):
            step(
                "OutputPath", state.output_path, lambda: select(state.output_path, effective, context, {}, "")
            )
            return steps
        if is_set(state.parameters):
            effective = step(
                "Parameters",
                state.parameters,
                lambda: render(state.parameters, effective, context, variables, "Parameters"),
            )
        if state.type == "Pass":
            result = state.result if is_set(state.result) else effective
            if is_set(state.result):
                step("Result", state.result, lambda: result)
        elif state.type in _STEPS_WITH_RESULT:
            if result is None:
                return steps
            if is_set(state.result_selector):
                result = step(
                    "ResultSelector",
                    state.result_selector,
                    lambda: render(state.result_selector, result, context, variables, "ResultSelector"),
                )
        merged = step(
            "ResultPath", state.result_path, lambda: merge_result(state_input, state.result_path, result)
        )
        step(
            "OutputPath", state.output_path, lambda: select(state.output_path, merged, context, variables, "")
        )
    except _Stop:
        pass
    return steps


class _Stop(Exception):
    """A step failed: the steps after it cannot be shown."""
