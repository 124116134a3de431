"""The pure interpreter, driven directly: outputs, effects and history, with no server and no clock."""

from __future__ import annotations

from typing import Any

import pytest

from machinery.asl.compiler import compile_machine
from machinery.engine.interpreter import Interpreter, Limits
from machinery.engine.types import (
    FAILED,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
    ExecutionContext,
    InvokeTask,
    StartChildren,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from machinery.runtime.tasks import TaskInvoker, _invoke_body, _lambda_service_error
from machinery.storage.memory import MemoryStorage

NOW = 1_700_000_000.0
EXECUTION = ExecutionContext(
    execution_id="exec-1",
    name="run-1",
    input={"a": 1},
    start_time="2023-11-14T22:13:20.000Z",
    state_machine_id="wf-1",
    state_machine_name="machine",
)


def interpreter(definition: dict[str, Any], limits: Limits | None = None) -> Interpreter:
    return Interpreter(compile_machine(definition), EXECUTION, limits)


def start(definition: dict[str, Any], state_input: Any = None, limits: Limits | None = None) -> Step:
    root = Branch(branch_id="exec-1", execution_id="exec-1", container=(), state_input=state_input)
    return interpreter(definition, limits).start(root, NOW)


def resume(definition: dict[str, Any], step: Step, event: Any, now: float = NOW) -> Step:
    return interpreter(definition).resume(step.branch, event, now)


def types(step: Step) -> list[str]:
    return [event.type for event in step.history]


def task_machine(**task: Any) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": "arn:aws:lambda:local:0:function:f", "Next": "Done", **task}
    return {
        "StartAt": "Call",
        "States": {
            "Call": state,
            "Done": {"Type": "Pass", "End": True},
            "Handled": {"Type": "Pass", "End": True},
        },
    }


# Pass, Fail and history ---------------------------------------------------------------------------


def test_pass_states_run_in_one_call_with_aws_history() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.r", "Next": "B"},
            "B": {"Type": "Pass", "OutputPath": "$.r", "End": True},
        },
    }
    step = start(definition, {"in": True})
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == {"x": 1}
    assert step.effects == []
    assert types(step) == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


def test_fail_state_without_error_or_cause_omits_them() -> None:
    step = start({"StartAt": "F", "States": {"F": {"Type": "Fail"}}}, {})
    assert step.branch.status == FAILED
    assert (step.branch.error, step.branch.cause) == (None, None)
    assert step.history[-1].type == "ExecutionFailed"
    assert step.history[-1].details == {}


def test_context_object_ids_are_arns_and_retry_count_is_for_tasks_only() -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"c.$": "$$"}, "End": True}}}
    context = start(definition, {}).branch.output["c"]
    assert context["Execution"]["Id"] == "arn:aws:states:local:000000000000:execution:machine:run-1"
    assert context["StateMachine"] == {
        "Id": "arn:aws:states:local:000000000000:stateMachine:machine",
        "Name": "machine",
    }
    assert set(context["State"]) == {"Name", "EnteredTime"}
    step = start(task_machine(Parameters={"n.$": "$$.State.RetryCount"}), {})
    assert isinstance(step.effects[0], InvokeTask)
    assert step.effects[0].payload == {"n": 0}


# Runtime errors -----------------------------------------------------------------------------------


def test_runtime_error_cause_names_the_state_and_its_entered_event() -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": "$.a.b", "End": True}}}
    step = start(definition, {})
    assert step.branch.error == "States.Runtime"
    assert step.branch.cause == (
        "An error occurred while executing the state 'P' (entered at the event id #2). "
        "Invalid path '$.a.b' : Missing property in path $['a']"
    )


def test_states_runtime_is_never_caught_or_retried() -> None:
    definition = task_machine(
        OutputPath="$.missing",
        Retry=[{"ErrorEquals": ["States.ALL"]}],
        Catch=[{"ErrorEquals": ["States.Runtime", "States.ALL"], "Next": "Handled"}],
    )
    step = resume(definition, start(definition, {}), TaskSucceeded({}))
    assert step.branch.status == FAILED
    assert step.branch.error == "States.Runtime"
    assert step.effects == []


def test_data_limit_is_caught_only_when_named() -> None:
    limits = Limits(data_limit=200)
    for error_equals, status in ((["States.ALL"], FAILED), (["States.DataLimitExceeded"], SUCCEEDED)):
        definition = task_machine(Catch=[{"ErrorEquals": error_equals, "Next": "Handled"}])
        step = interpreter(definition, limits).resume(
            start(definition, {}).branch, TaskSucceeded("x" * 300), NOW
        )
        assert step.branch.status == status
        if status == FAILED:
            assert step.branch.cause == (
                "The state/task 'Call' returned a result with a size exceeding the maximum number of bytes "
                "service limit."
            )


def test_definition_errors_fail_the_execution_instead_of_raising() -> None:
    definition = {
        "StartAt": "C",
        "States": {"C": {"Type": "Choice", "Choices": [{"Next": "C"}], "Default": "C"}},
    }
    step = start(definition, {})
    assert (step.branch.status, step.branch.error) == (FAILED, "States.Runtime")


# Wait ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (-1, "The SecondsPath parameter references a negative value: $.s == -1"),
        (1.5, "The SecondsPath parameter cannot be parsed as a long value: $.s == 1.5"),
        ("3", "The SecondsPath parameter cannot be parsed as a long value: $.s == 3"),
    ],
)
def test_wait_seconds_path_must_be_a_non_negative_integer(seconds: Any, message: str) -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}}
    step = start(definition, {"s": seconds})
    assert step.branch.error == "States.Runtime"
    assert step.branch.cause.endswith(message)


def test_wait_is_a_timer_effect_and_too_long_a_wait_fails() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.s", "End": True}}}
    step = start(definition, {"s": 5})
    assert step.effects == [StartTimer(due=NOW + 5, purpose="wait")]
    assert resume(definition, step, TimerFired()).branch.output == {"s": 5}
    step = start(definition, {"s": 2**31})
    assert step.branch.cause.endswith("Wait state delay is too long.")


def test_wait_timestamp_without_offset_is_rejected() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.t", "End": True}}}
    step = start(definition, {"t": "2016-12-05T21:29:29"})
    assert step.branch.cause.endswith(
        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format "
        "string: $.t == 2016-12-05T21:29:29"
    )


# Retry --------------------------------------------------------------------------------------------


def _retry_delays(retrier: dict[str, Any], failures: int) -> tuple[list[float], Step]:
    definition = task_machine(Retry=[retrier])
    step = start(definition, {})
    delays = []
    for _ in range(failures):
        step = resume(definition, step, TaskFailed("Boom", "c"))
        timers = [e for e in step.effects if isinstance(e, StartTimer)]
        if not timers:
            break
        delays.append(timers[0].due - NOW)
        step = resume(definition, step, TimerFired())
        assert isinstance(step.effects[0], InvokeTask)
    return delays, step


def test_retry_interval_backoff_and_max_attempts() -> None:
    delays, step = _retry_delays({"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 3}, 4)
    assert delays == [2, 6, 18]
    assert (step.branch.status, step.branch.error, step.branch.cause) == (FAILED, "Boom", "c")


def test_retry_defaults_are_one_second_doubled_three_times() -> None:
    delays, _ = _retry_delays({"ErrorEquals": ["States.ALL"]}, 4)
    assert delays == [1, 2, 4]


def test_retry_max_attempts_zero_never_retries() -> None:
    delays, step = _retry_delays({"ErrorEquals": ["Boom"], "MaxAttempts": 0}, 1)
    assert delays == []
    assert step.branch.error == "Boom"


def test_retry_max_delay_caps_the_backoff() -> None:
    retrier = {"ErrorEquals": ["Boom"], "IntervalSeconds": 4, "MaxAttempts": 4, "MaxDelaySeconds": 10}
    delays, _ = _retry_delays(retrier, 5)
    assert delays == [4, 8, 10, 10]


def test_retry_full_jitter_stays_below_the_backoff_and_replays_identically() -> None:
    retrier = {"ErrorEquals": ["Boom"], "IntervalSeconds": 8, "JitterStrategy": "FULL"}
    delays, _ = _retry_delays(retrier, 4)
    assert all(0 <= delay <= cap for delay, cap in zip(delays, [8, 16, 32], strict=True))
    assert _retry_delays(retrier, 4)[0] == delays


def test_retry_count_is_in_the_context_and_task_calls_get_new_attempts() -> None:
    definition = task_machine(Retry=[{"ErrorEquals": ["Boom"]}], Parameters={"n.$": "$$.State.RetryCount"})
    step = start(definition, {})
    first = step.effects[0]
    step = resume(definition, resume(definition, step, TaskFailed("Boom")), TimerFired())
    second = step.effects[0]
    assert isinstance(first, InvokeTask) and isinstance(second, InvokeTask)
    assert (first.payload, second.payload) == ({"n": 0}, {"n": 1})
    assert second.attempt > first.attempt
    assert second.task_token != first.task_token


# Catch and error names ----------------------------------------------------------------------------


def test_catch_result_path_keeps_the_input_and_adds_the_error() -> None:
    definition = task_machine(Catch=[{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Handled"}])
    step = resume(definition, start(definition, {"keep": 1}), TaskFailed("Boom", "why"))
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == {"keep": 1, "error": {"Error": "Boom", "Cause": "why"}}
    assert types(step)[:4] == [
        "LambdaFunctionStarted",
        "LambdaFunctionFailed",
        "TaskStateExited",
        "PassStateEntered",
    ]


def test_catch_without_result_path_replaces_the_input() -> None:
    definition = task_machine(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handled"}])
    step = resume(definition, start(definition, {"keep": 1}), TaskFailed("Boom", "why"))
    assert step.branch.output == {"Error": "Boom", "Cause": "why"}


@pytest.mark.parametrize(
    ("error", "error_equals", "caught"),
    [
        ("Boom", ["States.ALL"], True),
        ("States.Timeout", ["States.ALL"], True),
        ("States.Timeout", ["States.TaskFailed"], False),
        ("Lambda.Unknown", ["States.TaskFailed"], True),
        ("States.DataLimitExceeded", ["States.ALL"], False),
        ("States.DataLimitExceeded", ["States.DataLimitExceeded"], True),
        ("States.Runtime", ["States.Runtime"], False),
        ("Boom", ["Other"], False),
    ],
)
def test_which_errors_a_catcher_matches(error: str, error_equals: list[str], caught: bool) -> None:
    definition = task_machine(Catch=[{"ErrorEquals": error_equals, "Next": "Handled"}])
    step = resume(definition, start(definition, {}), TaskFailed(error, ""))
    assert (step.branch.status == SUCCEEDED) is caught


def test_first_matching_retrier_decides_then_catch() -> None:
    definition = task_machine(
        Retry=[
            {"ErrorEquals": ["Boom"], "MaxAttempts": 1},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5},
        ],
        Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
    )
    step = resume(definition, start(definition, {}), TaskFailed("Boom"))
    step = resume(definition, resume(definition, step, TimerFired()), TaskFailed("Boom"))
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == {"Error": "Boom", "Cause": ""}


# Map and Parallel ---------------------------------------------------------------------------------


def test_map_entered_again_in_a_loop_starts_a_new_join() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ResultPath": "$.out",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "Next": "Again",
            },
            "Again": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.out[0]", "NumericEquals": 1, "Next": "M2"}],
                "Default": "End",
            },
            "M2": {"Type": "Pass", "Result": [2], "ResultPath": "$.items", "Next": "M"},
            "End": {"Type": "Succeed"},
        },
    }
    step = start(definition, {"items": [1]})
    first_attempt = step.branch.attempt
    assert isinstance(step.effects[0], StartChildren)
    step = resume(definition, step, ChildrenSucceeded([1]))
    assert isinstance(step.effects[0], StartChildren)
    assert step.branch.attempt > first_attempt
    assert types(step).count("MapStateStarted") == 1
    step = resume(definition, step, ChildrenSucceeded([2]))
    assert step.branch.output == {"items": [2], "out": [2]}


def test_map_tolerated_failure_percentage_must_be_a_percentage() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ToleratedFailurePercentagePath": "$.p",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "ItemsPath": "$.items",
                "End": True,
            }
        },
    }
    step = start(definition, {"items": [0], "p": 100.1})
    assert step.branch.cause.endswith("ToleratedFailurePercentage must be between 0 and 100.")
    step = start(definition, {"items": [0], "p": "x"})
    assert step.branch.cause.endswith(
        'The ToleratedFailurePercentagePath field refers to value "x" which is not a valid float: $.p'
    )
    step = start(definition, {"items": [0], "p": 50})
    assert isinstance(step.effects[0], StartChildren)
    assert step.effects[0].tolerated_failure_percentage == 50


# Lambda call shapes (runtime/tasks.py helpers) ----------------------------------------------------


def test_lambda_invoke_payload_is_sent_like_the_sdk_sends_it() -> None:
    assert _invoke_body(None) == b"{}"
    assert _invoke_body("[1, 2]") == b"[1, 2]"
    assert _invoke_body({"k": "v"}) == b'{"k":"v"}'


def test_lambda_service_errors_are_named_after_their_code() -> None:
    outcome = _lambda_service_error(
        404, "ResourceNotFoundException", "req-1", {"message": "Function not found: arn:x"}, "f"
    )
    assert outcome.error == "Lambda.ResourceNotFoundException"
    assert outcome.cause == (
        "Function not found: arn:x (Service: AWSLambda; Status Code: 404; "
        "Error Code: ResourceNotFoundException; Request ID: req-1; Proxy: null)"
    )


def test_task_timeouts_shrink_with_the_time_scale_but_not_to_nothing() -> None:
    storage = MemoryStorage()
    try:
        assert TaskInvoker(storage, None, 1.0).scaled_timeout(5) == 5
        assert TaskInvoker(storage, None, 0.0).scaled_timeout(5) == 1.0
        assert TaskInvoker(storage, None, 0.0).scaled_timeout(0.5) == 0.5
        assert TaskInvoker(storage, None, 0.0).scaled_timeout(None) is None
    finally:
        storage.close()


def test_map_retry_starts_again_and_fails_once_in_history() -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Fail", "Error": "E"}}},
                "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 1}],
                "End": True,
            }
        },
    }
    step = start(definition, [1])
    step = resume(definition, step, ChildrenFailed("E", ""))
    assert "MapStateFailed" not in types(step)
    step = resume(definition, step, TimerFired())
    assert types(step) == ["MapStateStarted"]
    step = resume(definition, step, ChildrenFailed("E", ""))
    assert types(step) == ["MapStateFailed", "ExecutionFailed"]


def test_map_iterations_record_their_start_and_tasks_their_start_before_the_outcome() -> None:
    definition = task_machine()
    child = Branch(
        branch_id="exec-1/0",
        execution_id="exec-1",
        container=(),
        parent_id="exec-1",
        state_input={},
        map_item={"Index": 0, "Value": {}},
    )
    step = interpreter(definition).start(child, NOW)
    assert types(step) == ["MapIterationStarted", "TaskStateEntered", "LambdaFunctionScheduled"]
    step = resume(definition, step, TaskSucceeded({"ok": 1}))
    assert types(step)[:2] == ["LambdaFunctionStarted", "LambdaFunctionSucceeded"]
    service = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "svc", "End": True}}}
    step = resume(service, start(service, {}), TaskFailed("States.Timeout", ""))
    assert types(step)[:2] == ["TaskStarted", "TaskTimedOut"]
