"""TestState: one state run on its own (``mock`` or a real call), at INFO, DEBUG or TRACE level."""

from __future__ import annotations

import json
from typing import Any

from machinery.aws.errors import validation
from machinery.aws.machines import INVALID_JSON_DEFINITION, invalid_definition
from machinery.aws.protocol import Call, action, read_json
from machinery.control.teststate import Mock, StateTestError, real_caller, run_state_test
from machinery.errors import InvalidDefinition
from machinery.runtime.tasks import TaskInvoker


def _json(params: dict[str, Any], key: str, default: Any, error: str) -> Any:
    text = params.get(key)
    if text is None:
        return default
    return read_json(text, error, f"Invalid {key}: '{{}}'")


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@action("TestState")
def run_test_state(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``TestState`` action."""
    definition = read_json(params["definition"], "InvalidDefinition", INVALID_JSON_DEFINITION)
    state_input = _json(params, "input", {}, "InvalidExecutionInput")
    variables = _json(params, "variables", {}, "ValidationException")
    if not isinstance(variables, dict):
        raise validation("variables must be a JSON object")
    mock = None
    if "mock" in params:
        given = params["mock"]
        if "errorOutput" in given:
            failure = given["errorOutput"]
            mock = Mock(error=failure.get("error", ""), cause=failure.get("cause", ""))
        elif "result" in given:
            mock = Mock(result=_json(given, "result", None, "ValidationException"), has_result=True)
        else:
            raise validation("A mock needs a result or an errorOutput")
    settings = call.orchestrator.settings
    caller = real_caller(
        lambda: TaskInvoker(call.orchestrator.storage, settings.lambda_endpoint, settings.time_scale)
    )
    level = params.get("inspectionLevel", "INFO")
    try:
        outcome = run_state_test(
            definition,
            params.get("stateName"),
            state_input,
            variables,
            mock,
            caller,
            retry_count=int((params.get("stateConfiguration") or {}).get("retrierRetryCount", 0)),
            inspect=level in ("DEBUG", "TRACE"),
            data_limit=settings.data_limit,
        )
    except InvalidDefinition as error:
        raise invalid_definition(error) from None
    except StateTestError as error:
        raise validation(error.message) from None
    answer: dict[str, Any] = {"status": outcome.status}
    if outcome.status in ("SUCCEEDED", "CAUGHT_ERROR"):
        answer["output"] = _text(outcome.output)
    if outcome.error is not None:
        answer["error"] = outcome.error
    if outcome.cause is not None:
        answer["cause"] = outcome.cause
    if outcome.next_state is not None:
        answer["nextState"] = outcome.next_state
    if outcome.inspection:
        inspection: dict[str, Any] = {}
        for key, value in outcome.inspection.items():
            inspection[key] = value if key == "errorDetails" else _text(value)
        answer["inspectionData"] = inspection
    return answer
