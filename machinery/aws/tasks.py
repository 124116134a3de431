"""Task tokens (``SendTask*``), activities and ``GetActivityTask``, and tags."""

from __future__ import annotations

from typing import Any

from machinery.aws import paging
from machinery.aws.arns import parse, resource_key, state_machine_ref
from machinery.aws.errors import AwsError, resource_not_found
from machinery.aws.machines import machine_named
from machinery.aws.protocol import Call, action, read_json
from machinery.control import activities
from machinery.control import statemachines as sm
from machinery.control.names import name_problem
from machinery.engine.interpreter import decode_task_token
from machinery.errors import Conflict, NotFound

#: The longest GetActivityTask waits for a task, as on AWS.
ACTIVITY_POLL_SECONDS = 60.0


# task tokens ------------------------------------------------------------------------------------------


def _report(call: Call, token: str, outcome: dict[str, Any]) -> dict[str, Any]:
    if decode_task_token(token) is None:
        raise AwsError("InvalidToken", f"Invalid Token: '{token}'")
    try:
        call.orchestrator.report_task(token, outcome)
    except NotFound:
        raise AwsError("TaskDoesNotExist", "Task Does Not Exist") from None
    except Conflict:
        raise AwsError("TaskTimedOut", "Task Timed Out") from None
    return {}


@action("SendTaskSuccess")
def send_task_success(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    output = read_json(params["output"], "InvalidOutput", "Invalid Output: '{}'")
    return _report(call, params["taskToken"], {"output": output})


@action("SendTaskFailure")
def send_task_failure(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    outcome = {"error": params.get("error", ""), "cause": params.get("cause", "")}
    return _report(call, params["taskToken"], outcome)


@action("SendTaskHeartbeat")
def send_task_heartbeat(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return _report(call, params["taskToken"], {"heartbeat": True})


# activities -------------------------------------------------------------------------------------------


def _activity_name(arn: object) -> str:
    parsed = parse(arn, "activity")
    if len(parsed.parts) != 1:
        raise AwsError("InvalidArn", f"Invalid Arn: '{arn}'")
    return parsed.parts[0]


@action("CreateActivity")
def create_activity(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = params["name"]
    if name_problem(name) is not None:
        raise AwsError("InvalidName", f"Invalid Name: '{name}'")
    storage = call.orchestrator.storage
    activity, _created = activities.create_activity(storage, name)
    arn = call.scope.activity(name)
    if params.get("tags"):
        _tag(call, arn, params["tags"])
    return {"activityArn": arn, "creationDate": activity.created_at}


@action("DescribeActivity")
def describe_activity(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["activityArn"]
    activity = activities.find_activity(call.orchestrator.storage, _activity_name(arn))
    if activity is None:
        raise AwsError("ActivityDoesNotExist", f"Activity Does Not Exist: '{arn}'")
    return {
        "activityArn": call.scope.activity(activity.name),
        "name": activity.name,
        "creationDate": activity.created_at,
    }


@action("DeleteActivity")
def delete_activity(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["activityArn"]
    activities.delete_activity(call.orchestrator.storage, _activity_name(arn))
    call.orchestrator.storage.delete_resource(sm.TAGS, resource_key(call.scope.activity(_activity_name(arn))))
    return {}


@action("ListActivities")
def list_activities(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``ListActivities`` action."""
    found = activities.list_activities(call.orchestrator.storage)
    chosen, token = paging.page("ListActivities", found, [a.name for a in found], params)
    answer: dict[str, Any] = {
        "activities": [
            {"activityArn": call.scope.activity(a.name), "name": a.name, "creationDate": a.created_at}
            for a in chosen
        ]
    }
    if token is not None:
        answer["nextToken"] = token
    return answer


@action("GetActivityTask")
def get_activity_task(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["activityArn"]
    name = _activity_name(arn)
    storage = call.orchestrator.storage
    if activities.find_activity(storage, name) is None:
        raise AwsError("ActivityDoesNotExist", f"Activity Does Not Exist: '{arn}'")
    wait = float(call.config.get("ACTIVITY_POLL_SECONDS", ACTIVITY_POLL_SECONDS))
    task = activities.take_task(storage, call.orchestrator.notifier, name, wait)
    if task is None:
        return {}  # no task within the poll: a null token, as AWS answers
    return {"taskToken": task.token, "input": task.input}


# tags -------------------------------------------------------------------------------------------------


def _tagged_resource(call: Call, arn: object) -> str:
    """The key tags are kept under; ``ResourceNotFound`` unless the state machine or activity exists."""
    parsed = parse(arn, "stateMachine", "activity")
    storage = call.orchestrator.storage
    if parsed.kind == "activity":
        if len(parsed.parts) != 1 or activities.find_activity(storage, parsed.parts[0]) is None:
            raise resource_not_found(str(arn))
        return resource_key(str(arn))
    ref = state_machine_ref(arn)
    workflow = machine_named(call, ref.name)
    if workflow is None:
        raise resource_not_found(str(arn))
    if ref.alias is not None and sm.find_alias(storage, workflow.workflow_id, ref.alias) is None:
        raise resource_not_found(str(arn))
    if ref.version is not None and sm.published_version(storage, workflow.workflow_id, ref.version) is None:
        raise resource_not_found(str(arn))
    return resource_key(str(arn))


def _tag(call: Call, arn: str, tags: list[dict[str, str]]) -> None:
    try:
        sm.tag(call.orchestrator.storage, resource_key(arn), {t["key"]: t.get("value", "") for t in tags})
    except Conflict as error:
        raise AwsError("TooManyTags", error.message, resourceName=arn) from None


@action("TagResource")
def tag_resource(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _tagged_resource(call, params["resourceArn"])
    _tag(call, params["resourceArn"], params["tags"])
    return {}


@action("UntagResource")
def untag_resource(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    key = _tagged_resource(call, params["resourceArn"])
    sm.untag(call.orchestrator.storage, key, params["tagKeys"])
    return {}


@action("ListTagsForResource")
def list_tags_for_resource(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    key = _tagged_resource(call, params["resourceArn"])
    found = sm.tags(call.orchestrator.storage, key)
    return {"tags": [{"key": k, "value": v} for k, v in sorted(found.items())]}
