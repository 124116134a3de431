"""ItemBatcher runs: a distributed Map's children get batches of items, ``{"Items": [...]}`` plus
``BatchInput``, sized by ``MaxItemsPerBatch``/``MaxInputBytesPerBatch`` or their Path forms."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from machinery.asl.errors import StatesError
from machinery.asl.validation import validate_definition
from machinery.engine.dataflow import BatcherSpec, batch_inputs


def test_batches_by_count() -> None:
    assert batch_inputs([1, 2, 3, 4, 5], BatcherSpec(2, None)) == [
        {"Items": [1, 2]}, {"Items": [3, 4]}, {"Items": [5]},
    ]  # fmt: skip


def test_batches_by_bytes_with_batch_input() -> None:
    items = ["aaaa", "bbbb", "cccc"]
    # {"BatchInput":{"k":1},"Items":["aaaa","bbbb"]} is 46 bytes; a third item would make it 53.
    batches = batch_inputs(items, BatcherSpec(None, 46, {"k": 1}))
    assert batches == [
        {"BatchInput": {"k": 1}, "Items": ["aaaa", "bbbb"]},
        {"BatchInput": {"k": 1}, "Items": ["cccc"]},
    ]


def test_an_item_larger_than_a_batch_fails() -> None:
    with pytest.raises(StatesError) as caught:
        batch_inputs(["x" * 100], BatcherSpec(None, 50))
    assert caught.value.error == "States.Runtime" and "index 0" in caught.value.cause


def distributed(batcher: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemBatcher": batcher,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                **extra,
                "End": True,
            }
        },
    }


def test_a_distributed_map_runs_batches(live_client: FlaskClient) -> None:
    definition = distributed(
        {"MaxItemsPerBatchPath": "$.size", "BatchInput": {"job.$": "$.job"}}, ItemsPath="$.items"
    )
    assert live_client.post("/w", json={"name": "batched", "definition": definition}).status_code == 201
    event = live_client.post(
        "/e/batched?wait=10", json={"size": 2, "job": "j1", "items": [1, 2, 3]}
    ).get_json()
    assert event["status"] == "SUCCEEDED", event
    assert event["output"] == [
        {"BatchInput": {"job": "j1"}, "Items": [1, 2]},
        {"BatchInput": {"job": "j1"}, "Items": [3]},
    ]
    children = live_client.get(f"/e?parent={event['event_id']}").get_json()["events"]
    assert len(children) == 2


@pytest.mark.parametrize("size", [0, -1, "two", 1.5])
def test_a_path_to_an_invalid_batch_size_fails_with_states_runtime(
    live_client: FlaskClient, size: Any
) -> None:
    definition = distributed({"MaxItemsPerBatchPath": "$.size"}, ItemsPath="$.items")
    live_client.post("/w", json={"name": "bad-batch", "definition": definition})
    event = live_client.post("/e/bad-batch?wait=10", json={"size": size, "items": [1, 2]}).get_json()
    assert event["status"] == "FAILED" and event["error"] == "States.Runtime"
    assert "MaxItemsPerBatchPath" in event["cause"] and "$.size" in event["cause"]


@pytest.mark.parametrize(("path", "value"), [("MaxConcurrencyPath", -1), ("ToleratedFailureCountPath", -2)])
def test_paths_to_negative_counts_fail_with_states_runtime(
    live_client: FlaskClient, path: str, value: int
) -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                path: "$.n",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    live_client.post("/w", json={"name": "neg", "definition": definition})
    event = live_client.post("/e/neg?wait=10", json={"n": value, "items": [1]}).get_json()
    assert event["status"] == "FAILED" and event["error"] == "States.Runtime"
    assert event["cause"].endswith(
        f'The {path} field refers to value "{value}" which is not a valid integer (at least 0): $.n'
    )


def test_item_batcher_validation() -> None:
    inline = distributed({"MaxItemsPerBatch": 2})
    inline["States"]["Each"]["ItemProcessor"].pop("ProcessorConfig")
    assert [i.path for i in validate_definition(inline)] == ["/States/Each/ItemBatcher"]
    assert [i.path for i in validate_definition(distributed({}))] == ["/States/Each/ItemBatcher"]
    too_big = validate_definition(distributed({"MaxInputBytesPerBatch": 262145}))
    assert [i.path for i in too_big] == ["/States/Each/ItemBatcher/MaxInputBytesPerBatch"]
    both = validate_definition(distributed({"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.n"}))
    assert len(both) == 1
    assert validate_definition(distributed({"MaxItemsPerBatch": 2, "Other": 1}))[0].path.endswith("Other")
    assert validate_definition(distributed({"MaxItemsPerBatch": 2, "BatchInput": {"a": 1}})) == []
