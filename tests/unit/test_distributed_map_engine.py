"""Distributed Maps and ItemReader in the pure interpreter, the item parser and validation."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from machinery.asl.validation import validate_definition
from machinery.engine.types import (
    FAILED,
    SUCCEEDED,
    Branch,
    ChildrenFailed,
    ChildrenSucceeded,
    ItemsRead,
    ItemsReadFailed,
    ReadItems,
    StartChildren,
)
from machinery.runtime.items import parse_items
from tests.unit.test_interpreter import NOW, interpreter, resume, start, types

HTTP = "arn:aws:states:::http:invoke"


def map_machine(mode: str = "DISTRIBUTED", **fields: Any) -> dict[str, Any]:
    processor = {
        "ProcessorConfig": {"Mode": mode},
        "StartAt": "Item",
        "States": {"Item": {"Type": "Pass", "End": True}},
    }
    return {
        "StartAt": "M",
        "States": {"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}},
    }


def children_of(step: Any) -> StartChildren:
    (effect,) = step.effects
    assert isinstance(effect, StartChildren)
    return effect


def test_distributed_map_records_a_map_run_and_asks_for_child_executions() -> None:
    definition = map_machine(Label="Run")
    step = start(definition, [1, 2])
    effect = children_of(step)
    assert (effect.distributed, effect.label, [c.input for c in effect.children]) == (True, "Run", [1, 2])
    assert types(step)[-2:] == ["MapStateStarted", "MapRunStarted"]
    arn = step.history[-1].details["mapRunArn"]
    assert arn.startswith("arn:aws:states:local:000000000000:mapRun:machine/Run:")
    done = resume(definition, step, ChildrenSucceeded([1, 2]))
    assert types(done) == ["MapRunSucceeded", "MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"]
    assert done.branch.output == [1, 2]
    failed = resume(definition, step, ChildrenFailed("States.ExceedToleratedFailureThreshold", "over"))
    assert types(failed) == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]


def test_an_inline_map_records_no_map_run() -> None:
    step = start(map_machine("INLINE"), [1])
    assert not children_of(step).distributed
    assert "MapRunStarted" not in types(step)


def test_the_root_branch_of_a_child_execution_owns_its_history() -> None:
    definition = map_machine()
    child = Branch(
        branch_id="exec-1@1/0",
        execution_id="child-1",
        container=("M", "items"),
        parent_id="exec-1",
        state_input={"x": 1},
        map_item={"Index": 0, "Value": {"x": 1}},
        execution_root=True,
    )
    step = interpreter(definition).start(child, NOW)
    assert types(step) == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]
    assert step.branch.status == SUCCEEDED
    inline = interpreter(definition).start(replace(child, execution_root=False), NOW)
    assert types(inline)[0] == "MapIterationStarted"


def test_inline_item_reader_needs_no_io() -> None:
    reader = {"ReaderConfig": {"InputType": "JSON", "MaxItems": 2}, "Parameters": {"Items.$": "$.list"}}
    step = start(map_machine(ItemReader=reader), {"list": ["a", "b", "c"]})
    assert [c.input for c in children_of(step).children] == ["a", "b"]
    literal = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": [{"k": 1}]}}
    selector = {"value.$": "$$.Map.Item.Value.k", "from.$": "$.origin"}
    step = start(map_machine(ItemReader=literal, ItemSelector=selector), {"origin": "o"})
    assert [c.input for c in children_of(step).children] == [{"value": 1, "from": "o"}]


def test_inline_item_reader_in_jsonata() -> None:
    definition = map_machine(
        ItemReader={"ReaderConfig": {}, "Arguments": {"Items": "{% $states.input.xs %}"}}
    )
    definition["QueryLanguage"] = "JSONata"
    step = start(definition, {"xs": [1, 2, 3]})
    assert [c.input for c in children_of(step).children] == [1, 2, 3]


def test_inline_items_that_are_not_an_array_fail_the_map() -> None:
    reader = {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items.$": "$.notalist"}}
    step = start(map_machine(ItemReader=reader), {"notalist": 3})
    assert (step.branch.status, step.branch.error) == (FAILED, "States.ItemReaderFailed")


def test_http_item_reader_asks_the_runtime_then_resumes() -> None:
    reader = {
        "Resource": HTTP,
        "ReaderConfig": {"InputType": "CSV", "MaxItemsPath": "$.max"},
        "Parameters": {"ApiEndpoint.$": "$.url", "Method": "GET"},
    }
    definition = map_machine(ItemReader=reader)
    step = start(definition, {"url": "http://items", "max": 2})
    (effect,) = step.effects
    assert isinstance(effect, ReadItems)
    assert (effect.resource, effect.parameters) == (HTTP, {"ApiEndpoint": "http://items", "Method": "GET"})
    assert effect.reader_config["InputType"] == "CSV"
    assert types(step) == ["ExecutionStarted", "MapStateEntered"]
    read = resume(definition, step, ItemsRead([{"a": "1"}, {"a": "2"}, {"a": "3"}]))
    assert [c.input for c in children_of(read).children] == [{"a": "1"}, {"a": "2"}]
    assert types(read) == ["MapStateStarted", "MapRunStarted"]
    failed = resume(definition, step, ItemsReadFailed("GET http://items answered with status 404"))
    assert (failed.branch.error, failed.branch.cause) == (
        "States.ItemReaderFailed",
        "GET http://items answered with status 404",
    )


def test_item_reader_failures_can_be_caught() -> None:
    reader = {"Resource": HTTP, "Parameters": {"ApiEndpoint": "http://x"}}
    definition = map_machine(ItemReader=reader)
    definition["States"]["M"]["Catch"] = [{"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Caught"}]
    del definition["States"]["M"]["End"]
    definition["States"]["M"]["Next"] = "Caught"
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    step = start(definition, {})
    caught = resume(definition, step, ItemsReadFailed("no"))
    assert caught.branch.output == {"Error": "States.ItemReaderFailed", "Cause": "no"}


CSV_GIVEN = {
    "InputType": "CSV",
    "CSVHeaderLocation": "GIVEN",
    "CSVHeaders": ["n", "a"],
    "CSVDelimiter": "PIPE",
}
ADA_BOB = [{"name": "ada", "age": "36"}, {"name": "bob", "age": ""}]


@pytest.mark.parametrize(
    ("body", "config", "items"),
    [
        (b'[1, {"a": 2}]', {"InputType": "JSON"}, [1, {"a": 2}]),
        (b'{"a": 1}\n\n[2]\n', {"InputType": "JSONL"}, [{"a": 1}, [2]]),
        (b"name,age\nada,36\nbob,\n", {"InputType": "CSV"}, ADA_BOB),
        (b"ada|36", CSV_GIVEN, [{"n": "ada", "a": "36"}]),
    ],
)
def test_parse_items(body: bytes, config: dict[str, Any], items: list[Any]) -> None:
    assert parse_items(body, config) == items


@pytest.mark.parametrize(
    ("body", "config"),
    [(b'{"a": 1}', {"InputType": "JSON"}), (b"x", {"InputType": "JSONL"}), (b"", {"InputType": "PARQUET"})],
)
def test_parse_items_rejects(body: bytes, config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_items(body, config)


def _issues(definition: dict[str, Any]) -> list[str]:
    return [issue.message for issue in validate_definition(definition)]


GET_X = {"ApiEndpoint": "http://x", "Method": "GET", "Headers": {"A": "b"}}
S3_CSV = {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": ["a"]}


@pytest.mark.parametrize(
    "reader",
    [
        {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": [1, 2]}},
        {"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items.$": "$.xs"}},
        {"Resource": HTTP, "ReaderConfig": {"InputType": "JSONL", "MaxItems": 5}, "Parameters": GET_X},
        {"Resource": HTTP, "ReaderConfig": {"InputType": "CSV"}, "Parameters": {"ApiEndpoint.$": "$.url"}},
        {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": S3_CSV, "Parameters": {"Key": "k"}},
        {"Resource": "arn:aws:states:::s3:listObjectsV2", "Parameters": {"Bucket": "b"}},
    ],
)
def test_validation_accepts_item_readers(reader: dict[str, Any]) -> None:
    assert _issues(map_machine(ItemReader=reader)) == []


ENDPOINT = {"ApiEndpoint": "x"}


@pytest.mark.parametrize(
    ("reader", "mode"),
    [
        ({"ReaderConfig": {"InputType": "JSON"}, "Parameters": {"Items": [1]}}, "INLINE"),
        ({"ReaderConfig": {"InputType": "JSON"}}, "DISTRIBUTED"),
        ({"Parameters": {"Items": 3}}, "DISTRIBUTED"),
        ({"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {}}, "DISTRIBUTED"),
        ({"Resource": HTTP, "Parameters": {"Method": "GET"}}, "DISTRIBUTED"),
        ({"Resource": HTTP, "ReaderConfig": {"InputType": "XML"}, "Parameters": ENDPOINT}, "DISTRIBUTED"),
        (
            {"Resource": HTTP, "ReaderConfig": {"CSVHeaderLocation": "GIVEN"}, "Parameters": ENDPOINT},
            "DISTRIBUTED",
        ),
        ({"Resource": HTTP, "ReaderConfig": {"MaxItems": -1}, "Parameters": ENDPOINT}, "DISTRIBUTED"),
        ({"Resource": HTTP, "Parameters": ENDPOINT, "Extra": 1}, "DISTRIBUTED"),
        ("not an object", "DISTRIBUTED"),
    ],
)
def test_validation_rejects_item_readers(reader: Any, mode: str) -> None:
    assert _issues(map_machine(mode, ItemReader=reader))
