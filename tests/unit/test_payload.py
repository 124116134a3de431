"""Payload templates (Parameters, ResultSelector, ItemSelector)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.payload import apply_template, compile_template, validate_template

DATA = {"order": {"id": 7, "lines": [{"sku": "a"}, {"sku": "b"}]}, "flag": None}
CONTEXT = {"Execution": {"Name": "run-1"}, "Map": {"Item": {"Index": 2}}}


def test_static_values_are_copied_and_dynamic_ones_evaluated() -> None:
    template = {
        "static": {"nested": [1, "two", None]},
        "id.$": "$.order.id",
        "skus.$": "$.order.lines[*].sku",
        "flag.$": "$.flag",
        "run.$": "$$.Execution.Name",
        "count.$": "States.ArrayLength($.order.lines)",
        "greeting.$": "States.Format('run {}', $$.Execution.Name)",
        "fromVar.$": "$counter",
        "deep": {"index.$": "$$.Map.Item.Index", "list": [{"first.$": "$.order.lines[0]"}, "plain"]},
        "not.a.path": "$.order.id",
    }
    result = apply_template(template, DATA, CONTEXT, {"counter": 3})
    assert result == {
        "static": {"nested": [1, "two", None]},
        "id": 7,
        "skus": ["a", "b"],
        "flag": None,
        "run": "run-1",
        "count": 2,
        "greeting": "run run-1",
        "fromVar": 3,
        "deep": {"index": 2, "list": [{"first": {"sku": "a"}}, "plain"]},
        "not.a.path": "$.order.id",
    }


def test_whole_input_and_scalars() -> None:
    assert apply_template({"all.$": "$"}, 5, None) == {"all": 5}
    assert apply_template("literal", DATA, None) == "literal"
    assert apply_template([{"x.$": "$.flag"}], DATA, None) == [{"x": None}]


def test_missing_path_fails_with_the_aws_cause() -> None:
    with pytest.raises(StatesError) as info:
        apply_template({"value.$": "$.no_such_jsonpath"}, {"int-literal": 0}, CONTEXT)
    assert info.value.error == "States.Runtime"
    assert info.value.cause == (
        "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found "
        "in the input '{\"int-literal\":0}'"
    )


def test_missing_context_path_and_intrinsic_argument_fail_as_runtime_errors() -> None:
    with pytest.raises(
        StatesError, match=re.escape("'$$.Execution.Input.nope' specified for the field 'v.$'")
    ):
        apply_template({"v.$": "$$.Execution.Input.nope"}, {}, CONTEXT)
    with pytest.raises(StatesError) as info:
        apply_template({"v.$": "States.ArrayLength($.nope)"}, {}, CONTEXT)
    assert info.value.error == "States.Runtime"


def test_intrinsic_failure_propagates() -> None:
    with pytest.raises(StatesError) as info:
        apply_template({"v.$": "States.ArrayGetItem($.order.lines, 5)"}, DATA, CONTEXT)
    assert info.value.error == "States.IntrinsicFailure"


def test_compiled_template_is_reusable() -> None:
    compiled = compile_template({"id.$": "$.id"})
    assert compiled.apply({"id": 1}) == {"id": 1}
    assert compiled.apply({"id": 2}) == {"id": 2}


def test_selected_values_are_shared_not_copied() -> None:
    result = apply_template({"order.$": "$.order"}, DATA, None)
    assert result["order"] is DATA["order"]


def test_validate_template_reports_locations() -> None:
    template = {
        "ok.$": "$.a",
        "bad.$": "$.a[",
        "nested": {"worse.$": "States.Nope()"},
        "list": [{"num.$": 5}, {"word.$": "plain"}],
    }
    problems = validate_template(template, "ResultSelector")
    assert len(problems) == 4
    assert problems[0].startswith("ResultSelector/bad.$: ")
    assert problems[1].startswith("ResultSelector/nested/worse.$: ")
    assert problems[2].startswith("ResultSelector/list[0]/num.$: ")
    assert problems[3].startswith("ResultSelector/list[1]/word.$: ")
    assert validate_template({"a": {"b.$": "$$.x"}, "c": [1, {"d.$": "States.UUID()"}]}) == []


def test_applying_an_invalid_template_raises_path_syntax_error() -> None:
    with pytest.raises(PathSyntaxError):
        apply_template({"x.$": "plain"}, {}, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    ),
    max_leaves=15,
)
expressions = st.sampled_from(
    [
        "$",
        "$.a",
        "$.b[0]",
        "$..c",
        "$$.a",
        "$v.a",
        "States.ArrayLength($.a)",
        "States.JsonToString($)",
        "States.Format('{}', $.a)",
        "$.a[",
        "nonsense",
        "States.Array($.b, 1)",
        "$.a[?(@.b)]",
    ]
)
templates = st.recursive(
    json_values | st.dictionaries(st.sampled_from(["x.$", "y.$"]), expressions, max_size=2),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["p", "q", "r.$"]), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(template=templates, data=json_values)
def test_random_templates_only_raise_documented_errors(template: Any, data: Any) -> None:
    problems = validate_template(template)
    try:
        apply_template(template, data, data, {"v": data})
    except PathSyntaxError:
        assert problems
    except StatesError:
        pass
