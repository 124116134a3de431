"""JSONPath compilation, evaluation and ResultPath writing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl.errors import PathSyntaxError, StatesError
from machinery.asl.jsonpath import PathNotFound, compile_path, json_equal, set_path

STORE: dict[str, Any] = {
    "store": {
        "book": [
            {"title": "A", "price": 8.95, "isbn": "1"},
            {"title": "B", "price": 12.99},
            {"title": "C", "price": 8.99, "isbn": "3"},
            {"title": "D", "price": 22.99, "tags": ["x"]},
        ],
        "bicycle": {"color": "red", "price": 19.95},
    },
    "limit": 10,
    "int-literal": 0,
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$", STORE),
        ("$.limit", 10),
        ("$.int-literal", 0),
        ("$.store.bicycle.color", "red"),
        ("$['store']['bicycle']", {"color": "red", "price": 19.95}),
        ('$["store"]["bicycle"].price', 19.95),
        ("$.store.book[0].title", "A"),
        ("$.store.book[-1].title", "D"),
        ("$.store.book.length()", 4),
    ],
)
def test_reference_paths_return_the_node(expr: str, expected: Any) -> None:
    path = compile_path(expr)
    assert path.is_definite
    assert path.evaluate(STORE) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("$.store.book[*].title", ["A", "B", "C", "D"]),
        ("$.store.book[1:3].title", ["B", "C"]),
        ("$.store.book[-1:].title", ["D"]),
        ("$.store.book[:2].title", ["A", "B"]),
        ("$.store.book[0,2].title", ["A", "C"]),
        ("$.store.bicycle['color','price']", ["red", 19.95]),
        ("$..color", ["red"]),
        ("$.store..price", [8.95, 12.99, 8.99, 22.99, 19.95]),
        ("$.store.book[?(@.price < 10)].title", ["A", "C"]),
        ("$.store.book[?(@.price <= 8.99)].title", ["A", "C"]),
        ("$.store.book[?(@.price > 20)].title", ["D"]),
        ("$.store.book[?(@.price >= 22.99)].title", ["D"]),
        ("$.store.book[?(@.title == 'B')].price", [12.99]),
        ('$.store.book[?(@.title != "B")].title', ["A", "C", "D"]),
        ("$.store.book[?(@.isbn)].title", ["A", "C"]),
        ("$.store.book[?(!@.isbn)].title", ["B", "D"]),
        ("$.store.book[?(@.price < 10 && @.isbn == '3')].title", ["C"]),
        ("$.store.book[?(@.price < 9 || @.price > 20)].title", ["A", "C", "D"]),
        ("$.store.book[?(@.price < $.limit)].title", ["A", "C"]),
        ("$.store.book[?(@.missing == null)].title", []),
        ("$.store.book[9:].title", []),
        ("$.store.*.color", ["red"]),
    ],
)
def test_indefinite_paths_return_lists(expr: str, expected: Any) -> None:
    path = compile_path(expr)
    assert not path.is_definite
    assert path.evaluate(STORE) == expected


def test_context_and_variable_roots() -> None:
    context = {"Execution": {"Name": "run-1"}}
    assert compile_path("$$.Execution.Name").is_context
    assert compile_path("$$.Execution.Name").evaluate({}, context) == "run-1"
    assert compile_path("$$").evaluate({}, context) == context
    path = compile_path("$order.items[0]")
    assert path.variable == "order"
    assert path.evaluate({}, None, {"order": {"items": ["a"]}}) == "a"
    assert compile_path("$order").evaluate({}, None, {"order": 5}) == 5
    assert compile_path("$.a").variable is None


@pytest.mark.parametrize("expr", ["$.missing", "$.store.book[10]", "$.limit.x", "$.store[0]", "$v.x"])
def test_missing_reference_path_raises_path_not_found(expr: str) -> None:
    with pytest.raises(PathNotFound) as info:
        compile_path(expr).evaluate(STORE, None, {})
    assert info.value.path == expr
    assert not compile_path(expr).exists(STORE, None, {})


def test_null_is_present() -> None:
    assert compile_path("$.a").evaluate({"a": None}) is None
    assert compile_path("$.a").exists({"a": None})


def test_quoted_names_keep_backslashes_except_before_the_quote() -> None:
    assert compile_path("$['it\\'s']").evaluate({"it's": 1}) == 1
    assert compile_path("$['a\\\"b']").evaluate({'a\\"b': 2}) == 2


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "a.b",
        "$.",
        "$..",
        "$[",
        "$[]",
        "$['a'",
        "$.a[?(@.b <)]",
        "$.a[0:1:0]",
        "$ x",
        "$.a.foo()",
        "$[?(1)]",
    ],
)
def test_bad_syntax_raises_path_syntax_error(expr: str) -> None:
    with pytest.raises(PathSyntaxError):
        compile_path(expr)


def test_compile_is_cached() -> None:
    assert compile_path("$.cached.path") is compile_path("$.cached.path")


def test_json_equal_distinguishes_booleans_from_numbers() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})


class TestSetPath:
    def test_root_replaces_the_document(self) -> None:
        assert set_path({"a": 1}, "$", [1]) == [1]

    def test_sets_nested_field_without_mutating_the_input(self) -> None:
        data = {"a": {"b": 1}, "other": {"shared": True}}
        result = set_path(data, "$.a.c", 2)
        assert result == {"a": {"b": 1, "c": 2}, "other": {"shared": True}}
        assert data == {"a": {"b": 1}, "other": {"shared": True}}
        assert result["other"] is data["other"]

    def test_creates_missing_objects(self) -> None:
        assert set_path({}, "$.x.y.z", 1) == {"x": {"y": {"z": 1}}}

    def test_replaces_array_items(self) -> None:
        data = {"a": [1, 2]}
        assert set_path(data, "$.a[1]", 9) == {"a": [1, 9]}
        assert data == {"a": [1, 2]}

    @pytest.mark.parametrize(("data", "path"), [("text", "$.a"), ({"a": 1}, "$.a.b"), ({"a": []}, "$.a[0]")])
    def test_crossing_a_non_object_fails(self, data: Any, path: str) -> None:
        with pytest.raises(StatesError) as info:
            set_path(data, path, 1)
        assert info.value.error == "States.ResultPathMatchFailure"
        assert path in info.value.cause

    @pytest.mark.parametrize("path", ["$.a[*]", "$$.Execution", "$var.x", "$..a"])
    def test_only_reference_paths_on_the_data(self, path: str) -> None:
        with pytest.raises(PathSyntaxError):
            set_path({}, path, 1)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=20,
)
path_fragments = st.sampled_from(
    [
        ".a",
        ".b",
        "[0]",
        "[-1]",
        "[*]",
        "..a",
        "[1:]",
        "[0,1]",
        "['a']",
        "[?(@.a)]",
        "[?(@.a > 1)]",
        ".",
        "[",
        "]",
        "'",
        "?",
        "(",
        ")",
        "@",
        "$",
        ".length()",
        " ",
        "==",
        "&&",
        "x",
        "\\",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    data=json_values, fragments=st.lists(path_fragments, max_size=6), root=st.sampled_from(["$", "$$", "$v"])
)
def test_random_paths_only_raise_documented_errors(data: Any, fragments: list[str], root: str) -> None:
    expr = root + "".join(fragments)
    try:
        path = compile_path(expr)
        path.evaluate(data, data, {"v": data})
        set_path(data, expr, 1)
    except (PathSyntaxError, PathNotFound, StatesError):
        pass


@settings(max_examples=200, deadline=None)
@given(
    data=json_values,
    keys=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
    value=json_values,
)
def test_set_then_get_round_trips(data: Any, keys: list[str], value: Any) -> None:
    path = "$." + ".".join(keys)
    try:
        result = set_path(data, path, value)
    except StatesError:
        return
    assert compile_path(path).evaluate(result) == value
