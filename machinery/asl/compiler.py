"""Compile a (validated) ASL definition into the immutable model of :mod:`machinery.asl.model`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinery.asl.model import (
    _UNSET,
    JSONPATH,
    Catcher,
    ChoiceBranch,
    CompiledMachine,
    ContainerKey,
    Retrier,
    State,
    StateMachine,
)

_PATH_FIELDS = {
    "InputPath": "input_path",
    "OutputPath": "output_path",
    "ResultPath": "result_path",
}
_VALUE_FIELDS = {
    "Parameters": "parameters",
    "ResultSelector": "result_selector",
    "Result": "result",
    "Arguments": "arguments",
    "Output": "output",
    "Assign": "assign",
    "ItemSelector": "item_selector",
    "Items": "items",
}
_PLAIN_FIELDS = {
    "Next": "next",
    "End": "end",
    "Comment": "comment",
    "Resource": "resource",
    "TimeoutSeconds": "timeout_seconds",
    "TimeoutSecondsPath": "timeout_seconds_path",
    "HeartbeatSeconds": "heartbeat_seconds",
    "HeartbeatSecondsPath": "heartbeat_seconds_path",
    "Credentials": "credentials",
    "Default": "default",
    "Seconds": "seconds",
    "SecondsPath": "seconds_path",
    "Timestamp": "timestamp",
    "TimestampPath": "timestamp_path",
    "Error": "error",
    "Cause": "cause",
    "ErrorPath": "error_path",
    "CausePath": "cause_path",
    "ItemsPath": "items_path",
    "ItemReader": "item_reader",
    "ItemBatcher": "item_batcher",
    "ResultWriter": "result_writer",
    "MaxConcurrency": "max_concurrency",
    "MaxConcurrencyPath": "max_concurrency_path",
    "ToleratedFailureCount": "tolerated_failure_count",
    "ToleratedFailureCountPath": "tolerated_failure_count_path",
    "ToleratedFailurePercentage": "tolerated_failure_percentage",
    "ToleratedFailurePercentagePath": "tolerated_failure_percentage_path",
    "Label": "label",
}


def compile_machine(definition: Mapping[str, Any]) -> CompiledMachine:
    """Compile a definition. It must have passed :func:`machinery.asl.validation.validate_definition`."""
    containers: dict[ContainerKey, StateMachine] = {}
    root = _compile_container(definition, (), definition.get("QueryLanguage", JSONPATH), containers)
    return CompiledMachine(definition=definition, root=root, containers=containers)


def _compile_container(
    body: Mapping[str, Any],
    key: ContainerKey,
    query_language: str,
    containers: dict[ContainerKey, StateMachine],
) -> StateMachine:
    language = body.get("QueryLanguage", query_language)
    states: dict[str, State] = {}
    for name, raw in body["States"].items():
        states[name] = _compile_state(name, raw, key, language, containers)
    machine = StateMachine(
        key=key,
        start_at=body["StartAt"],
        states=states,
        query_language=language,
        timeout_seconds=body.get("TimeoutSeconds"),
        comment=body.get("Comment"),
    )
    containers[key] = machine
    return machine


def _compile_state(
    name: str,
    raw: Mapping[str, Any],
    parent: ContainerKey,
    machine_language: str,
    containers: dict[ContainerKey, StateMachine],
) -> State:
    language = raw.get("QueryLanguage", machine_language)
    values: dict[str, Any] = {
        "name": name,
        "type": raw["Type"],
        "raw": raw,
        "query_language": language,
    }
    for source, target in _PATH_FIELDS.items():
        if source in raw:
            values[target] = raw[source]
    for source, target in _VALUE_FIELDS.items():
        values[target] = raw.get(source, _UNSET)
    for source, target in _PLAIN_FIELDS.items():
        if source in raw:
            values[target] = raw[source]
    if "Parameters" in raw and raw["Type"] == "Map" and "ItemSelector" not in raw:
        # Map's legacy ``Parameters`` is today's ``ItemSelector``.
        values["item_selector"] = raw["Parameters"]
        values["parameters"] = _UNSET
    values["unset"] = tuple(raw.get("Machinery.Unset", ()))
    values["retry"] = tuple(_compile_retrier(item) for item in raw.get("Retry", ()))
    values["catch"] = tuple(_compile_catcher(item) for item in raw.get("Catch", ()))
    values["choices"] = tuple(
        ChoiceBranch(
            rule=rule,
            next=rule["Next"],
            assign=rule.get("Assign", _UNSET),
            output=rule.get("Output", _UNSET),
        )
        for rule in raw.get("Choices", ())
    )
    if raw["Type"] == "Parallel":
        keys = []
        for index, branch in enumerate(raw.get("Branches", ())):
            key = (*parent, name, str(index))
            _compile_container(branch, key, language, containers)
            keys.append(key)
        values["branches"] = tuple(keys)
    if raw["Type"] == "Map":
        processor = raw.get("ItemProcessor") or raw.get("Iterator")
        if processor is not None:
            key = (*parent, name, "items")
            _compile_container(processor, key, language, containers)
            values["processor"] = key
            values["processor_mode"] = processor.get("ProcessorConfig", {}).get("Mode", "INLINE")
    return State(**values)


def _compile_retrier(raw: Mapping[str, Any]) -> Retrier:
    return Retrier(
        error_equals=tuple(raw.get("ErrorEquals", ())),
        interval_seconds=raw.get("IntervalSeconds", 1),
        max_attempts=raw.get("MaxAttempts", 3),
        backoff_rate=raw.get("BackoffRate", 2.0),
        max_delay_seconds=raw.get("MaxDelaySeconds"),
        jitter_strategy=raw.get("JitterStrategy", "NONE"),
    )


def _compile_catcher(raw: Mapping[str, Any]) -> Catcher:
    return Catcher(
        error_equals=tuple(raw.get("ErrorEquals", ())),
        next=raw["Next"],
        result_path=raw.get("ResultPath", "$"),
        assign=raw.get("Assign", _UNSET),
        output=raw.get("Output", _UNSET),
    )
