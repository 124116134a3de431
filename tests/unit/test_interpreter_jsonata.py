"""JSONata states and variables in the pure interpreter, driven directly (no server, no clock)."""

from __future__ import annotations

from typing import Any

from machinery.asl.compiler import compile_machine
from machinery.engine.interpreter import Interpreter, Limits
from machinery.engine.types import (
    FAILED,
    SUCCEEDED,
    Branch,
    ChildrenSucceeded,
    InvokeTask,
    StartChildren,
    StartTimer,
    Step,
    TaskFailed,
    TaskSucceeded,
    TimerFired,
)
from tests.unit.test_interpreter import EXECUTION, NOW

QUERY_ERROR = "States.QueryEvaluationError"


def start(
    definition: dict[str, Any],
    state_input: Any = None,
    *,
    container: tuple[str, ...] = (),
    variables: dict[str, Any] | None = None,
    limits: Limits | None = None,
) -> Step:
    root = Branch(
        branch_id="exec-1",
        execution_id="exec-1",
        container=container,
        parent_id="parent" if container else None,
        state_input=state_input,
        variables=dict(variables or {}),
    )
    return Interpreter(compile_machine(definition), EXECUTION, limits).start(root, NOW)


def resume(definition: dict[str, Any], step: Step, event: Any) -> Step:
    return Interpreter(compile_machine(definition), EXECUTION).resume(step.branch, event, NOW)


def jsonata(states: dict[str, Any], start_at: str | None = None) -> dict[str, Any]:
    return {"QueryLanguage": "JSONata", "StartAt": start_at or next(iter(states)), "States": states}


def exited(step: Step, name: str) -> dict[str, Any]:
    return next(
        e.details for e in step.history if e.type.endswith("StateExited") and e.details["name"] == name
    )


# Output, Assign and variables ------------------------------------------------------------------------


def test_output_may_be_any_json_value_and_defaults_to_the_input() -> None:
    for output in (0.1, "string literal", [], {"k": [1, "{% 1 + 1 %}"]}):
        step = start(jsonata({"P": {"Type": "Pass", "Output": output, "End": True}}), {"x": 1})
        assert step.branch.status == SUCCEEDED
        assert step.branch.output == ({"k": [1, 2]} if isinstance(output, dict) else output)
    assert start(jsonata({"P": {"Type": "Pass", "End": True}}), {"x": 1}).branch.output == {"x": 1}


def test_assign_and_output_both_see_the_variables_as_they_were_when_the_state_was_entered() -> None:
    definition = jsonata(
        {
            "A": {"Type": "Pass", "Assign": {"n": 1}, "Next": "B"},
            "B": {
                "Type": "Pass",
                "Assign": {"n": "{% $n + 1 %}", "old": "{% $n %}"},
                "Output": {"n": "{% $n %}"},
                "Next": "C",
            },
            "C": {"Type": "Pass", "Output": {"n": "{% $n %}", "old": "{% $old %}"}, "End": True},
        }
    )
    step = start(definition, {})
    assert exited(step, "B")["output"] == '{"n":1}'
    assert step.branch.output == {"n": 2, "old": 1}
    assert step.branch.variables == {"n": 2, "old": 1}


def test_assigned_variables_are_recorded_as_json_text_in_the_exited_event() -> None:
    step = start(jsonata({"P": {"Type": "Pass", "Assign": {"s": "x", "o": {"a": [1]}}, "End": True}}), {})
    details = exited(step, "P")
    assert details["assignedVariables"] == {"s": '"x"', "o": '{"a":[1]}'}
    assert details["assignedVariablesDetails"] == {"truncated": False}
    assert "assignedVariables" not in exited(start(jsonata({"Q": {"Type": "Pass", "End": True}}), {}), "Q")


def test_jsonpath_and_jsonata_states_share_variables() -> None:
    definition = {
        "StartAt": "Path",
        "States": {
            "Path": {"Type": "Pass", "Result": {"v": 42}, "Assign": {"answer.$": "$.v"}, "Next": "Ata"},
            "Ata": {
                "QueryLanguage": "JSONata",
                "Type": "Pass",
                "Assign": {"doubled": "{% $answer * 2 %}"},
                "Output": {"answer": "{% $answer %}"},
                "Next": "Back",
            },
            "Back": {"Type": "Pass", "Parameters": {"a.$": "$answer", "d.$": "$doubled"}, "End": True},
        },
    }
    assert start(definition, {}).branch.output == {"a": 42, "d": 84}


def test_states_context_is_the_context_object() -> None:
    step = start(jsonata({"P": {"Type": "Pass", "Output": "{% $states.context %}", "End": True}}), {"i": 1})
    context = step.branch.output
    assert context["State"]["Name"] == "P"
    assert context["Execution"]["Input"] == {"a": 1}
    assert context["StateMachine"]["Name"] == "machine"


def test_variables_larger_than_256_kib_fail_with_data_limit_exceeded() -> None:
    big = "x" * (256 * 1024)
    definition = jsonata({"P": {"Type": "Pass", "Assign": {"big": "{% $states.input %}"}, "End": True}})
    step = start(definition, big, limits=Limits(data_limit=0))  # no limit on the state's input and output
    assert step.branch.status == FAILED
    assert step.branch.error == "States.DataLimitExceeded"
    assert "big" in (step.branch.cause or "")


# Failing expressions ---------------------------------------------------------------------------------


def test_an_undefined_result_fails_with_query_evaluation_error_naming_state_and_field() -> None:
    definition = jsonata(
        {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Output": {"result": "{% $doesNotExist %}"}, "End": True},
        }
    )
    step = start(definition, {})
    assert step.branch.status == FAILED
    assert step.branch.error == QUERY_ERROR
    assert step.branch.cause == (
        "An error occurred while executing the state 'B' (entered at the event id #4). "
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' "
        "returned nothing (undefined)."
    )
    failed = next(e for e in step.history if e.type == "EvaluationFailed")
    assert failed.details["location"] == "Output/result"
    assert failed.details["state"] == "B"


def test_a_bad_expression_fails_the_execution_instead_of_crashing() -> None:
    definition = jsonata({"Bad": {"Type": "Pass", "Output": "{% $states.input.n + 'text' %}", "End": True}})
    step = start(definition, {"n": 1})
    assert step.branch.status == FAILED
    assert step.branch.error == QUERY_ERROR
    cause = step.branch.cause or ""
    assert cause.startswith(
        "An error occurred while executing the state 'Bad' (entered at the event id #2). "
    )
    assert "The JSONata expression '$states.input.n + 'text'' specified for the field 'Output'" in cause
    assert [e.type for e in step.history][-2:] == ["EvaluationFailed", "ExecutionFailed"]


def test_an_expression_that_does_not_parse_fails_the_state_too() -> None:
    # Validation refuses it; a definition that skipped validation must still not crash the worker.
    step = start(jsonata({"P": {"Type": "Pass", "Output": "{% $$$ ( %}", "End": True}}), {})
    assert step.branch.status == FAILED
    assert step.branch.error == QUERY_ERROR


def test_query_evaluation_errors_can_be_caught() -> None:
    definition = jsonata(
        {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:0:function:f",
                "Output": "{% $states.result.missing %}",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Pass", "Output": "{% $states.input.Error %}", "End": True},
        }
    )
    step = resume(definition, start(definition, {}), TaskSucceeded({"x": 1}))
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == QUERY_ERROR


# Tasks and Catchers ------------------------------------------------------------------------------------


def _task(**fields: Any) -> dict[str, Any]:
    return jsonata(
        {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:0:function:f",
                "Next": "Done",
                **fields,
            },
            "Done": {"Type": "Pass", "End": True},
            "Handled": {"Type": "Pass", "End": True},
        }
    )


def test_task_arguments_result_assign_and_output() -> None:
    definition = _task(
        Arguments={"id": "{% $states.input.id %}", "fixed": 1},
        TimeoutSeconds="{% 30 %}",
        HeartbeatSeconds="{% $states.input.beat %}",
        Assign={"last": "{% $states.result.value %}"},
        Output={"input": "{% $states.input.id %}", "result": "{% $states.result %}"},
    )
    step = start(definition, {"id": "a", "beat": 5})
    effect = step.effects[0]
    assert isinstance(effect, InvokeTask)
    assert effect.payload == {"id": "a", "fixed": 1}
    assert (effect.timeout_seconds, effect.heartbeat_seconds) == (30, 5)
    step = resume(definition, step, TaskSucceeded({"value": 7}))
    assert step.branch.output == {"input": "a", "result": {"value": 7}}
    assert step.branch.variables == {"last": 7}


def test_task_without_output_outputs_its_result_and_resource_may_be_an_expression() -> None:
    definition = _task(Resource="{% 'arn:aws:lambda:local:0:function:' & $states.input.fn %}")
    step = start(definition, {"fn": "g"})
    effect = step.effects[0]
    assert isinstance(effect, InvokeTask)
    assert effect.resource == "arn:aws:lambda:local:0:function:g"
    assert effect.payload == {"fn": "g"}
    assert resume(definition, step, TaskSucceeded([1])).branch.output == [1]


def test_catcher_output_and_assign_see_the_error_output_and_replace_the_states() -> None:
    definition = _task(
        Assign={"never": 1},
        Catch=[
            {
                "ErrorEquals": ["States.ALL"],
                "Assign": {"error": "{% $states.errorOutput.Error %}"},
                "Output": {"in": "{% $states.input %}", "err": "{% $states.errorOutput %}"},
                "Next": "Handled",
            }
        ],
    )
    step = resume(definition, start(definition, {"k": 1}), TaskFailed("Boom", "bad"))
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == {"in": {"k": 1}, "err": {"Error": "Boom", "Cause": "bad"}}
    assert step.branch.variables == {"error": "Boom"}


def test_catcher_without_output_outputs_the_error_output() -> None:
    definition = _task(Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Handled"}])
    step = resume(definition, start(definition, {"k": 1}), TaskFailed("Boom", "bad"))
    assert step.branch.output == {"Error": "Boom", "Cause": "bad"}


def test_states_result_is_not_available_in_arguments() -> None:
    step = start(_task(Arguments="{% $states.result %}"), {})
    assert step.branch.error == QUERY_ERROR
    assert "'Arguments' returned nothing (undefined)" in (step.branch.cause or "")


# Choice, Wait, Fail ---------------------------------------------------------------------------------------


def _choice(condition: Any) -> dict[str, Any]:
    return jsonata(
        {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": condition, "Next": "Yes", "Assign": {"path": "rule"}, "Output": "from rule"}
                ],
                "Default": "No",
                "Assign": {"path": "default"},
                "Output": {"default": "{% $states.input %}"},
            },
            "Yes": {"Type": "Pass", "End": True},
            "No": {"Type": "Pass", "End": True},
        }
    )


def test_choice_condition_picks_the_rule_and_its_assign_and_output() -> None:
    step = start(_choice("{% $states.input.go %}"), {"go": True})
    assert (step.branch.output, step.branch.variables) == ("from rule", {"path": "rule"})
    step = start(_choice("{% $states.input.go %}"), {"go": False})
    assert (step.branch.output, step.branch.variables) == ({"default": {"go": False}}, {"path": "default"})
    assert start(_choice(True), {}).branch.output == "from rule"


def test_choice_condition_must_be_a_boolean() -> None:
    step = start(_choice("{% $states.input.go %}"), {"go": "yes"})
    assert step.branch.error == QUERY_ERROR
    assert "Expected 'boolean', but was 'string' for value: \"yes\"" in (step.branch.cause or "")


def test_wait_seconds_expression_and_the_state_after_the_wait_runs() -> None:
    definition = jsonata(
        {
            "W": {
                "Type": "Wait",
                "Seconds": "{% $states.input.s %}",
                "Output": {"waited": True},
                "Next": "P",
            },
            "P": {"Type": "Pass", "Output": {"after": "{% $states.input.waited %}"}, "End": True},
        }
    )
    step = start(definition, {"s": 5})
    assert step.effects == [StartTimer(due=NOW + 5, purpose="wait")]
    step = resume(definition, step, TimerFired())
    assert step.branch.status == SUCCEEDED
    assert step.branch.output == {"after": True}


def test_wait_timestamp_without_offset_fails_as_aws_says() -> None:
    definition = jsonata({"W": {"Type": "Wait", "Timestamp": "{% $states.input.t %}", "End": True}})
    step = start(definition, {"t": "2016-12-05T21:29:29"})
    assert step.branch.error == QUERY_ERROR
    assert (step.branch.cause or "").endswith(
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: "
        "2016-12-05T21:29:29"
    )


def test_fail_error_and_cause_may_be_expressions() -> None:
    definition = jsonata(
        {
            "F": {
                "Type": "Fail",
                "Error": "{% $states.input.e %}",
                "Cause": "{% 'because ' & $states.input.c %}",
            }
        }
    )
    step = start(definition, {"e": "Custom", "c": "reasons"})
    assert (step.branch.error, step.branch.cause) == ("Custom", "because reasons")


# Map and Parallel -----------------------------------------------------------------------------------------


def _map(**fields: Any) -> dict[str, Any]:
    processor = {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}
    return jsonata({"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}})


def test_map_items_item_selector_and_limits_from_expressions() -> None:
    definition = _map(
        Items="{% $states.input.list %}",
        ItemSelector={
            "v": "{% $states.context.Map.Item.Value %}",
            "i": "{% $states.context.Map.Item.Index %}",
        },
        MaxConcurrency="{% $variable := 2 %}",
        ToleratedFailurePercentage="{% $states.input.pct %}",
        Output={"count": "{% $count($states.result) %}"},
    )
    step = start(definition, {"list": ["a", "b"], "pct": 50})
    effect = step.effects[0]
    assert isinstance(effect, StartChildren)
    assert [child.input for child in effect.children] == [{"v": "a", "i": 0}, {"v": "b", "i": 1}]
    assert (effect.max_concurrency, effect.tolerated_failure_percentage) == (2, 50.0)
    step = resume(definition, step, ChildrenSucceeded(["x", "y"]))
    assert step.branch.output == {"count": 2}


def test_map_items_must_be_an_array() -> None:
    step = start(_map(Items="{% {'foo': 'bar'} %}"), {})
    assert step.branch.error == QUERY_ERROR
    assert (step.branch.cause or "").endswith(
        "The JSONata expression '{'foo': 'bar'}' specified for the field 'Items' "
        "returned an unexpected result type. Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}"
    )
    assert [e.type for e in step.history][-3:] == ["EvaluationFailed", "MapStateFailed", "ExecutionFailed"]
    step = start(_map(), "text")
    assert (step.branch.cause or "").endswith('Map state input must be an array but was: "text"')


def test_parallel_arguments_are_each_branch_input() -> None:
    branch = {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}
    definition = jsonata(
        {
            "P": {
                "Type": "Parallel",
                "Arguments": {"x": "{% $states.input.y %}"},
                "Branches": [branch],
                "End": True,
            }
        }
    )
    effect = start(definition, {"y": 3}).effects[0]
    assert isinstance(effect, StartChildren)
    assert effect.children[0].input == {"x": 3}


def test_a_branch_sees_the_outer_variables_and_its_own_assignments() -> None:
    inner = {
        "StartAt": "B",
        "States": {"B": {"Type": "Pass", "Assign": {"mine": 1}, "Output": "{% $outer %}", "End": True}},
    }
    definition = jsonata({"P": {"Type": "Parallel", "Branches": [inner], "End": True}})
    step = start(definition, {}, container=("P", "0"), variables={"outer": "seen"})
    assert step.branch.output == "seen"
    assert step.branch.variables == {"outer": "seen", "mine": 1}


# JSONPath states with variables ----------------------------------------------------------------------------


def test_jsonpath_assign_sees_the_result_after_result_selector() -> None:
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:0:function:f",
                "ResultSelector": {"picked.$": "$.value"},
                "Assign": {"kept.$": "$.picked", "input.$": "$$.Execution.Input"},
                "ResultPath": "$.r",
                "End": True,
            }
        },
    }
    step = resume(definition, start(definition, {"k": 1}), TaskSucceeded({"value": 9}))
    assert step.branch.output == {"k": 1, "r": {"picked": 9}}
    assert step.branch.variables == {"kept": 9, "input": {"a": 1}}


def test_jsonpath_choice_uses_the_state_assign_only_for_the_default() -> None:
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "End", "Assign": {"hit": True}}],
                "Default": "End",
                "Assign": {"guess.$": "$.n"},
            },
            "End": {
                "Type": "Pass",
                "Parameters": {"hit.$": "States.ArrayLength(States.Array($hit))"},
                "End": True,
            },
        },
    }
    assert start(definition, {"n": 1}).branch.variables == {"hit": True}
    assert start(definition, {"n": 2}).branch.variables == {"guess": 2}


def test_jsonpath_catcher_assign_sees_the_error_output_and_paths_accept_numeric_strings() -> None:
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"limit": "1"}, "Next": "Call"},
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:lambda:local:0:function:f",
                "TimeoutSecondsPath": "$limit",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"why.$": "$.Cause"}, "Next": "Done"}],
                "End": True,
            },
            "Done": {"Type": "Pass", "Parameters": {"why.$": "$why"}, "End": True},
        },
    }
    step = start(definition, {})
    effect = step.effects[0]
    assert isinstance(effect, InvokeTask)
    assert effect.timeout_seconds == 1
    step = resume(definition, step, TaskFailed("Boom", "bad"))
    assert step.branch.output == {"why": "bad"}


def test_jsonpath_wait_continues_with_the_next_state_after_the_timer() -> None:
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"wait": 0}, "Next": "W"},
            "W": {"Type": "Wait", "SecondsPath": "$wait", "Next": "P"},
            "P": {"Type": "Pass", "Result": "done", "End": True},
        },
    }
    step = resume(definition, start(definition, {}), TimerFired())
    assert (step.branch.status, step.branch.output) == (SUCCEEDED, "done")
