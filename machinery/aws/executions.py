"""Executions: start (asynchronous and synchronous), describe, stop, list and read their history."""

from __future__ import annotations

import time
from typing import Any

from machinery.aws import paging
from machinery.aws.arns import Scope, parse
from machinery.aws.errors import AwsError, execution_does_not_exist, invalid_arn, validation
from machinery.aws.machines import (
    default_role,
    definition_of,
    find_machine,
    pinned,
)
from machinery.aws.maprun import child_ids, map_run_arn, run_of_child
from machinery.aws.model import service_model
from machinery.aws.protocol import Call, action, read_json
from machinery.control import statemachines as sm
from machinery.control.events import EventRequest, ExecutionNameTaken
from machinery.control.names import name_problem
from machinery.control.redrive import NotRedrivable, redrive_status
from machinery.errors import NotFound
from machinery.jsontext import dumps_compact
from machinery.runtime.starts import named_execution_id
from machinery.shapes import details_key
from machinery.status import TERMINAL_STATUSES, ExecutionStatus
from machinery.storage.base import ExecutionRecord, StoredEvent, new_id

#: Resources that make RedriveExecution idempotent per client token.
REDRIVE_TOKEN = "redrive-token"
#: How long StartSyncExecution waits: the longest an express execution may run on AWS.
SYNC_LIMIT_SECONDS = 300.0


# ARNs of executions -----------------------------------------------------------------------------------


def execution_arn(scope: Scope, record: ExecutionRecord) -> str:
    if record.express:
        return scope.express_execution(record.workflow_name, record.name, record.execution_id)
    if record.parent_execution_id is not None:
        # A distributed Map's child: "<parent name>/<label>/<index>" in machinery, as AWS names it by label.
        parts = record.name.split("/")
        label = parts[-2] if len(parts) >= 3 else "Map"
        return scope.arn(f"execution:{record.workflow_name}/{label}:{record.execution_id}")
    return scope.execution(record.workflow_name, record.name)


def find_execution(call: Call, arn: object) -> ExecutionRecord:
    """The execution an ARN names; ``ExecutionDoesNotExist`` when none."""
    parsed = parse(arn, "execution", "express")
    orchestrator = call.orchestrator
    record: ExecutionRecord | None = None
    try:
        if parsed.kind == "express":
            if len(parsed.parts) != 3:
                raise invalid_arn(arn)
            record = orchestrator.get_event(parsed.parts[2])
        else:
            if len(parsed.parts) != 2:
                raise invalid_arn(arn)
            machine, name = parsed.parts
            if "/" in machine:
                record = orchestrator.get_event(name)
            else:
                record = orchestrator.storage.find_execution(machine, name)
                if record is None:
                    candidate = orchestrator.get_event(name)
                    record = candidate if candidate.workflow_name == machine else None
    except NotFound:
        record = None
    if record is None or execution_arn(call.scope, record) != _normalised(call.scope, str(arn)):
        raise execution_does_not_exist(str(arn))
    return record


def _normalised(scope: Scope, arn: str) -> str:
    """The ARN with this request's region and account (one world: an ARN is found by its names)."""
    return scope.arn(arn.split(":", 5)[5])


# records ----------------------------------------------------------------------------------------------


def _origin_arns(call: Call, record: ExecutionRecord) -> dict[str, str]:
    origin = sm.execution_origin(call.orchestrator.storage, record.execution_id)
    found: dict[str, str] = {}
    if origin.version is not None:
        found["stateMachineVersionArn"] = call.scope.version(record.workflow_name, origin.version)
    if origin.alias is not None:
        found["stateMachineAliasArn"] = call.scope.alias(record.workflow_name, origin.alias)
    return found


def _map_run_arn(call: Call, record: ExecutionRecord) -> str | None:
    found = run_of_child(call.orchestrator.storage, record)
    if found is None:
        return None
    run_id, body = found
    return map_run_arn(call.scope, record.workflow_name, body, run_id)


def _summary(call: Call, record: ExecutionRecord) -> dict[str, Any]:
    """What DescribeExecution and ListExecutions both say of an execution."""
    summary: dict[str, Any] = {
        "executionArn": execution_arn(call.scope, record),
        "stateMachineArn": call.scope.state_machine(record.workflow_name),
        "name": record.name,
        "status": record.status,
        "startDate": record.started_at,
    }
    if record.finished_at is not None:
        summary["stopDate"] = record.finished_at
    map_run = _map_run_arn(call, record)
    if map_run is not None:
        summary["mapRunArn"] = map_run
    summary.update(_origin_arns(call, record))
    return summary


def describe(call: Call, record: ExecutionRecord, with_data: bool = True) -> dict[str, Any]:
    """An execution as ``DescribeExecution`` answers it (``with_data``: its input and output too)."""
    answer = _summary(call, record)
    if with_data:
        answer["input"] = dumps_compact(record.input)
        answer["inputDetails"] = {"included": True}
        if record.status == ExecutionStatus.SUCCEEDED:
            answer["output"] = dumps_compact(record.output)
            answer["outputDetails"] = {"included": True}
    else:
        answer["inputDetails"] = {"included": False}
    if record.status in TERMINAL_STATUSES and record.status != ExecutionStatus.SUCCEEDED:
        if record.error is not None:
            answer["error"] = record.error
        if record.cause is not None:
            answer["cause"] = record.cause
    answer.update(redrive_fields(call, record))
    return answer


def redrive_fields(call: Call, record: ExecutionRecord) -> dict[str, Any]:
    """``redriveCount``, ``redriveDate``, ``redriveStatus`` (and its reason) as AWS reports them."""
    status, reason = redrive_status(record, call.orchestrator.redrive_days)
    answer: dict[str, Any] = {"redriveCount": record.redrive_count, "redriveStatus": status}
    if reason:
        answer["redriveStatusReason"] = reason
    if record.redrive_date is not None:
        answer["redriveDate"] = record.redrive_date
    return answer


# starting ---------------------------------------------------------------------------------------------


def _start_request(params: dict[str, Any]) -> EventRequest:
    name = params.get("name")
    if name is not None and name_problem(name) is not None:
        raise AwsError("InvalidName", f"Invalid Name: '{name}'")
    text = params.get("input", "{}")
    data = read_json(text, "InvalidExecutionInput", "Invalid State Machine Execution Input: '{}'")
    return EventRequest(data, None, name)


def _start(call: Call, params: dict[str, Any], sync: bool) -> ExecutionRecord:
    arn = params["stateMachineArn"]
    workflow, ref = find_machine(call, arn)
    storage = call.orchestrator.storage
    body = storage.get_resource(sm.MACHINE, workflow.workflow_id)
    if body is not None and body.get("deleting"):
        raise AwsError("StateMachineDeleting", f"State Machine is being deleted: '{arn}'")
    if sync and not workflow.express:
        raise AwsError(
            "StateMachineTypeNotSupported", "This operation is not supported by this type of state machine"
        )
    revision, origin = pinned(call, workflow, ref, arn)
    request = _start_request(params)
    if workflow.express or request.name is None:
        # Nothing to be idempotent about: express executions are not, and an unnamed one is named by
        # its new id.
        execution_id = new_id()
        sm.save_execution_origin(storage, execution_id, origin)
        if request.name is None:
            request = EventRequest(request.data, None, execution_id)
        return call.orchestrator.start_execution(revision, request, execution_id)
    # A named execution's id is derived from the state machine and the name: the origin is recorded
    # under it before the execution exists (a repeated start leaves the original's as it is).
    execution_id = named_execution_id(revision.workflow_id, str(request.name))
    saved = sm.save_execution_origin(storage, execution_id, origin)
    try:
        record, created = call.orchestrator.start_named(revision, request)
    except ExecutionNameTaken as taken:
        if saved and taken.data.get("execution_id") != execution_id:
            storage.delete_resource(sm.EXECUTION, execution_id)
        raise AwsError(
            "ExecutionAlreadyExists",
            f"Execution Already Exists: '{call.scope.execution(workflow.name, str(request.name))}'",
        ) from None
    if not created and saved and record.execution_id != execution_id:
        storage.delete_resource(sm.EXECUTION, execution_id)
    return record


@action("StartExecution")
def start_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    record = _start(call, params, sync=False)
    return {"executionArn": execution_arn(call.scope, record), "startDate": record.started_at}


@action("StartSyncExecution")
def start_sync_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``StartSyncExecution`` action."""
    record = _start(call, params, sync=True)
    record = call.orchestrator.wait_event(record.execution_id, SYNC_LIMIT_SECONDS)
    answer = describe(call, record, params.get("includedData") != "METADATA_ONLY")
    for key in ("mapRunArn", "redriveCount", "redriveStatus", "redriveStatusReason", "redriveDate"):
        answer.pop(key, None)
    answer.pop("stateMachineVersionArn", None)
    answer.pop("stateMachineAliasArn", None)
    answer["billingDetails"] = {
        "billedMemoryUsedInMB": 64,
        "billedDurationInMilliseconds": int(((record.finished_at or time.time()) - record.started_at) * 1000),
    }
    return answer


# reading ----------------------------------------------------------------------------------------------


@action("DescribeExecution")
def describe_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    record = find_execution(call, params["executionArn"])
    return describe(call, record, params.get("includedData") != "METADATA_ONLY")


@action("DescribeStateMachineForExecution")
def describe_state_machine_for_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DescribeStateMachineForExecution`` action."""
    record = find_execution(call, params["executionArn"])
    storage = call.orchestrator.storage
    workflow = storage.get_workflow(record.workflow_id, record.workflow_version)
    if workflow is None:
        raise execution_does_not_exist(params["executionArn"])
    settings = sm.machine_settings(storage, workflow, default_role(call))
    answer: dict[str, Any] = {
        "stateMachineArn": call.scope.state_machine(record.workflow_name),
        "name": record.workflow_name,
        "definition": definition_of(call, workflow),
        "roleArn": settings.role_arn,
        "updateDate": workflow.created_at,
        "loggingConfiguration": settings.logging,
        "tracingConfiguration": settings.tracing,
        "revisionId": str(workflow.version),
    }
    map_run = _map_run_arn(call, record)
    if map_run is not None:
        answer["mapRunArn"] = map_run
        answer["label"] = map_run.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return answer


@action("StopExecution")
def stop_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``StopExecution`` action."""
    record = find_execution(call, params["executionArn"])
    if record.status == ExecutionStatus.RUNNING:
        try:
            record = call.orchestrator.stop_event(
                record.execution_id, params.get("error"), params.get("cause")
            )
        except Exception as error:  # finished meanwhile: reported as it ended
            if not isinstance(error, NotFound) and getattr(error, "status", None) != 409:
                raise
            record = call.orchestrator.get_event(record.execution_id)
    return {"stopDate": record.finished_at or time.time()}


_LIST_BATCH = 200


@action("ListExecutions")
def list_executions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``ListExecutions`` action."""
    storage = call.orchestrator.storage
    machine_arn, map_run_arn = params.get("stateMachineArn"), params.get("mapRunArn")  # pylint: disable=redefined-outer-name
    if (machine_arn is None) == (map_run_arn is None):
        raise validation(
            "Exactly one of stateMachineArn and mapRunArn must be given", "MISSING_REQUIRED_PARAMETER"
        )
    status = params.get("statusFilter")
    if status == "PENDING_REDRIVE":
        return {"executions": []}
    version: int | None = None
    alias: str | None = None
    parent: str | None = None
    run_ids: set[str] | None = None
    if machine_arn is not None:
        workflow, ref = find_machine(call, machine_arn)
        workflow_id: str | None = workflow.workflow_id
        version, alias = ref.version, ref.alias
    else:
        run = parse(map_run_arn, "mapRun")
        body = storage.get_resource("map-run", run.parts[-1])
        if body is None:
            raise AwsError(
                "ResourceNotFound", f"Map Run not found: '{map_run_arn}'", resourceName=str(map_run_arn)
            )
        workflow_id, parent, run_ids = None, str(body["execution_id"]), child_ids(body)
    size = paging.page_size(params)
    cursor = paging.decode("ListExecutions", params.get("nextToken"))
    after = None if cursor is None else str(cursor["after"])
    redriven = params.get("redriveFilter")
    found: list[ExecutionRecord] = []
    more = False
    while True:
        batch = storage.list_executions(workflow_id, status, _LIST_BATCH, after, parent)
        for record in batch:
            if _listed(call, record, version, alias, run_ids, redriven):
                if len(found) == size:
                    more = True
                    break
                found.append(record)
        if more or len(batch) < _LIST_BATCH:
            break
        after = batch[-1].execution_id
    items = [_list_item(call, record) for record in found]
    answer: dict[str, Any] = {"executions": items}
    if more:
        answer["nextToken"] = paging.encode("ListExecutions", {"after": found[-1].execution_id})
    return answer


def _listed(
    call: Call,
    record: ExecutionRecord,
    version: int | None,
    alias: str | None,
    run: set[str] | None,
    redriven: str | None,
) -> bool:
    if redriven == "REDRIVEN" and record.redrive_count == 0:
        return False
    if redriven == "NOT_REDRIVEN" and record.redrive_count > 0:
        return False
    if run is not None:
        return record.execution_id in run
    if version is None and alias is None:
        return True
    origin = sm.execution_origin(call.orchestrator.storage, record.execution_id)
    return (version is None or origin.version == version) and (alias is None or origin.alias == alias)


def _list_item(call: Call, record: ExecutionRecord) -> dict[str, Any]:
    item = _summary(call, record)
    if record.redrive_count:
        item["redriveCount"] = record.redrive_count
        if record.redrive_date is not None:
            item["redriveDate"] = record.redrive_date
    return item


# history ----------------------------------------------------------------------------------------------

_DATA_FIELDS = frozenset({"input", "inputDetails", "output", "outputDetails", "parameters"})


def _details_members() -> dict[str, frozenset[str]]:
    shape = service_model().shape_for("HistoryEvent")
    return {
        name: frozenset(member.members)  # type: ignore[attr-defined]
        for name, member in shape.members.items()  # type: ignore[attr-defined]
        if name.endswith("EventDetails")
    }


_DETAILS = _details_members()


#: How ARNs inside an execution (``$$.Execution.Id``, a map run's ARN) begin: the engine's own region
#: and account; the AWS API shows them with the request's.
ENGINE_ARN_PREFIX = "arn:aws:states:local:000000000000:"


def history_event(
    event: StoredEvent, with_data: bool, scope: Scope, started: dict[str, Any]
) -> dict[str, Any]:
    """One history event as AWS shows it; ``started`` is added to ``ExecutionStarted``'s details."""
    rendered: dict[str, Any] = {
        "timestamp": event.timestamp,
        "type": event.type,
        "id": event.event_id,
        "previousEventId": event.event_id - 1,
    }
    key = details_key(event.type)
    members = _DETAILS.get(key)
    if members is not None:
        details: dict[str, Any] = {}
        for name, value in event.details.items():
            if name not in members or (not with_data and name in _DATA_FIELDS):
                continue
            if isinstance(value, str) and value.startswith(ENGINE_ARN_PREFIX):
                value = scope.arn(value.removeprefix(ENGINE_ARN_PREFIX))
            details[name] = value
        if event.type == "ExecutionStarted":
            details.update(started)
        rendered[key] = details
    return rendered


@action("GetExecutionHistory")
def get_execution_history(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``GetExecutionHistory`` action."""
    record = find_execution(call, params["executionArn"])
    reverse = bool(params.get("reverseOrder", False))
    cursor = paging.decode("GetExecutionHistory", params.get("nextToken"))
    after = None
    if cursor is not None:
        if cursor.get("execution") != record.execution_id or cursor.get("reverse") != reverse:
            raise AwsError("InvalidToken", f"Invalid Token: '{params['nextToken']}'")
        after = int(cursor["after"])
    events, next_cursor = call.orchestrator.history(
        record.execution_id, after, paging.page_size(params), reverse
    )
    with_data = params.get("includeExecutionData", True) is not False
    storage = call.orchestrator.storage
    workflow = storage.get_workflow(record.workflow_id, record.workflow_version)
    started: dict[str, Any] = dict(_origin_arns(call, record))
    if workflow is not None:
        started["roleArn"] = sm.machine_settings(storage, workflow, default_role(call)).role_arn
    answer: dict[str, Any] = {
        "events": [history_event(event, with_data, call.scope, started) for event in events]
    }
    if next_cursor is not None:
        answer["nextToken"] = paging.encode(
            "GetExecutionHistory",
            {"execution": record.execution_id, "reverse": reverse, "after": next_cursor},
        )
    return answer


# redrive ----------------------------------------------------------------------------------------------


@action("RedriveExecution")
def redrive_execution(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``RedriveExecution`` action."""
    record = find_execution(call, params["executionArn"])
    storage = call.orchestrator.storage
    token = params.get("clientToken")
    token_key = f"{record.execution_id}/{token}"
    if token is not None:
        seen = storage.get_resource(REDRIVE_TOKEN, token_key)
        if seen is not None:
            return {"redriveDate": seen["redrive_date"]}
    try:
        redriven = call.orchestrator.redrive_event(record.execution_id)
    except NotRedrivable as error:
        raise AwsError("ExecutionNotRedrivable", error.message) from None
    if token is not None:
        storage.put_resource(REDRIVE_TOKEN, token_key, {"redrive_date": redriven.redrive_date})
    return {"redriveDate": redriven.redrive_date}
