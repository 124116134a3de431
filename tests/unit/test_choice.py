"""Choice rules (JSONPath flavour)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl.choice import evaluate_rule, parse_timestamp, validate_rule
from machinery.asl.errors import PathSyntaxError, StatesError

DATA: dict[str, Any] = {
    "s": "banana",
    "n": 5,
    "f": 1.5,
    "b": True,
    "z": None,
    "t": "2024-05-01T10:00:00Z",
    "t2": "2024-05-01T12:00:00+02:00",
    "star": "a*b",
    "other": "banana",
    "list": [1],
}


def check(rule: dict[str, Any], data: Any = None) -> bool:
    return evaluate_rule(rule, DATA if data is None else data, {"c": 5}, {"var": {"n": 5}})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "banana"}, True),
        ({"Variable": "$.s", "StringLessThan": "cherry"}, True),
        ({"Variable": "$.s", "StringGreaterThan": "apple"}, True),
        ({"Variable": "$.s", "StringLessThanEquals": "banana"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "bananas"}, False),
        ({"Variable": "$.s", "StringMatches": "b*a"}, True),
        ({"Variable": "$.s", "StringMatches": "*nan*"}, True),
        ({"Variable": "$.s", "StringMatches": "b*x"}, False),
        ({"Variable": "$.star", "StringMatches": "a\\*b"}, True),
        ({"Variable": "$.s", "StringMatches": "a\\*b"}, False),
        ({"Variable": "$.s", "StringEqualsPath": "$.other"}, True),
        ({"Variable": "$.n", "NumericEquals": 5.0}, True),
        ({"Variable": "$.n", "NumericLessThan": 6}, True),
        ({"Variable": "$.n", "NumericGreaterThan": 5}, False),
        ({"Variable": "$.n", "NumericLessThanEquals": 5}, True),
        ({"Variable": "$.f", "NumericGreaterThanEquals": 1.5}, True),
        ({"Variable": "$.f", "NumericLessThanPath": "$.n"}, True),
        ({"Variable": "$.b", "NumericEquals": 1}, False),
        ({"Variable": "$.b", "BooleanEquals": True}, True),
        ({"Variable": "$.n", "BooleanEquals": True}, False),
        ({"Variable": "$.b", "BooleanEqualsPath": "$.b"}, True),
        ({"Variable": "$.t", "TimestampEquals": "2024-05-01T08:00:00-02:00"}, True),
        ({"Variable": "$.t", "TimestampEqualsPath": "$.t2"}, True),
        ({"Variable": "$.t", "TimestampLessThan": "2024-05-01T10:00:00.000000001Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThan": "2024-05-01T09:59:59.999Z"}, True),
        ({"Variable": "$.t", "TimestampLessThanEquals": "2024-05-01T10:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThanEqualsPath": "$.t2"}, True),
        ({"Variable": "$.s", "TimestampEquals": "2024-05-01T10:00:00Z"}, False),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),
        ({"Variable": "$.s", "IsString": True}, True),
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": False}, True),
        ({"Variable": "$.z", "IsPresent": True}, True),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.missing", "IsPresent": True}, False),
        ({"Variable": "$.list", "NumericEquals": 1}, False),
        ({"Variable": "$$.c", "NumericEquals": 5}, True),
        ({"Variable": "$var.n", "NumericEqualsPath": "$$.c"}, True),
        (
            {"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b", "BooleanEquals": True}]},
            True,
        ),
        (
            {"And": [{"Variable": "$.n", "NumericEquals": 5}, {"Variable": "$.b", "BooleanEquals": False}]},
            False,
        ),
        ({"Or": [{"Variable": "$.n", "NumericEquals": 4}, {"Variable": "$.b", "BooleanEquals": True}]}, True),
        ({"Not": {"Variable": "$.n", "NumericEquals": 4}}, True),
        ({"Not": {"Variable": "$.missing", "IsPresent": True}, "Next": "X"}, True),
    ],
)
def test_rules(rule: dict[str, Any], expected: bool) -> None:
    assert check(rule) is expected


@pytest.mark.parametrize(
    "rule",
    [
        {"Variable": "$.missing", "StringEquals": "x"},
        {"Variable": "$.s", "StringEqualsPath": "$.missing"},
        {"Variable": "$nope.x", "IsNull": True},
    ],
)
def test_missing_values_fail_with_states_runtime(rule: dict[str, Any]) -> None:
    with pytest.raises(StatesError) as info:
        check(rule)
    assert info.value.error == "States.Runtime"
    assert "Invalid path" in info.value.cause


def test_short_circuit_skips_later_missing_paths() -> None:
    assert check({"Or": [{"Variable": "$.b", "BooleanEquals": True}, {"Variable": "$.x", "IsNull": True}]})


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2012-10-09T19:00:55Z", True),
        ("2012-10-09T19:00:55.123456789+01:00", True),
        ("2012-10-09t19:00:55z", True),
        ("2012-10-09T19:00:55", False),
        ("2012-10-09T19:00:55.000000", False),
        ("2023-02-24 12:15:56.832957", False),
        ("2016-12-05T25:29:29Z", False),
        ("2016-02-30T01:00:00Z", False),
        ("05-12-2016T21:29:29Z", False),
        ("2023-02-24", False),
        (5, False),
    ],
)
def test_timestamps(text: Any, valid: bool) -> None:
    assert (parse_timestamp(text) is not None) is valid


def test_validate_rule() -> None:
    assert validate_rule({"Variable": "$.a", "StringEquals": "x", "Next": "N"}, "Choices[0]") == []
    assert validate_rule({"And": [{"Variable": "$.a", "IsNull": True}]}, "C") == []
    problems = validate_rule(
        {
            "Or": [
                {"Variable": "$.a", "NumericEquals": "1"},
                {"Variable": "$.a[", "IsNull": True},
                {"Variable": "$.a", "TimestampEquals": "yesterday"},
                {"Variable": "$.a"},
                {"Variable": "$.a", "StringEquals": "x", "BooleanEquals": True},
                {"StringEquals": "x"},
                {"Not": 5},
                {"And": []},
                {"Variable": "$.a", "StringEqualsPath": "nope"},
                {"Variable": "$.a", "IsNull": True, "Extra": 1},
            ]
        },
        "Choices[0]",
    )
    assert len(problems) == 10
    assert problems[0] == "Choices[0]/Or[0]/NumericEquals: must be a number"


def test_malformed_rule_raises_path_syntax_error() -> None:
    with pytest.raises(PathSyntaxError):
        check({"Variable": "$.s"})


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5+01:00"]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abv"), children, max_size=3)
    ),
    max_leaves=10,
)
comparators = st.sampled_from(
    [
        "StringEquals",
        "StringMatches",
        "NumericLessThan",
        "BooleanEquals",
        "TimestampGreaterThan",
        "IsNull",
        "IsPresent",
        "IsTimestamp",
        "StringLessThanPath",
        "NumericEqualsPath",
        "TimestampEqualsPath",
    ]
)
paths = st.sampled_from(["$", "$.a", "$.b", "$.a[0]", "$..a", "$$.a", "$v", "$.a[", "$.v.b"])


@settings(max_examples=400, deadline=None)
@given(
    data=json_values,
    comparator=comparators,
    variable=paths,
    operand=json_values | paths,
    negate=st.booleans(),
)
def test_random_rules_only_raise_documented_errors(
    data: Any, comparator: str, variable: str, operand: Any, negate: bool
) -> None:
    rule: dict[str, Any] = {"Variable": variable, comparator: operand}
    if negate:
        rule = {"Not": rule}
    problems = validate_rule(rule, "rule")
    try:
        result = evaluate_rule(rule, data, data, {"v": data})
    except StatesError as exc:
        assert exc.error == "States.Runtime"
    except PathSyntaxError:
        assert problems
    else:
        assert isinstance(result, bool)


def test_strings_beyond_the_bmp_compare_by_utf16_code_units_against_any_string() -> None:
    # U+10000 is D800 DC00 in UTF-16, below U+FFFF (a BMP character) as Java orders them.
    assert evaluate_rule({"Variable": "$", "StringLessThan": "\uffff", "Next": "x"}, "\U00010000")
    assert evaluate_rule({"Variable": "$", "StringGreaterThan": "a", "Next": "x"}, "\U00010000")
