"""JSONata expressions: compiling, evaluating with $states and variables, AWS's functions, templates."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl import jsonata
from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.jsonata import (
    QUERY_EVALUATION_ERROR,
    UNDEFINED,
    compile_expression,
    evaluate_template,
    is_jsonata_expression,
)

CASES = Path(__file__).resolve().parents[3] / "shared" / "asl-conformance" / "cases.pure.json"
STATES: dict[str, Any] = {
    "input": {"name": "ada", "items": [{"price": 1.5}, {"price": 2.5}], "nothing": None, "n": 3},
    "context": {"State": {"Name": "S"}, "Execution": {"Name": "e"}},
}


def run(text: str, states: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(STATES if states is None else states, variables or {})


def failure(text: str, variables: dict[str, Any] | None = None) -> StatesError:
    with pytest.raises(StatesError) as caught:
        run(text, variables=variables)
    assert caught.value.error == QUERY_EVALUATION_ERROR
    return caught.value


# -- recognising and compiling -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{% 1 %}", True),
        ("{%1%}", True),
        ("{%%}", True),
        (" {% 1 %}", False),
        ("{% 1 %} ", False),
        ("{%", False),
        ("{%}", False),
        ("$.a", False),
        (1, False),
        (None, False),
        (["{% 1 %}"], False),
    ],
)
def test_is_jsonata_expression(value: Any, expected: bool) -> None:
    assert is_jsonata_expression(value) is expected


def test_compile_strips_the_delimiters_and_blanks_and_caches() -> None:
    compiled = compile_expression("{%  $states.input.name \n%}")
    assert compiled.text == "$states.input.name"
    assert compile_expression("{%  $states.input.name \n%}") is compiled
    assert compile_expression("$states.input.name").text == "$states.input.name"


@pytest.mark.parametrize("text", ["{% 1 + %}", "{%  %}", "", "$sum(", "{% 'unterminated %}", "{% [1, 2 %}"])
def test_syntax_errors_raise_path_syntax_error(text: str) -> None:
    with pytest.raises(PathSyntaxError, match="JSONata expression"):
        compile_expression(text)


# -- evaluating ----------------------------------------------------------------------------------------


def test_states_and_variables_are_bound() -> None:
    assert run("$states.input.name & '/' & $customer", variables={"customer": "c-1"}) == "ada/c-1"
    assert run("$states.context.State.Name") == "S"
    assert run("$sum($states.input.items.price) + $bonus", variables={"bonus": 1}) == 5


def test_a_variable_named_states_cannot_hide_the_reserved_one() -> None:
    assert run("$states.input.n", variables={"states": {"input": {"n": 99}}}) == 3


def test_undefined_is_distinct_from_null() -> None:
    assert run("$states.input.missing") is UNDEFINED
    assert run("$doesNotExist") is UNDEFINED
    assert run("$states.input.nothing") is None
    assert run("$v", variables={"v": None}) is None
    assert run("null") is None
    assert not UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"


def test_undefined_members_vanish_from_constructed_values() -> None:
    assert run("{'a': $nope, 'b': 1}") == {"b": 1}
    assert run("[1, $nope, null]") == [1, None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("6 / 2", 3), ("1.5 * 2", 3), ("0.1 + 0.2", 0.30000000000000004), ("1e20", 10**20), ("-0", 0)],
)
def test_integral_numbers_come_back_as_integers(text: str, expected: Any) -> None:
    result = run(text)
    assert result == expected
    assert type(result) is type(expected)


def test_large_numbers_stay_floats_as_javascript_prints_them() -> None:
    assert run("1e21") == 1e21
    assert isinstance(run("1e21"), float)


def test_the_state_input_is_not_modified() -> None:
    states = json.loads(json.dumps(STATES))
    run("$states.input ~> |$|{'name': 'changed'}|", states)
    assert states == STATES


def test_evaluation_errors_name_the_expression_and_field() -> None:
    with pytest.raises(StatesError) as caught:
        compile_expression("{% 'a' + 1 %}").evaluate(STATES, {}, field="Output/total")
    assert caught.value.error == QUERY_EVALUATION_ERROR
    assert caught.value.cause.startswith(
        "The JSONata expression ''a' + 1' specified for the field 'Output/total' "
        "threw an error during evaluation"
    )
    assert "T2001" in caught.value.cause


def test_calling_a_non_function_fails() -> None:
    assert "$nothing()" in failure("$nothing()").cause


def test_evaluate_defined_fails_like_aws_on_undefined() -> None:
    with pytest.raises(StatesError) as caught:
        compile_expression("{% $doesNotExist %}").evaluate_defined(STATES, {}, field="Output")
    assert caught.value.cause == (
        "The JSONata expression '$doesNotExist' specified for the field 'Output' "
        "returned nothing (undefined)."
    )


def test_runaway_recursion_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonata, "EVALUATION_TIMEOUT_MS", 100)
    cause = failure("($loop := function($x){ $loop($x + 1) }; $loop(0))").cause
    assert "D1012" in cause or "D1011" in cause


def test_deep_recursion_is_stopped() -> None:
    assert "D1011" in failure("($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100000))").cause


def test_data_the_engine_cannot_take_fails_as_a_states_error() -> None:
    with pytest.raises(StatesError):
        run("$states.input", {"input": 2**80})
    with pytest.raises(StatesError):
        run("$states.input", {"input": "\ud800"})


def test_a_compiled_expression_can_be_used_from_any_thread() -> None:
    compiled = compile_expression("{% $sum($states.input.items.price) & $hash($who, 'MD5') %}")
    results: list[Any] = []

    def work() -> None:
        for index in range(50):
            results.append(compiled.evaluate({"input": {"items": [{"price": index}]}}, {"who": "x"}))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200
    assert results[0] == "0" + hashlib.md5(b"x").hexdigest()


# -- the functions Step Functions adds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$partition([0, 1, 2, 3], 3)", [[0, 1, 2], [3]]),
        ("$partition([0, 1, 2], 1)", [[0], [1], [2]]),
        ("$partition([0], 5)", [[0]]),
        ("$partition([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)", [[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        ("$partition($states.input.items.price, 1)", [[1.5], [2.5]]),
    ],
)
def test_partition(text: str, expected: Any) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$partition([1, 2], 0)", "chunk size must be positive"),
        ("$partition([1, 2], 1.5)", "chunk size must be an integer"),
        ("$partition([1, 2], 'two')", "chunk size must be an integer"),
        ("$partition([], 2)", "must not be empty"),
        ("$partition([1])", "wrong number of arguments"),
    ],
)
def test_partition_errors(text: str, message: str) -> None:
    assert message in failure(text).cause


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$range(0, 9, 3)", [0, 3, 6, 9]),
        ("$range(0, 10, 3)", [0, 3, 6, 9]),
        ("$range(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("$range(0, 10, 2)", [0, 2, 4, 6, 8, 10]),
        ("$range(3, 1, -1)", [3, 2, 1]),
        ("$range(1, 9, 9)", 1),
        ("$range(5, 1, 1)", []),
    ],
)
def test_range(text: str, expected: Any) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$range(1, 5, 0)", "step must not be 0"),
        ("$range(1.5, 5, 1)", "start must be an integer"),
        ("$range(1, 'x', 1)", "end must be an integer"),
        ("$range(0, 5000, 1)", "more than 1000"),
    ],
)
def test_range_errors(text: str, message: str) -> None:
    assert message in failure(text).cause


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_hash(algorithm: str) -> None:
    digest = hashlib.new(algorithm.replace("-", "").lower(), b"Hash this string").hexdigest()
    assert run(f"$hash('Hash this string', '{algorithm}')") == digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$hash('a', 'SHA-3')", "algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"),
        ("$hash('a', 'sha-256')", "algorithm must be one of"),
        ("$hash(1, 'MD5')", "value to hash must be a string"),
    ],
)
def test_hash_errors(text: str, message: str) -> None:
    assert message in failure(text).cause


def test_random() -> None:
    values = {run("$random()") for _ in range(20)}
    assert all(isinstance(value, float) and 0 <= value < 1 for value in values)
    assert len(values) > 1
    assert run("$random(42)") == run("$random(42)")
    assert run("$random(42)") != run("$random(43)")
    assert 0 <= run("$random($states.input.n)") < 1
    assert "seed must be a number" in failure("$random('x')").cause


def test_uuid() -> None:
    value = run("$uuid()")
    assert uuid.UUID(value).version == 4
    assert run("$uuid()") != value
    assert "wrong number of arguments" in failure("$uuid(1)").cause


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-0", 0),
        ("1", 1),
        ("1.1", 1.1),
        ("true", True),
        ('"HelloWorld"', "HelloWorld"),
        ('[1, 2, "HelloWorld"]', [1, 2, "HelloWorld"]),
        ('{"Arg1": 1, "Arg2": []}', {"Arg1": 1, "Arg2": []}),
        ("null", None),
    ],
)
def test_parse(text: str, expected: Any) -> None:
    assert run("$parse($states.input.s)", {"input": {"s": text}}) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$parse('{')", "not valid JSON"),
        ("$parse(1)", "must be a string"),
        ("$parse($nope)", "must be a string"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    assert message in failure(text).cause


def test_functions_of_standard_jsonata_still_work() -> None:
    assert run("$uppercase($states.input.name)") == "ADA"
    assert run("$contains('hello$world', /^hello\\ /)") is False
    assert run('$number("2")') == 2
    assert run("$variable := 1") == 1


# -- templates ---------------------------------------------------------------------------------------


def test_template_evaluates_expressions_at_any_depth_and_keeps_literals() -> None:
    template = {
        "total": "{% $sum($states.input.items.price) %}",
        "literal": "$states.input.name",
        "nested": {"list": [1, "{% $states.input.n * 2 %}", "plain", None, True]},
        "number": 0.1,
    }
    assert evaluate_template(template, STATES, {}, "Output") == {
        "total": 4,
        "literal": "$states.input.name",
        "nested": {"list": [1, 6, "plain", None, True]},
        "number": 0.1,
    }


@pytest.mark.parametrize("value", [[], {}, "string literal", 0.1, None, False])
def test_template_literals_come_back_unchanged(value: Any) -> None:
    assert evaluate_template(value, STATES, {}, "Output") == value


@pytest.mark.parametrize(
    ("template", "field"),
    [
        ("{% $doesNotExist %}", "Output"),
        ({"result": "{% $doesNotExist %}"}, "Output/result"),
        ({"a": {"b": "{% $doesNotExist %}"}}, "Output/a/b"),
        ({"a": [1, "{% $doesNotExist %}"]}, "Output/a/1"),
    ],
)
def test_template_fails_on_undefined_naming_the_field(template: Any, field: str) -> None:
    with pytest.raises(StatesError) as caught:
        evaluate_template(template, STATES, {}, "Output")
    assert caught.value.error == QUERY_EVALUATION_ERROR
    assert caught.value.cause == (
        f"The JSONata expression '$doesNotExist' specified for the field '{field}' "
        "returned nothing (undefined)."
    )


def test_template_without_a_field_name_uses_the_keys() -> None:
    with pytest.raises(StatesError, match="for the field 'result'"):
        evaluate_template({"result": "{% $nope %}"}, STATES, {})


def test_template_null_result_is_kept() -> None:
    assert evaluate_template({"x": "{% $states.input.nothing %}"}, STATES, {}, "Output") == {"x": None}


# -- the conformance cases ---------------------------------------------------------------------------


def single_pass_output_cases() -> list[Any]:
    """Cases of one JSONata Pass state whose Output AWS's recorded outcome determines."""
    if not CASES.exists():
        return []
    found = []
    for case in json.loads(CASES.read_text()):
        definition = case["definition"]
        state = definition["States"][definition["StartAt"]]
        language = state.get("QueryLanguage", definition.get("QueryLanguage"))
        if language == "JSONata" and state["Type"] == "Pass" and state.get("End") and "Output" in state:
            found.append(pytest.param(state["Output"], case["input"], case["expected"], id=case["id"][-60:]))
    return found


@pytest.mark.parametrize(("output", "document", "expected"), single_pass_output_cases())
def test_conformance_pass_outputs(output: Any, document: Any, expected: dict[str, Any]) -> None:
    states = {"input": document, "context": {}}
    if expected["status"] == "SUCCEEDED":
        assert evaluate_template(output, states, {}, "Output") == expected["output"]
    else:
        with pytest.raises(StatesError) as caught:
            evaluate_template(output, states, {}, "Output")
        assert caught.value.error == expected["error"]
        assert expected["cause"].endswith(caught.value.cause)


# -- properties --------------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "$states",
        ".input",
        ".items",
        "$x",
        "$",
        "$$",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        ":=",
        ":",
        "'a'",
        '"b"',
        "1",
        "0",
        "-",
        "+",
        "*",
        "/",
        "%",
        "&",
        "=",
        "!=",
        "<",
        ">",
        "and",
        "or",
        "?",
        "function($v){$v}",
        "$sum",
        "$partition",
        "$range",
        "$hash",
        "$random",
        "$uuid",
        "$parse",
        "$string",
        "$number",
        "$keys",
        "$lookup",
        "$eval",
        "~>",
        "..",
        "^(",
        "#$i",
        "@$e",
        "|",
        "/a/",
        " ",
        "null",
        "true",
        "'MD5'",
        "price",
        "*",
        "**",
        "%}",
        "{%",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=12).map("".join) | st.text(max_size=30))
def test_random_expressions_fail_only_with_our_errors(text: str) -> None:
    states = {"input": {"items": [{"price": 1}, {"price": 2}], "a": "x"}, "context": {}}
    try:
        compiled = compile_expression(text)
    except PathSyntaxError:
        return
    try:
        compiled.evaluate(states, {"x": [1, "two", None]})
    except StatesError as exc:
        assert exc.error == QUERY_EVALUATION_ERROR
