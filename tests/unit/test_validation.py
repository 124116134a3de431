"""Tests of the static definition checks in :mod:`machinery.asl.validation`."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machinery.asl.validation import DefinitionIssue, format_issues, validate_definition
from tests.shared import SHARED, needs_shared, require_shared

CONFORMANCE = SHARED / "asl-conformance"


def _load(name: str) -> list[dict[str, Any]]:
    path = CONFORMANCE / name
    if not path.exists():
        # One parameter that skips, or under CI fails naming the missing file.
        return [pytest.param({"id": "missing", "path": path}, marks=needs_shared(path))]
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return cases


def _case_id(case: dict[str, Any]) -> str:
    return str(case["id"]).split("::")[-1]


needs_conformance = needs_shared(CONFORMANCE)


def machine(*states: tuple[str, dict[str, Any]], **top: Any) -> dict[str, Any]:
    """Build a definition whose first state is the start state."""
    return {"StartAt": states[0][0], "States": dict(states), **top}


def issues_of(definition: Any, **options: Any) -> list[tuple[str, str]]:
    return [(issue.code, issue.path) for issue in validate_definition(definition, **options)]


def only_issue(definition: Any, **options: Any) -> DefinitionIssue:
    issues = validate_definition(definition, **options)
    assert len(issues) == 1, issues
    return issues[0]


PASS_END: dict[str, Any] = {"Type": "Pass", "End": True}


# -- the recorded AWS behaviour ---------------------------------------------------------------------------


def _strings(value: Any) -> str:
    """Concatenate every string inside a recorded AWS response."""
    if isinstance(value, dict):
        return "\n".join(_strings(item) for item in value.values())
    if isinstance(value, list):
        return "\n".join(_strings(item) for item in value)
    return value if isinstance(value, str) else ""


@needs_conformance
@pytest.mark.parametrize("case", _load("validation_cases.json"), ids=_case_id)
def test_definitions_aws_rejected_are_rejected(case: dict[str, Any]) -> None:
    if "path" in case:
        require_shared(case["path"])
    aws_said = _strings(case["expected"])
    # The express-API case (".sync" refused) depends on the machine type, which the definition lacks.
    machine_type = "EXPRESS" if "express" in case["id"].lower() else "STANDARD"
    issues = validate_definition(case["definition"], state_machine_type=machine_type)
    if '"result": "OK"' in json.dumps(case["expected"]):
        # Two ValidateStateMachineDefinition cases record definitions AWS found valid.
        assert issues == []
        return
    assert issues, "AWS rejected this definition"
    first = issues[0]
    if first.code == "INVALID_JSON_DESCRIPTION":  # AWS quotes its Jackson parser here
        assert first.code in aws_said
    elif first.message.startswith("Label contains"):  # AWS quotes the repr() of a ValueError, no code
        assert repr(first.message) in aws_said or first.message in aws_said
    else:
        assert str(first) in aws_said or (first.code in aws_said and first.message in aws_said)


@needs_conformance
@pytest.mark.parametrize("case", _load("cases.pure.json") + _load("cases.lambda.json"), ids=_case_id)
def test_definitions_aws_ran_are_accepted(case: dict[str, Any]) -> None:
    if "path" in case:
        require_shared(case["path"])
    machine_type = case.get("stateMachineType") or "STANDARD"
    assert validate_definition(case["definition"], state_machine_type=machine_type) == []


# -- the issue value and its rendering --------------------------------------------------------------------


def test_issue_to_json_and_format() -> None:
    issue = only_issue(
        machine(("State0", {"Type": "Task", "Resource": "arn:x", "Credentials": {}, "End": True}))
    )
    assert issue.to_json() == {
        "code": "SCHEMA_VALIDATION_FAILED",
        "field": "/States/State0/Credentials",
        "message": "The field 'RoleArn' is required but was missing",
    }
    assert format_issues([issue]) == (
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'RoleArn' is required "
        "but was missing at /States/State0/Credentials'"
    )


def test_valid_definition_has_no_issues() -> None:
    assert validate_definition(machine(("A", {"Type": "Pass", "Next": "B"}), ("B", PASS_END))) == []


def test_definition_given_as_text() -> None:
    assert validate_definition(json.dumps(machine(("A", PASS_END)))) == []
    assert issues_of("not a definition") == [("INVALID_JSON_DESCRIPTION", "/")]


# -- top level --------------------------------------------------------------------------------------------


def test_required_top_level_fields() -> None:
    assert only_issue({}).message == "These fields are required: [States, StartAt]"
    assert only_issue({"StartAt": "A"}).message == "These fields are required: [States]"
    assert only_issue([]).path == "/"


def test_start_at_must_name_a_state() -> None:
    issues = issues_of({"StartAt": "Nope", "States": {"A": PASS_END}})
    assert issues == [("MISSING_TRANSITION_TARGET", "/StartAt")]
    assert "Nope" in validate_definition({"StartAt": "Nope", "States": {"A": PASS_END}})[0].message


def test_states_must_be_a_non_empty_object() -> None:
    assert issues_of({"StartAt": "A", "States": {}}) == [("SCHEMA_VALIDATION_FAILED", "/States")]
    assert issues_of({"StartAt": "A", "States": []}) == [("SCHEMA_VALIDATION_FAILED", "/States")]


@pytest.mark.parametrize(
    ("field", "value"),
    [("Comment", 1), ("Version", "2.0"), ("TimeoutSeconds", "10"), ("QueryLanguage", "XPath"), ("Extra", 1)],
)
def test_top_level_field_types(field: str, value: Any) -> None:
    issue = only_issue(machine(("A", PASS_END), **{field: value}))
    assert issue.path == f"/{field}"
    assert field in issue.message or issue.message.startswith("Expected value")


def test_top_level_valid_optional_fields() -> None:
    definition = machine(
        ("A", PASS_END), Comment="c", Version="1.0", TimeoutSeconds=5, QueryLanguage="JSONata"
    )
    assert validate_definition(definition) == []


# -- states in general ------------------------------------------------------------------------------------


def test_state_type_is_required_and_known() -> None:
    assert issues_of(machine(("A", {"End": True}))) == [("SCHEMA_VALIDATION_FAILED", "/States/A")]
    assert issues_of(machine(("A", {"Type": "Sleep", "End": True}))) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/A/Type")
    ]


def test_unknown_state_field() -> None:
    issue = only_issue(machine(("A", PASS_END | {"Seconds": 1})))
    assert (issue.path, issue.message) == ("/States/A/Seconds", "Field 'Seconds' is not supported")


def test_state_name_length() -> None:
    name = "n" * 81
    issue = only_issue(machine((name, PASS_END)))
    assert issue.path == f"/States/{name}"
    assert name in issue.message
    assert validate_definition(machine(("n" * 80, PASS_END))) == []


@pytest.mark.parametrize(
    "state",
    [{"Type": "Pass"}, {"Type": "Pass", "End": True, "Next": "A"}, {"Type": "Pass", "End": False}],
)
def test_exactly_one_of_next_or_end(state: dict[str, Any]) -> None:
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A") in issues_of(machine(("A", state)))


def test_terminal_states_take_neither_next_nor_end() -> None:
    issue = only_issue(machine(("A", {"Type": "Succeed", "Next": "A"})))
    assert issue.path == "/States/A/Next"


def test_missing_transition_target() -> None:
    issues = validate_definition(machine(("A", {"Type": "Pass", "Next": "Nowhere"}), ("B", PASS_END)))
    assert [(i.code, i.path) for i in issues] == [
        ("MISSING_TRANSITION_TARGET", "/States/A/Next"),
        ("UNREACHABLE_STATE", "/States/B"),
    ]
    assert issues[0].message == "Missing 'Next' target: Nowhere"


def test_unreachable_state() -> None:
    issue = only_issue(machine(("A", PASS_END), ("Orphan", PASS_END)))
    assert (issue.code, issue.path) == ("UNREACHABLE_STATE", "/States/Orphan")
    assert "Orphan" in issue.message


def test_states_reached_through_choices_and_catchers_are_reachable() -> None:
    definition = machine(
        (
            "C",
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "T"}],
                "Default": "D",
            },
        ),
        (
            "T",
            {
                "Type": "Task",
                "Resource": "arn:aws:lambda:r:1:function:f",
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}],
            },
        ),
        ("D", {"Type": "Succeed"}),
        ("F", {"Type": "Fail"}),
    )
    assert validate_definition(definition) == []


def test_machine_without_terminal_state() -> None:
    definition = machine(("A", {"Type": "Pass", "Next": "B"}), ("B", {"Type": "Pass", "Next": "A"}))
    assert issues_of(definition) == [("MISSING_END_STATE", "/States")]


def test_duplicate_state_names_across_branches() -> None:
    branch = machine(("A", PASS_END))
    definition = machine(
        ("P", {"Type": "Parallel", "Branches": [branch, copy.deepcopy(branch)], "End": True})
    )
    assert issues_of(definition) == [("DUPLICATE_STATE_NAME", "/States/P/Branches/1/States/A")]


# -- paths and templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "valid"),
    [
        ("InputPath", "$.a[*]", True),
        ("InputPath", None, True),
        ("InputPath", "a.b", False),
        ("OutputPath", "$$.Execution.Input", True),
        ("ResultPath", "$.a.b", True),
        ("ResultPath", None, True),
        ("ResultPath", "$.a[*]", False),
        ("ResultPath", "$$.Execution", False),
        ("ResultPath", "$.a.", False),
    ],
)
def test_io_paths(field: str, value: Any, valid: bool) -> None:
    issues = issues_of(machine(("A", PASS_END | {field: value})))
    assert issues == ([] if valid else [("SCHEMA_VALIDATION_FAILED", f"/States/A/{field}")])


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("$.a", True),
        ("$$.Map.Item.Value", True),
        ("$myVariable.field", True),
        ("States.Format('{}', $.a)", True),
        ("States.ArrayGetItem(States.StringSplit($.s, '-'), 0)", True),
        ("States.Format('{}', $.a", False),
        ("a.b", False),
        (3, False),
    ],
)
def test_dynamic_parameter_values(value: Any, valid: bool) -> None:
    definition = machine(("A", PASS_END | {"Parameters": {"nested": {"x.$": value}, "plain": "a.b"}}))
    issues = validate_definition(definition)
    if valid:
        assert issues == []
    else:
        assert [(i.code, i.path) for i in issues] == [
            ("SCHEMA_VALIDATION_FAILED", "/States/A/Parameters/nested/x.$")
        ]
        assert "x.$" in issues[0].message


def test_result_selector_checked_like_parameters() -> None:
    state = {
        "Type": "Task",
        "Resource": "arn:aws:lambda:r:1:function:f",
        "End": True,
        "ResultSelector": {"a.$": "b"},
    }
    assert issues_of(machine(("T", state))) == [("SCHEMA_VALIDATION_FAILED", "/States/T/ResultSelector/a.$")]


def test_assign_variable_names() -> None:
    assert validate_definition(machine(("A", PASS_END | {"Assign": {"x": 1, "y.$": "$.a"}}))) == []
    issue = only_issue(machine(("A", PASS_END | {"Assign": {"bad-name": 1}})))
    assert issue.path == "/States/A/Assign/bad-name"


# -- Task -------------------------------------------------------------------------------------------------


def task(**fields: Any) -> dict[str, Any]:
    return machine(
        ("T", {"Type": "Task", "Resource": "arn:aws:lambda:r:1:function:f", "End": True, **fields})
    )


def test_task_requires_resource() -> None:
    issue = only_issue(machine(("T", {"Type": "Task", "End": True})))
    assert (issue.path, issue.message) == ("/States/T", "The field 'Resource' is required but was missing")


def test_credentials_need_role_arn() -> None:
    assert validate_definition(task(Credentials={"RoleArn": "arn:aws:iam::1:role/r"})) == []
    assert validate_definition(task(Credentials={"RoleArn.$": "$.role"})) == []
    issue = only_issue(task(Credentials={"Other": "x"}))
    assert (issue.path, issue.message) == (
        "/States/T/Credentials",
        "The field 'RoleArn' is required but was missing",
    )


def test_timeout_and_heartbeat() -> None:
    assert validate_definition(task(TimeoutSeconds=10, HeartbeatSeconds=5)) == []
    assert issues_of(task(TimeoutSeconds=10, TimeoutSecondsPath="$.t")) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/T")
    ]
    assert issues_of(task(TimeoutSeconds=5, HeartbeatSeconds=5)) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/T/HeartbeatSeconds")
    ]
    assert issues_of(task(TimeoutSeconds=0)) == [("SCHEMA_VALIDATION_FAILED", "/States/T/TimeoutSeconds")]
    assert issues_of(task(TimeoutSeconds=True)) == [("SCHEMA_VALIDATION_FAILED", "/States/T/TimeoutSeconds")]


def test_express_machines_refuse_sync_integrations() -> None:
    definition = machine(
        ("T", {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync", "End": True})
    )
    # A STANDARD machine refuses it too: machinery does not run that integration (AWS's message).
    assert [issue.message for issue in validate_definition(definition)] == [
        "The resource provided arn:aws:states:::states:startExecution.sync is not recognized. The value is "
        "not a valid resource ARN, or the resource is not available in this region."
    ]
    issue = only_issue(definition, state_machine_type="EXPRESS")
    assert issue.path == "/States/T/Resource"
    assert "'.sync'" in issue.message


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::dynamodb:putItem",
        "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "arn:aws:states:::x",
    ],
)
def test_integrations_machinery_does_not_run_are_refused(resource: str) -> None:
    issue = only_issue(machine(("T", {"Type": "Task", "Resource": resource, "End": True})))
    assert issue.path == "/States/T/Resource"
    assert issue.message.startswith(f"The resource provided {resource} is not recognized.")


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "arn:aws:states:::http:invoke",
        "arn:aws:states:us-east-1:123456789012:activity:work",
        "arn:aws:lambda:us-east-1:123456789012:function:f",
    ],
)
def test_integrations_machinery_runs_are_accepted(resource: str) -> None:
    task = {"Type": "Task", "Resource": resource, "End": True}
    if resource.endswith("http:invoke"):
        task["Parameters"] = {"ApiEndpoint": "https://example.org", "Method": "GET"}
    assert validate_definition(machine(("T", task))) == []


# -- Retry and Catch --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retrier", "field"),
    [
        ({"ErrorEquals": []}, "ErrorEquals"),
        ({"ErrorEquals": ["States.ALL", "X"]}, "ErrorEquals"),
        ({"ErrorEquals": ["X"], "MaxAttempts": -1}, "MaxAttempts"),
        ({"ErrorEquals": ["X"], "BackoffRate": 0.5}, "BackoffRate"),
        ({"ErrorEquals": ["X"], "IntervalSeconds": 0}, "IntervalSeconds"),
        ({"ErrorEquals": ["X"], "JitterStrategy": "SOME"}, "JitterStrategy"),
        ({"ErrorEquals": ["X"], "Backoff": 2}, "Backoff"),
    ],
)
def test_retrier_rules(retrier: dict[str, Any], field: str) -> None:
    issue = only_issue(task(Retry=[retrier]))
    assert issue.path == f"/States/T/Retry/0/{field}"
    assert field in issue.message or issue.message.startswith("Field")


def test_states_all_must_be_last() -> None:
    retry = [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]
    assert issues_of(task(Retry=retry)) == [("SCHEMA_VALIDATION_FAILED", "/States/T/Retry/0/ErrorEquals")]
    valid = [{"ErrorEquals": ["X"], "MaxAttempts": 0, "BackoffRate": 1.0, "JitterStrategy": "FULL"}]
    assert validate_definition(task(Retry=[*valid, {"ErrorEquals": ["States.ALL"]}])) == []


def test_catcher_rules() -> None:
    assert issues_of(task(Catch=[{"ErrorEquals": ["X"]}])) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/T/Catch/0")
    ]
    assert issues_of(task(Catch=[{"ErrorEquals": ["X"], "Next": "Gone"}])) == [
        ("MISSING_TRANSITION_TARGET", "/States/T/Catch/0/Next")
    ]
    assert issues_of(task(Catch=[{"ErrorEquals": ["X"], "Next": "T", "ResultPath": "$[*]"}])) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/T/Catch/0/ResultPath")
    ]


# -- Choice -----------------------------------------------------------------------------------------------


def choice(*rules: Any, default: str | None = "End") -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Choice", "Choices": list(rules)}
    if default is not None:
        state["Default"] = default
    return machine(("C", state), ("End", {"Type": "Succeed"}))


def test_valid_choice_rules() -> None:
    rule = {
        "And": [
            {"Variable": "$.a", "NumericGreaterThan": 1},
            {"Not": {"Variable": "$.b", "StringEqualsPath": "$.c"}},
            {"Or": [{"Variable": "$.t", "TimestampEquals": "2016-03-14T01:59:00Z"}]},
        ],
        "Next": "End",
    }
    assert validate_definition(choice(rule)) == []


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"Variable": "$.a", "NumericEquals": 1, "StringEquals": "x", "Next": "End"}, "/States/C/Choices/0"),
        ({"Variable": "$.a", "Next": "End"}, "/States/C/Choices/0"),
        ({"And": [], "Next": "End"}, "/States/C/Choices/0/And"),
        ({"Or": {"Variable": "$.a", "IsNull": True}, "Next": "End"}, "/States/C/Choices/0/Or"),
        (
            {"Not": {"Variable": "$.a", "IsNull": True, "Next": "End"}, "Next": "End"},
            "/States/C/Choices/0/Not/Next",
        ),
        ({"Variable": "$.a", "NumericEquals": "1", "Next": "End"}, "/States/C/Choices/0/NumericEquals"),
        (
            {"Variable": "$.a", "TimestampEquals": "yesterday", "Next": "End"},
            "/States/C/Choices/0/TimestampEquals",
        ),
        ({"Variable": "a", "IsNull": True, "Next": "End"}, "/States/C/Choices/0/Variable"),
        ({"Variable": "$.a", "IsNull": True}, "/States/C/Choices/0"),
    ],
)
def test_invalid_choice_rules(rule: dict[str, Any], path: str) -> None:
    assert issues_of(choice(rule)) == [("SCHEMA_VALIDATION_FAILED", path)]


def test_choice_default_must_exist() -> None:
    definition = choice({"Variable": "$.a", "IsNull": True, "Next": "End"}, default="Gone")
    assert issues_of(definition) == [("MISSING_TRANSITION_TARGET", "/States/C/Default")]


def test_choice_needs_rules() -> None:
    assert issues_of(choice()) == [("SCHEMA_VALIDATION_FAILED", "/States/C/Choices")]


# -- Wait, Fail -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({}, "/States/W"),
        ({"Seconds": 1, "SecondsPath": "$.s"}, "/States/W"),
        ({"Seconds": -1}, "/States/W/Seconds"),
        ({"Timestamp": "2016-12-05T21:29:29"}, "/States/W/Timestamp"),
        ({"Timestamp": "2016-12-05T25:29:29Z"}, "/States/W/Timestamp"),
        ({"TimestampPath": "$.t[*]"}, "/States/W/TimestampPath"),
    ],
)
def test_wait_rules(fields: dict[str, Any], path: str) -> None:
    assert issues_of(machine(("W", {"Type": "Wait", "End": True, **fields}))) == [
        ("SCHEMA_VALIDATION_FAILED", path)
    ]


def test_wait_valid_forms() -> None:
    for fields in ({"Seconds": 0}, {"SecondsPath": "$.s"}, {"Timestamp": "2016-03-14T01:59:00.123+01:00"}):
        assert validate_definition(machine(("W", {"Type": "Wait", "End": True, **fields}))) == []


def test_fail_error_and_cause_are_exclusive_with_paths() -> None:
    assert validate_definition(machine(("F", {"Type": "Fail", "Error": "E", "CausePath": "$.c"}))) == []
    assert issues_of(machine(("F", {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}))) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/F")
    ]
    assert issues_of(machine(("F", {"Type": "Fail", "Cause": "C", "CausePath": "$.c"}))) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/F")
    ]
    assert issues_of(machine(("F", {"Type": "Fail", "InputPath": "$"}))) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/F/InputPath")
    ]


# -- Parallel and Map -------------------------------------------------------------------------------------


def test_parallel_branches_are_scoped() -> None:
    branch = machine(("Inner", {"Type": "Pass", "Next": "After"}))
    definition = machine(
        ("P", {"Type": "Parallel", "Branches": [branch], "Next": "After"}), ("After", PASS_END)
    )
    assert issues_of(definition) == [
        ("MISSING_TRANSITION_TARGET", "/States/P/Branches/0/States/Inner/Next"),
        ("MISSING_END_STATE", "/States/P/Branches/0/States"),
    ]
    assert issues_of(machine(("P", {"Type": "Parallel", "Branches": [], "End": True}))) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/P/Branches")
    ]


def map_state(**fields: Any) -> dict[str, Any]:
    processor = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I", "States": {"I": PASS_END}}
    return machine(("M", {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}))


def test_map_valid() -> None:
    assert validate_definition(map_state(ItemsPath="$.items", MaxConcurrency=0, Label="my-label_1")) == []


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"ItemsPath": "$.items[*]"}, "/States/M/ItemsPath"),
        ({"MaxConcurrency": -1}, "/States/M/MaxConcurrency"),
        ({"MaxConcurrency": 1, "MaxConcurrencyPath": "$.m"}, "/States/M"),
        ({"Label": "a*b"}, "/States/M/Label"),
        ({"Label": "x" * 41}, "/States/M/Label"),
        ({"ToleratedFailurePercentage": 101}, "/States/M/ToleratedFailurePercentage"),
        ({"Iterator": {"StartAt": "J", "States": {"J": PASS_END}}}, "/States/M"),
    ],
)
def test_map_rules(fields: dict[str, Any], path: str) -> None:
    assert issues_of(map_state(**fields)) == [("SCHEMA_VALIDATION_FAILED", path)]


def test_map_processor_is_checked() -> None:
    definition = map_state()
    processor = definition["States"]["M"]["ItemProcessor"]
    processor["ProcessorConfig"]["Mode"] = "PARALLEL"
    processor["States"]["I"] = {"Type": "Pass", "Next": "M"}
    assert issues_of(definition) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/M/ItemProcessor/ProcessorConfig/Mode"),
        ("MISSING_TRANSITION_TARGET", "/States/M/ItemProcessor/States/I/Next"),
        ("MISSING_END_STATE", "/States/M/ItemProcessor/States"),
    ]


def test_map_label_message_names_the_character() -> None:
    assert only_issue(map_state(Label="a:b")).message == "Label contains invalid character: ':'"


# -- query languages --------------------------------------------------------------------------------------


def test_jsonata_states_accept_their_fields() -> None:
    definition = machine(
        (
            "T",
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"a": "{% $states.input %}"},
                "Output": "{% $states.result %}",
                "Assign": {"v": "{% 1 %}"},
                "TimeoutSeconds": "{% 3 %}",
                "Next": "C",
            },
        ),
        ("C", {"Type": "Choice", "Choices": [{"Condition": "{% $v = 1 %}", "Next": "M"}], "Default": "M"}),
        (
            "M",
            {
                "Type": "Map",
                "Items": "{% [1, 2] %}",
                "ItemProcessor": {"StartAt": "I", "States": {"I": PASS_END}},
                "End": True,
            },
        ),
        QueryLanguage="JSONata",
    )
    assert validate_definition(definition) == []


@pytest.mark.parametrize(
    "field", ["InputPath", "OutputPath", "Parameters", "ResultPath", "ResultSelector", "TimeoutSecondsPath"]
)
def test_jsonpath_fields_rejected_in_jsonata_states(field: str) -> None:
    issue = only_issue(task(QueryLanguage="JSONata", **{field: "$"}))
    assert issue.path == f"/States/T/{field}"
    assert field in issue.message
    assert "JSONata" in issue.message


@pytest.mark.parametrize("field", ["Arguments", "Output"])
def test_jsonata_fields_rejected_in_jsonpath_states(field: str) -> None:
    issue = only_issue(task(**{field: {}}))
    assert issue.path == f"/States/T/{field}"
    assert field in issue.message


def test_jsonpath_choice_rules_rejected_in_jsonata() -> None:
    definition = choice({"Variable": "$.a", "IsNull": True, "Next": "End"}) | {"QueryLanguage": "JSONata"}
    assert ("SCHEMA_VALIDATION_FAILED", "/States/C/Choices/0/Variable") in issues_of(definition)


def test_unclosed_jsonata_expression() -> None:
    issue = only_issue(machine(("A", PASS_END | {"Output": "{% $states.input"}), QueryLanguage="JSONata"))
    assert issue.path == "/States/A/Output"


def test_state_cannot_downgrade_a_jsonata_machine() -> None:
    definition = machine(("A", PASS_END | {"QueryLanguage": "JSONPath"}), QueryLanguage="JSONata")
    assert issues_of(definition) == [("SCHEMA_VALIDATION_FAILED", "/States/A")]
    upgraded = machine(("A", PASS_END | {"QueryLanguage": "JSONata", "Output": "{% 1 %}"}))
    assert validate_definition(upgraded) == []


# -- robustness -------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    [
        "Type",
        "Next",
        "End",
        "Choices",
        "Default",
        "Variable",
        "And",
        "Not",
        "StringEquals",
        "Branches",
        "ItemProcessor",
        "Iterator",
        "StartAt",
        "States",
        "Retry",
        "Catch",
        "ErrorEquals",
        "Parameters",
        "a.$",
        "ResultPath",
        "Seconds",
        "Timestamp",
        "QueryLanguage",
        "Credentials",
        "Label",
        "Output",
        "Assign",
    ]
)
field_values = (
    st.sampled_from(
        [
            "Pass",
            "Task",
            "Choice",
            "Wait",
            "Map",
            "Parallel",
            "JSONata",
            "$.a",
            "$[*]",
            "States.ALL",
            "{% 1 %}",
            "S0",
            "S1",
            "States.Format(",
            True,
            0,
            -1,
        ]
    )
    | json_values
)
shaped = st.recursive(
    field_values,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(field_names, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, shaped, st.dictionaries(field_names, shaped, max_size=5), st.text()))
def test_any_json_value_yields_a_list_of_issues(definition: Any) -> None:
    issues = validate_definition(definition)
    assert isinstance(issues, list)
    assert all(isinstance(issue, DefinitionIssue) for issue in issues)
    format_issues(issues)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["S0", "S1", "x" * 81]), st.dictionaries(field_names, shaped, max_size=6))
)
def test_random_states_never_raise(states: dict[str, Any]) -> None:
    assert isinstance(validate_definition({"StartAt": "S0", "States": states}), list)
