"""Map runs: the child executions of a distributed Map (DescribeMapRun, ListMapRuns, UpdateMapRun)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

from machinery.aws import paging
from machinery.aws.arns import Scope, parse
from machinery.aws.errors import resource_not_found, validation
from machinery.aws.protocol import Call, action
from machinery.status import ExecutionStatus
from machinery.storage.base import MAP_RUN, ExecutionRecord, JoinState, Storage

_PAGE = 1000


def _run(call: Call, arn: object) -> tuple[str, dict[str, Any]]:
    parsed = parse(arn, "mapRun")
    body = call.orchestrator.storage.get_resource(MAP_RUN, parsed.parts[-1])
    if body is None:
        raise resource_not_found(str(arn), "Map Run")
    return parsed.parts[-1], body


def map_run_arn(scope: Scope, machine: str, body: dict[str, Any], run_id: str) -> str:
    return scope.map_run(machine, str(body["label"]), run_id)


def child_ids(body: dict[str, Any]) -> set[str]:
    """The ids of a map run's child executions (the worker derives them from the join the same way)."""
    join_id = body["join_id"]
    return {
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"machinery:{join_id}/{i}")) for i in range(int(body["total"]))
    }


def children(storage: Storage, body: dict[str, Any]) -> list[ExecutionRecord]:
    wanted = child_ids(body)
    found: list[ExecutionRecord] = []
    after: str | None = None
    while True:
        page = storage.list_executions(None, None, _PAGE, after, str(body["execution_id"]))
        found.extend(record for record in page if record.execution_id in wanted)
        if len(page) < _PAGE:
            return found
        after = page[-1].execution_id


def run_of_child(storage: Storage, record: ExecutionRecord) -> tuple[str, dict[str, Any]] | None:
    """The map run a child execution belongs to (its name is ``<parent>/<label>/<index>``)."""
    if record.parent_execution_id is None:
        return None
    parts = record.name.rsplit("/", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    for event in storage.get_history(record.parent_execution_id):
        if event.type != "MapRunStarted":
            continue
        run_id = str(event.details.get("mapRunArn", "")).rsplit(":", 1)[-1]
        body = storage.get_resource(MAP_RUN, run_id)
        if body is None:
            continue
        expected = uuid.uuid5(uuid.NAMESPACE_URL, f"machinery:{body['join_id']}/{parts[2]}")
        if str(expected) == record.execution_id:
            return run_id, body
    return None


def _status(join: JoinState, parent: ExecutionRecord) -> str:
    spec = join.spec
    if not join.closed:
        return "RUNNING" if parent.status == ExecutionStatus.RUNNING else "ABORTED"
    tolerated = spec.tolerated_failure_count > 0 or spec.tolerated_failure_percentage > 0
    over = join.failed > spec.tolerated_failure_count and (
        spec.total == 0 or join.failed * 100.0 / spec.total > spec.tolerated_failure_percentage
    )
    failed = join.failed > 0 and (not tolerated or over)
    return "FAILED" if failed else "SUCCEEDED"


def _counts(records: list[ExecutionRecord], join: JoinState, body: dict[str, Any]) -> dict[str, int]:
    by_status = Counter(record.status for record in records)
    total = int(body["total"])
    pending = max(0, total - join.started)
    return {
        "pending": pending,
        "running": max(0, by_status[ExecutionStatus.RUNNING] - pending),
        "succeeded": by_status[ExecutionStatus.SUCCEEDED],
        "failed": by_status[ExecutionStatus.FAILED],
        "timedOut": by_status[ExecutionStatus.TIMED_OUT],
        "aborted": by_status[ExecutionStatus.ABORTED],
        "total": total,
        "resultsWritten": 0,
    }


@action("DescribeMapRun")
def describe_map_run(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DescribeMapRun`` action."""
    from machinery.aws.executions import execution_arn

    run_id, body = _run(call, params["mapRunArn"])
    storage = call.orchestrator.storage
    parent = storage.get_execution(str(body["execution_id"]))
    join = storage.get_join(str(body["join_id"]))
    if parent is None or join is None:
        raise resource_not_found(params["mapRunArn"], "Map Run")
    records = children(storage, body)
    counts = _counts(records, join, body)
    answer: dict[str, Any] = {
        "mapRunArn": map_run_arn(call.scope, parent.workflow_name, body, run_id),
        "executionArn": execution_arn(call.scope, parent),
        "status": _status(join, parent),
        "startDate": body["started_at"],
        "maxConcurrency": join.spec.max_concurrency,
        "toleratedFailurePercentage": join.spec.tolerated_failure_percentage,
        "toleratedFailureCount": join.spec.tolerated_failure_count,
        "itemCounts": counts,
        "executionCounts": dict(counts),
    }
    ends = [r.finished_at for r in records if r.finished_at is not None]
    if answer["status"] != "RUNNING" and ends:
        answer["stopDate"] = max(ends)
    return answer


@action("ListMapRuns")
def list_map_runs(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``ListMapRuns`` action."""
    from machinery.aws.executions import execution_arn, find_execution

    record = find_execution(call, params["executionArn"])
    storage = call.orchestrator.storage
    runs = []
    for event in storage.get_history(record.execution_id):
        if event.type == "MapRunStarted":
            run_id = str(event.details.get("mapRunArn", "")).rsplit(":", 1)[-1]
            body = storage.get_resource(MAP_RUN, run_id)
            if body is not None:
                runs.append((run_id, body))
    chosen, token = paging.page(
        "ListMapRuns", runs, [f"{b['started_at']:020.6f}{r}" for r, b in runs], params
    )
    items = []
    for run_id, body in chosen:
        item: dict[str, Any] = {
            "executionArn": execution_arn(call.scope, record),
            "mapRunArn": map_run_arn(call.scope, record.workflow_name, body, run_id),
            "stateMachineArn": call.scope.state_machine(record.workflow_name),
            "startDate": body["started_at"],
        }
        join = storage.get_join(str(body["join_id"]))
        if join is not None and join.closed and record.finished_at is not None:
            item["stopDate"] = record.finished_at
        items.append(item)
    answer: dict[str, Any] = {"mapRuns": items}
    if token is not None:
        answer["nextToken"] = token
    return answer


@action("UpdateMapRun")
def update_map_run(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``UpdateMapRun`` action."""
    _run_id, body = _run(call, params["mapRunArn"])
    changes = ("maxConcurrency", "toleratedFailurePercentage", "toleratedFailureCount")
    if not any(key in params for key in changes):
        raise validation(
            "At least one of maxConcurrency, toleratedFailurePercentage or toleratedFailureCount is required",
            "MISSING_REQUIRED_PARAMETER",
        )
    storage = call.orchestrator.storage
    join = storage.get_join(str(body["join_id"]))
    if join is None or join.closed:
        raise validation("Map Run is completed and cannot be updated", "CANNOT_UPDATE_COMPLETED_MAP_RUN")
    spec = join.spec
    updated = storage.update_join_limits(
        spec.join_id,
        int(params.get("maxConcurrency", spec.max_concurrency)),
        int(params.get("toleratedFailureCount", spec.tolerated_failure_count)),
        float(params.get("toleratedFailurePercentage", spec.tolerated_failure_percentage)),
        time.time(),
    )
    if not updated:
        raise validation("Map Run is completed and cannot be updated", "CANNOT_UPDATE_COMPLETED_MAP_RUN")
    if call.orchestrator.worker is not None:
        call.orchestrator.worker.wake()
    return {}
