"""machinery.jsontext gives exactly json's text and values, by orjson where they agree.

Each parametrized case is one of the places where orjson alone differs from json (the module's
docstring lists them); the property tests compare both on arbitrary JSON-like values.
"""

from __future__ import annotations

import json
import math
import struct
from datetime import UTC, datetime

import pytest
from flask import Flask, jsonify
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.api.requests import install
from machinery.jsontext import dumps_compact, dumps_compact_bytes, loads
from machinery.limits import InputLimits


def reference(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    "value",
    [
        1e-05,  # orjson: 0.00001
        -1.234e-07,  # orjson: -1.234e-7
        {"a": [1e-9, 0.0001, 1e-10, 1e16, 5e-324]},
        math.nan,  # orjson: null
        [math.inf, -math.inf],
        2**64,  # orjson refuses integers beyond 64 bits
        -(2**63) - 1,
        {1: "a", None: "b", 2.5: "c"},  # keys that are not strings
        "\ud800",  # a lone surrogate
        {"text": "null", "page": "page-5", "n": None},  # only resembles a difference: the slow path
        {"é": "\u2028\x1f\x7f", "nested": [{"k": True}, [], {}]},
    ],
)
def test_dumps_compact_writes_what_json_writes(value: object) -> None:
    assert dumps_compact(value) == reference(value)
    body = dumps_compact_bytes(value)
    assert json.loads(body) == json.loads(reference(value)) or value != value  # NaN is not NaN
    if "\ud800" not in reference(value):  # UTF-8 has no lone surrogate: the body holds its escape
        assert body == reference(value).encode()
    else:
        assert body == b'"\\ud800"'


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890",  # orjson: a float
        "[18446744073709551616, -9223372036854775809, 1180591620717411303425]",
        '{"id": 9223372036854775807}',
        "[NaN, Infinity, -Infinity]",  # orjson refuses these
        "1e999",
        '"\\ud800"',
        '{"a": 1, "b": 2, "a": 3}',  # the last of duplicate keys, in the first one's place
        '{"digits": "12345678901234567890", "x": 0.1}',
    ],
)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_loads_reads_what_json_reads(text: str, as_bytes: bool) -> None:
    raw: str | bytes = text.encode() if as_bytes else text
    expected = json.loads(raw)
    value = loads(raw)
    assert repr(value) == repr(expected)  # repr tells an int from an equal float, and NaN from NaN
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul", b"\xff"])
def test_loads_raises_jsons_error(text: str | bytes) -> None:
    with pytest.raises(ValueError) as raised:
        json.loads(text)
    with pytest.raises(type(raised.value)):
        loads(text)


def any_float(bits: int) -> float:
    return float(struct.unpack("<d", bits.to_bytes(8, "little"))[0])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(0, 2**64 - 1).map(any_float)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_dumps_compact_matches_json_on_any_value(value: object) -> None:
    assert dumps_compact(value) == reference(value)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_loads_reads_back_what_json_writes(value: object) -> None:
    text = reference(value)
    assert repr(loads(text)) == repr(json.loads(text))
    assert repr(loads(text.encode())) == repr(json.loads(text.encode()))


def test_the_apis_json_answers_are_written_by_orjson_with_flasks_fallbacks() -> None:
    app = Flask("answers")
    install(app, InputLimits())
    with app.app_context():
        fast = jsonify({"name": "é", "nan": math.nan, "n": [1, 0.5]})
        slow = jsonify({"big": 2**70 + 1, "when": datetime(2026, 12, 1, tzinfo=UTC)})
        app.debug = True
        indented = jsonify({"a": 1})
    assert fast.get_data() == '{"name":"é","nan":null,"n":[1,0.5]}\n'.encode()  # orjson: UTF-8, no NaN
    assert fast.mimetype == "application/json"
    assert slow.get_json() == {"big": 2**70 + 1, "when": "Tue, 01 Dec 2026 00:00:00 GMT"}  # Flask's own
    assert indented.get_data() == b'{\n  "a": 1\n}\n'
