"""The States.* intrinsic functions."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.intrinsics import IntrinsicCall, evaluate_intrinsic, is_intrinsic, parse_intrinsic
from machinery.asl.jsonpath import PathNotFound

DATA: dict[str, Any] = {
    "name": "Arnav",
    "template": "Hello, my name is {}.",
    "items": [1, 2, 2, 3, "3", {"a": 1}, {"a": 1}],
    "obj": {"Arg1": 1, "Arg2": []},
    "n": 1.5,
}
CONTEXT = {"StateMachine": {"Name": "orders-prod-eu"}}


def run(expr: str, data: Any = None, variables: dict[str, Any] | None = None) -> Any:
    return evaluate_intrinsic(expr, DATA if data is None else data, CONTEXT, variables)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("States.Format('Hello, my name is {}.', $.name)", "Hello, my name is Arnav."),
        ("States.Format($.template, $.name)", "Hello, my name is Arnav."),
        ("States.Format('{} and {}', $.obj, $.items)", "{Arg1=1, Arg2=[]} and [1, 2, 2, 3, 3, {a=1}, {a=1}]"),
        ("States.Format('{}{}{}', 1.1, null, true)", "1.1nulltrue"),
        ("States.Format('literal \\{\\} and {}', 'x')", "literal {} and x"),
        ("States.Format('it\\'s {}', 'ok')", "it's ok"),
        ("States.Format('back\\\\slash')", "back\\slash"),
        ("States.StringToJson('{\"a\": [1, true]}')", {"a": [1, True]}),
        ("States.StringToJson(' ')", None),
        ("States.JsonToString($.obj)", '{"Arg1":1,"Arg2":[]}'),
        ("States.JsonToString('x')", '"x"'),
        ("States.Array(1, 'a', $.obj, null)", [1, "a", {"Arg1": 1, "Arg2": []}, None]),
        ("States.Array()", []),
        ("States.ArrayPartition(States.Array(1, 2, 3, 4, 5), 2)", [[1, 2], [3, 4], [5]]),
        ("States.ArrayPartition(States.Array(), 2)", []),
        ("States.ArrayContains($.items, '3')", True),
        ("States.ArrayContains($.items, true)", False),
        ("States.ArrayContains($.items, $.obj)", False),
        ("States.ArrayRange(1, 9, 2)", [1, 3, 5, 7, 9]),
        ("States.ArrayRange(0, 9, 3)", [0, 3, 6, 9]),
        ("States.ArrayRange(1, 9, 9)", [1]),
        ("States.ArrayRange(5, 1, -2)", [5, 3, 1]),
        ("States.ArrayRange(5, 1, 1)", []),
        ("States.ArrayGetItem($.items, 5)", {"a": 1}),
        ("States.ArrayLength($.items)", 7),
        ("States.ArrayUnique($.items)", [1, 2, 3, "3", {"a": 1}]),
        ("States.Base64Encode('Data to encode')", "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", "Data to encode"),
        ("States.Hash('input data', 'MD5')", "812f45842bc6d66ee14572ce20db8e86"),
        ("States.Hash('input data', 'SHA-1')", "aaff4a450a104cd177d28d18d74485e8cae074b7"),
        (
            'States.JsonMerge($.obj, States.StringToJson(\'{"Arg2": 2, "x": 3}\'), false)',
            {"Arg1": 1, "Arg2": 2, "x": 3},
        ),
        ("States.MathAdd(111, -1)", 110),
        ("States.MathAdd($.n, 1.51)", 4),
        ("States.MathAdd(-1.5, -1.51)", -3),
        ("States.MathAdd(-2.5, 0)", -2),
        ("States.MathAdd(0.5, 0)", 1),
        ("States.StringSplit('1,2,3', ',')", ["1", "2", "3"]),
        ("States.StringSplit(', , ,', ',')", [" ", " "]),
        ("States.StringSplit('a-b+c', '+-')", ["a", "b", "c"]),
        ("States.StringSplit(',,,', ',')", []),
        ("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)", "orders"),
        ("States.Format('{}', $v.x)", "7"),
        ("States.ArrayLength($.items[?(@.a)])", 2),
        ("  States.ArrayLength( $.items ) ", 7),
    ],
)
def test_results_match_aws(expr: str, expected: Any) -> None:
    assert run(expr, variables={"v": {"x": 7}}) == expected


def test_uuid_and_random() -> None:
    value = run("States.UUID()")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)
    for _ in range(50):
        assert 1 <= run("States.MathRandom(1, 5)") < 5
    assert run("States.MathRandom(1, 1000, 7)") == run("States.MathRandom(1, 1000, 7)")


@pytest.mark.parametrize(
    "expr",
    [
        "States.Format('{} {}', 1)",
        "States.Format('{}', 1, 2)",
        "States.Format($.n)",
        "States.StringToJson('{')",
        "States.StringToJson(1)",
        "States.ArrayPartition($.items, 0)",
        "States.ArrayPartition($.name, 1)",
        "States.ArrayRange(1, 2000, 1)",
        "States.ArrayRange(1, 2, 0)",
        "States.ArrayRange('1', 2, 1)",
        "States.ArrayGetItem($.items, 7)",
        "States.ArrayGetItem($.items, -1)",
        "States.ArrayLength($.obj)",
        "States.ArrayUnique('x')",
        "States.Base64Decode('***')",
        "States.Base64Encode(1)",
        "States.Hash('x', 'SHA-2')",
        "States.Hash(1, 'MD5')",
        "States.JsonMerge($.obj, $.obj, true)",
        "States.JsonMerge($.obj, $.items, false)",
        "States.MathAdd('1', 2)",
        "States.MathAdd(true, 2)",
        "States.MathAdd(2147483647, 1)",
        "States.MathRandom(5, 1)",
        "States.StringSplit(1, ',')",
    ],
)
def test_bad_arguments_raise_intrinsic_failure(expr: str) -> None:
    with pytest.raises(StatesError) as info:
        run(expr)
    assert info.value.error == "States.IntrinsicFailure"
    assert info.value.cause


def test_long_inputs_are_rejected() -> None:
    with pytest.raises(StatesError):
        run("States.Base64Encode($.s)", {"s": "x" * 10_001})


@pytest.mark.parametrize(
    "expr",
    [
        "States.Nope(1)",
        "States.Format()",
        "States.Format(1, 2)",
        "States.UUID(1)",
        "States.MathAdd(1)",
        "States.MathAdd(1, 2",
        "States.MathAdd(1 2)",
        "States.Array('unterminated)",
        "States.Array($.a[)",
        "States.Array(x)",
        "States.Array(1) trailing",
        "Format('x')",
    ],
)
def test_malformed_calls_raise_path_syntax_error(expr: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_intrinsic(expr)


def test_parse_tree_and_cache() -> None:
    call = parse_intrinsic("States.MathAdd(States.ArrayLength($.a), -1)")
    assert isinstance(call, IntrinsicCall)
    assert call.name == "MathAdd"
    assert isinstance(call.arguments[0], IntrinsicCall)
    assert parse_intrinsic("States.MathAdd(States.ArrayLength($.a), -1)") is call


def test_missing_path_argument_raises_path_not_found() -> None:
    with pytest.raises(PathNotFound):
        run("States.ArrayLength($.nothing)")


def test_is_intrinsic() -> None:
    assert is_intrinsic("States.UUID()")
    assert not is_intrinsic("$.States")


_ARGUMENTS = st.sampled_from(
    [
        "1",
        "-2.5",
        "'a,b'",
        "'{}'",
        "'\\{'",
        "$.a",
        "$.b",
        "$$.c",
        "$v",
        "null",
        "true",
        "$.a[*]",
        "'x'",
        "States.Array(1, 2)",
        "States.StringToJson('[1]')",
        "'SHA-256'",
        "$.missing",
        "0",
        "false",
    ]
)
_NAMES = st.sampled_from(
    [
        "Format",
        "StringToJson",
        "JsonToString",
        "Array",
        "ArrayPartition",
        "ArrayContains",
        "ArrayRange",
        "ArrayGetItem",
        "ArrayLength",
        "ArrayUnique",
        "Base64Encode",
        "Base64Decode",
        "Hash",
        "JsonMerge",
        "MathRandom",
        "MathAdd",
        "StringSplit",
        "UUID",
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    name=_NAMES, arguments=st.lists(_ARGUMENTS, max_size=4), junk=st.sampled_from(["", ")", "(", ",", "'"])
)
def test_random_calls_only_raise_documented_errors(name: str, arguments: list[str], junk: str) -> None:
    expr = f"States.{name}({', '.join(arguments)}){junk}"
    data = {"a": [1, "a", {"x": 1}], "b": "text", "c": 3}
    with contextlib.suppress(PathSyntaxError, StatesError, PathNotFound):
        evaluate_intrinsic(expr, data, {"c": 1}, {"v": {"k": [1]}})


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30))
def test_arbitrary_text_only_raises_documented_errors(text: str) -> None:
    with contextlib.suppress(PathSyntaxError, StatesError, PathNotFound):
        evaluate_intrinsic("States." + text, {}, {})
