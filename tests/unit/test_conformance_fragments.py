"""Replay the AWS-recorded conformance cases that need only paths, templates, intrinsics and Choice rules.

The cases live outside the repository (``../shared/asl-conformance``) and are read at run time. A tiny
interpreter below runs machines made only of Pass, Choice, Succeed and Fail states, which is enough to
exercise :mod:`machinery.asl.payload`, :mod:`machinery.asl.intrinsics`, :mod:`machinery.asl.choice` and
ResultPath handling against what AWS produced.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from machinery.asl.choice import evaluate_rule
from machinery.asl.errors import StatesError
from machinery.asl.jsonpath import compile_path, set_path
from machinery.asl.payload import apply_template
from tests.shared import SHARED, needs_shared, require_shared

CASES_FILE = SHARED / "asl-conformance" / "cases.pure.json"
SIMPLE_STATES = {"Pass", "Choice", "Succeed", "Fail"}
JSONATA_KEYS = {"QueryLanguage", "Arguments", "Output", "Assign"}
PLACEHOLDER = re.compile(r".*<[^>]*>.*|timestamp|snf_role_arn|generated-uuid|start-time|entered-time|date")
MACHINE_NAME = "conformance-machine"


def _uses_jsonata(node: Any) -> bool:
    if isinstance(node, dict):
        return any(key in JSONATA_KEYS or _uses_jsonata(value) for key, value in node.items())
    if isinstance(node, list):
        return any(_uses_jsonata(item) for item in node)
    return isinstance(node, str) and "{%" in node


def _is_simple(case: dict[str, Any]) -> bool:
    definition = case["definition"]
    states = definition.get("States", {})
    return (
        case["expected"]["status"] in ("SUCCEEDED", "FAILED")
        and not _uses_jsonata(definition)
        and all(state.get("Type") in SIMPLE_STATES for state in states.values())
        and case["category"] != "error_handling"
    )


def _load_cases() -> list[Any]:
    if not CASES_FILE.exists():
        # Under CI the lone parameter runs and fails on the missing file.
        return [pytest.param(None, marks=needs_shared(CASES_FILE))]
    cases = json.loads(CASES_FILE.read_text())
    return [pytest.param(case, id=case["id"].split("::")[-1]) for case in cases if _is_simple(case)]


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and PLACEHOLDER.fullmatch(expected):
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_matches(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return type(expected) is type(actual) and bool(expected == actual)


def _select(path: Any, data: Any, context: Any) -> Any:
    if path is None:
        return {}
    return compile_path(path).evaluate(data, context)


class _Failed(Exception):
    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def run_machine(definition: dict[str, Any], execution_input: Any) -> Any:
    """Run a Pass/Choice/Succeed/Fail machine; return its output or raise :class:`_Failed`."""
    context: dict[str, Any] = {
        "Execution": {
            "Id": f"arn:aws:states:us-east-1:111111111111:execution:{MACHINE_NAME}:execution",
            "Input": execution_input,
            "StartTime": "2024-01-01T00:00:00Z",
            "Name": "execution",
            "RoleArn": "arn:aws:iam::111111111111:role/machinery",
            "RedriveCount": 0,
        },
        "StateMachine": {
            "Name": MACHINE_NAME,
            "Id": f"arn:aws:states:us-east-1:111111111111:stateMachine:{MACHINE_NAME}",
        },
        "State": {},
    }
    name = definition["StartAt"]
    data = execution_input
    for _ in range(100):
        state = definition["States"][name]
        # A fresh context per state: results may hold the previous one, and documents are never mutated.
        context = {**context, "State": {"Name": name, "EnteredTime": "2024-01-01T00:00:00Z"}}
        kind = state["Type"]
        try:
            if kind == "Fail":
                error = state.get("Error")
                cause = state.get("Cause")
                if "ErrorPath" in state:
                    error = _select(state["ErrorPath"], data, context)
                if "CausePath" in state:
                    cause = _select(state["CausePath"], data, context)
                raise _Failed(error, cause)
            effective = _select(state.get("InputPath", "$"), data, context)
            if kind == "Choice":
                target = state.get("Default")
                for rule in state["Choices"]:
                    if evaluate_rule(rule, effective, context):
                        target = rule["Next"]
                        break
                if target is None:
                    raise _Failed("States.NoChoiceMatched", None)
                data = _select(state.get("OutputPath", "$"), effective, context)
                name = target
                continue
            if kind == "Pass":
                if "Parameters" in state:
                    result = apply_template(state["Parameters"], effective, context)
                elif "Result" in state:
                    result = state["Result"]
                else:
                    result = effective
                result_path = state.get("ResultPath", "$")
                data = data if result_path is None else set_path(data, result_path, result)
            else:
                data = effective
            data = _select(state.get("OutputPath", "$"), data, context)
        except StatesError as exc:
            raise _Failed(exc.error, exc.cause) from exc
        if kind == "Succeed" or state.get("End"):
            return data
        name = state["Next"]
    raise AssertionError("the machine did not finish")


@pytest.mark.parametrize("case", _load_cases())
def test_conformance_case(case: dict[str, Any]) -> None:
    if case is None:
        require_shared(CASES_FILE)
    expected = case["expected"]
    try:
        output = run_machine(case["definition"], case["input"])
    except _Failed as failure:
        assert expected["status"] == "FAILED", f"unexpected failure {failure.error}: {failure.cause}"
        assert failure.error == expected.get("error")
        if isinstance(expected.get("cause"), str) and isinstance(failure.cause, str):
            # AWS prefixes runtime causes with the state's name and event id, which the engine adds.
            recorded = re.sub(r"^An error occurred while executing the state .*?\. ", "", expected["cause"])
            recorded_pattern = re.escape(recorded).replace(re.escape("<json-input:1>"), ".*")
            assert re.fullmatch(recorded_pattern, failure.cause) or _matches(recorded, failure.cause)
        return
    assert expected["status"] == "SUCCEEDED", f"expected a failure, got output {output!r}"
    assert _matches(expected["output"], output), f"{output!r} != {expected['output']!r}"
