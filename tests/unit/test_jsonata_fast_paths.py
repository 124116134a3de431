"""The JSONata fast paths give exactly what the engine gives (the simple form's ``$merge``)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.asl.jsonata import MERGE_INPUT_RESULT, compile_expression, merge_input_result

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12,
)
_OBJECTS = st.dictionaries(st.text(max_size=4), _VALUES, max_size=5)


@settings(max_examples=300, deadline=None)
@given(_OBJECTS, _OBJECTS)
def test_merge_of_input_and_result_equals_the_engines(
    document: dict[str, Any], reply: dict[str, Any]
) -> None:
    expression = compile_expression("{% " + MERGE_INPUT_RESULT + " %}")
    states = {"input": document, "result": reply}
    fast = expression.evaluate(states, {})
    engine = expression.evaluate_natively(states, {})
    # As text: key order, and 1 against 1.0 at any depth, must agree too.
    assert json.dumps(fast) == json.dumps(engine)


def test_anything_but_two_objects_is_left_to_the_engine() -> None:
    assert merge_input_result({"input": [1], "result": {"a": 1}}) is None
    assert merge_input_result({"input": {"a": 1}}) is None
    assert merge_input_result({"input": {"a": float("nan")}, "result": {}}) is None
