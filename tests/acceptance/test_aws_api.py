"""The AWS Step Functions API with boto3 (botocore's own serialisation and parameter validation) against
a real ``machinery serve``: every supported action, every error the API names, and one world with the
native API."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.aws_helpers import (
    ACCOUNT,
    REGION,
    ROLE,
    FlakyService,
    aws_server,
    key,
    sfn_client,
    wait_until_done,
)

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
ARN = f"arn:aws:states:{REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # TIME_SCALE=1 here: the Wait states of these tests must really wait.
    settings = {"MACHINERY_TIME_SCALE": "1", "MACHINERY_ACTIVITY_POLL_SECONDS": "1"}
    with aws_server(tmp_path_factory.mktemp("aws"), settings) as url:
        yield url


@pytest.fixture(scope="module")
def sfn(server: str) -> Any:
    return sfn_client(server)


@pytest.fixture
def flaky() -> Iterator[FlakyService]:
    service = FlakyService()
    yield service
    service.close()


_names = iter(range(1, 1_000_000))


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def create(sfn: Any, definition: dict[str, Any], name: str | None = None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = sfn.create_state_machine(
        name=name or unique("sm"), definition=json.dumps(definition), roleArn=ROLE, **extra
    )
    return found


def error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Code"], response["Error"]["Message"]


# state machines ---------------------------------------------------------------------------------------


def test_create_describe_update_delete(sfn: Any, server: str) -> None:
    name = unique("orders")
    created = create(
        sfn, PASS, name, publish=True, versionDescription="first", tags=[{"key": "team", "value": "a"}]
    )
    arn = created["stateMachineArn"]
    assert arn == f"{ARN}:stateMachine:{name}"
    assert created["stateMachineVersionArn"] == f"{arn}:1"
    described = sfn.describe_state_machine(stateMachineArn=arn)
    assert described["name"] == name and described["status"] == "ACTIVE" and described["type"] == "STANDARD"
    assert json.loads(described["definition"]) == PASS and described["roleArn"] == ROLE
    assert described["loggingConfiguration"]["level"] == "OFF"
    version = sfn.describe_state_machine(stateMachineArn=f"{arn}:1")
    assert version["description"] == "first" and version["stateMachineArn"] == f"{arn}:1"
    # The native API sees the same workflow.
    native = json.loads(urllib.request.urlopen(f"{server}/w/{name}").read())
    assert native["definition"] == PASS
    changed = {**PASS, "Comment": "v2"}
    updated = sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(changed), publish=True)
    assert (
        updated["stateMachineVersionArn"] == f"{arn}:2" and updated["revisionId"] != described["revisionId"]
    )
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == changed
    assert json.loads(sfn.describe_state_machine(stateMachineArn=f"{arn}:1")["definition"]) == PASS
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "a"}]
    sfn.delete_state_machine(stateMachineArn=arn)
    assert error(lambda: sfn.describe_state_machine(stateMachineArn=arn))[0] == "StateMachineDoesNotExist"
    sfn.delete_state_machine(stateMachineArn=arn)  # deleting what does not exist succeeds, as on AWS


def test_create_is_idempotent_and_names_are_unique(sfn: Any) -> None:
    name = unique("same")
    first = create(sfn, PASS, name)
    again = create(sfn, PASS, name)
    assert (
        again["stateMachineArn"] == first["stateMachineArn"]
        and again["creationDate"] == first["creationDate"]
    )
    code, message = error(lambda: create(sfn, {**PASS, "Comment": "other"}, name))
    assert code == "StateMachineAlreadyExists" and first["stateMachineArn"] in message


def test_list_state_machines_pages(sfn: Any) -> None:
    names = {create(sfn, PASS, unique("listed"))["stateMachineArn"] for _ in range(3)}
    pages = list(sfn.get_paginator("list_state_machines").paginate(PaginationConfig={"PageSize": 2}))
    assert all(len(page["stateMachines"]) <= 2 for page in pages) and len(pages) >= 2
    listed = [m["stateMachineArn"] for page in pages for m in page["stateMachines"]]
    assert names <= set(listed) and len(listed) == len(set(listed))
    assert "nextToken" not in pages[-1]


def test_express_machines_run_synchronously(sfn: Any) -> None:
    arn = create(sfn, PASS, type="EXPRESS")["stateMachineArn"]
    assert sfn.describe_state_machine(stateMachineArn=arn)["type"] == "EXPRESS"
    result = sfn.start_sync_execution(stateMachineArn=arn, input='{"a": 1}', name="sync-run")
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == {"ok": True}
    assert result["executionArn"].startswith(f"{ARN}:express:{arn.rsplit(':', 1)[1]}:sync-run:")
    assert json.loads(result["input"]) == {"a": 1} and result["stopDate"] >= result["startDate"]
    standard = create(sfn, PASS)["stateMachineArn"]
    assert (
        error(lambda: sfn.start_sync_execution(stateMachineArn=standard))[0] == "StateMachineTypeNotSupported"
    )
    failing = create(
        sfn, {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "c"}}}, type="EXPRESS"
    )
    result = sfn.start_sync_execution(stateMachineArn=failing["stateMachineArn"])
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "E", "c")


def test_validate_state_machine_definition(sfn: Any) -> None:
    valid = sfn.validate_state_machine_definition(definition=json.dumps(PASS))
    assert (valid["result"], valid["diagnostics"], valid["truncated"]) == ("OK", [], False)
    answer = sfn.validate_state_machine_definition(
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}})
    )
    assert answer["result"] == "FAIL" and answer["truncated"] is False
    assert {
        "severity": "ERROR",
        "code": "MISSING_TRANSITION_TARGET",
        "message": "Missing 'Next' target: B",
        "location": "/States/A/Next",
    } in answer["diagnostics"]
    answer = sfn.validate_state_machine_definition(definition="not json")
    assert answer["result"] == "FAIL" and answer["diagnostics"][0]["code"] == "INVALID_JSON_DESCRIPTION"
    express = {
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "End": True}
        },
    }
    assert (
        sfn.validate_state_machine_definition(definition=json.dumps(express), type="EXPRESS")["result"]
        == "FAIL"
    )


def test_versions_and_aliases(sfn: Any) -> None:
    arn = create(sfn, PASS)["stateMachineArn"]
    v1 = sfn.publish_state_machine_version(stateMachineArn=arn, description="one")["stateMachineVersionArn"]
    assert v1 == f"{arn}:1"
    # Publishing the same revision again gives the same version.
    assert sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"] == v1
    sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps({**PASS, "Comment": "2"}))
    revision = sfn.describe_state_machine(stateMachineArn=arn)["revisionId"]
    code, _ = error(lambda: sfn.publish_state_machine_version(stateMachineArn=arn, revisionId="999"))
    assert code == "ConflictException"
    v2 = sfn.publish_state_machine_version(stateMachineArn=arn, revisionId=revision)["stateMachineVersionArn"]
    assert v2 == f"{arn}:2"
    versions = sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in versions] == [v2, v1]
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}], description="d"
    )["stateMachineAliasArn"]
    assert alias == f"{arn}:live"
    described = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)
    assert described["routingConfiguration"] == [{"stateMachineVersionArn": v1, "weight": 100}]
    assert described["description"] == "d"
    code, _ = error(lambda: sfn.delete_state_machine_version(stateMachineVersionArn=v1))
    assert code == "ConflictException"  # the alias routes to it
    started = sfn.start_execution(stateMachineArn=alias)
    done = wait_until_done(sfn, started["executionArn"])
    assert done["stateMachineAliasArn"] == alias and done["stateMachineVersionArn"] == v1
    through_version = wait_until_done(sfn, sfn.start_execution(stateMachineArn=v2)["executionArn"])
    assert through_version["stateMachineVersionArn"] == v2 and "stateMachineAliasArn" not in through_version
    listed = sfn.list_executions(stateMachineArn=alias)["executions"]
    assert [e["executionArn"] for e in listed] == [started["executionArn"]]
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias,
        routingConfiguration=[
            {"stateMachineVersionArn": v1, "weight": 50},
            {"stateMachineVersionArn": v2, "weight": 50},
        ],
    )
    weights = sfn.describe_state_machine_alias(stateMachineAliasArn=alias)["routingConfiguration"]
    assert sorted(w["weight"] for w in weights) == [50, 50]
    code, message = error(
        lambda: sfn.update_state_machine_alias(
            stateMachineAliasArn=alias, routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 60}]
        )
    )
    assert code == "ValidationException" and "100" in message
    assert [
        a["stateMachineAliasArn"]
        for a in sfn.list_state_machine_aliases(stateMachineArn=arn)["stateMachineAliases"]
    ] == [alias]
    sfn.delete_state_machine_alias(stateMachineAliasArn=alias)
    assert (
        error(lambda: sfn.describe_state_machine_alias(stateMachineAliasArn=alias))[0] == "ResourceNotFound"
    )
    sfn.delete_state_machine_version(stateMachineVersionArn=v1)
    assert [
        v["stateMachineVersionArn"]
        for v in sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"]
    ] == [v2]
    # A deleted version's number is not given again.
    sfn.update_state_machine(
        stateMachineArn=arn, definition=json.dumps({**PASS, "Comment": "3"}), publish=True
    )
    assert (
        sfn.list_state_machine_versions(stateMachineArn=arn)["stateMachineVersions"][0][
            "stateMachineVersionArn"
        ]
        == f"{arn}:3"
    )


# executions -------------------------------------------------------------------------------------------


def test_start_describe_history(sfn: Any, server: str) -> None:
    arn = create(
        sfn,
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "ResultPath": "$.a", "Result": 1, "Next": "B"},
                "B": {"Type": "Pass", "End": True},
            },
        },
    )["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=arn, name="first", input='{"x": 1}')
    assert started["executionArn"] == f"{ARN}:execution:{arn.rsplit(':', 1)[1]}:first"
    done = wait_until_done(sfn, started["executionArn"])
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"x": 1, "a": 1}
    assert done["name"] == "first" and done["stateMachineArn"] == arn and done["redriveCount"] == 0
    meta = sfn.describe_execution(executionArn=started["executionArn"], includedData="METADATA_ONLY")
    assert "input" not in meta and "output" not in meta
    history = sfn.get_execution_history(executionArn=started["executionArn"])["events"]
    assert [e["type"] for e in history] == [
        "ExecutionStarted", "PassStateEntered", "PassStateExited",
        "PassStateEntered", "PassStateExited", "ExecutionSucceeded",
    ]  # fmt: skip
    assert [e["id"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert history[0]["executionStartedEventDetails"]["roleArn"] == ROLE
    assert history[1]["stateEnteredEventDetails"]["name"] == "A"
    # Pages, both ways; without execution data.
    pages = list(
        sfn.get_paginator("get_execution_history").paginate(
            executionArn=started["executionArn"], PaginationConfig={"PageSize": 4}
        )
    )
    assert [len(p["events"]) for p in pages] == [4, 2]
    backwards = sfn.get_execution_history(
        executionArn=started["executionArn"], reverseOrder=True, maxResults=2, includeExecutionData=False
    )
    assert [e["id"] for e in backwards["events"]] == [6, 5] and "nextToken" in backwards
    assert "output" not in backwards["events"][0]["executionSucceededEventDetails"]
    rest = sfn.get_execution_history(
        executionArn=started["executionArn"], reverseOrder=True, nextToken=backwards["nextToken"]
    )
    assert [e["id"] for e in rest["events"]] == [4, 3, 2, 1] and "nextToken" not in rest
    code, _ = error(
        lambda: sfn.get_execution_history(executionArn=started["executionArn"], nextToken="garbage")
    )
    assert code == "InvalidToken"
    # The native API sees the same execution.
    native = json.loads(urllib.request.urlopen(f"{server}/e?workflow={arn.rsplit(':', 1)[1]}").read())
    assert [e["name"] for e in native["events"]] == ["first"]
    machine = sfn.describe_state_machine_for_execution(executionArn=started["executionArn"])
    assert machine["stateMachineArn"] == arn and json.loads(machine["definition"])["StartAt"] == "A"


def test_start_execution_is_idempotent_for_running_standard_executions(sfn: Any) -> None:
    arn = create(sfn, WAIT)["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn, name="once", input='{"a": 1}')
    again = sfn.start_execution(stateMachineArn=arn, name="once", input='{"a": 1}')
    assert again["executionArn"] == first["executionArn"] and again["startDate"] == first["startDate"]
    code, message = error(lambda: sfn.start_execution(stateMachineArn=arn, name="once", input='{"a": 2}'))
    assert code == "ExecutionAlreadyExists" and first["executionArn"] in message
    stopped = sfn.stop_execution(executionArn=first["executionArn"], error="Manual", cause="test")
    described = sfn.describe_execution(executionArn=first["executionArn"])
    assert (described["status"], described["error"], described["cause"]) == ("ABORTED", "Manual", "test")
    assert described["stopDate"] == stopped["stopDate"]
    # A finished execution's name is taken too.
    code, _ = error(lambda: sfn.start_execution(stateMachineArn=arn, name="once", input='{"a": 1}'))
    assert code == "ExecutionAlreadyExists"


def test_the_same_named_start_at_once_through_every_server_process_starts_one_execution(
    sfn: Any, server: str
) -> None:
    """``serve`` runs one process per core: starts of one name that arrive at once, on connections the
    kernel spreads over those processes, give one execution (its id is derived from the name)."""
    arn = create(sfn, WAIT)["stateMachineArn"]
    clients = [sfn_client(server) for _ in range(12)]
    barrier = threading.Barrier(len(clients))
    answers: list[str] = []

    def start(client: Any) -> None:
        barrier.wait()
        answers.append(client.start_execution(stateMachineArn=arn, name="racing", input="{}")["executionArn"])

    threads = [threading.Thread(target=start, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == len(clients) and len(set(answers)) == 1, answers
    listed = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in listed] == ["racing"]
    sfn.stop_execution(executionArn=answers[0])


def test_list_executions_filters_and_pages(sfn: Any) -> None:
    arn = create(sfn, WAIT)["stateMachineArn"]
    arns = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(5)]
    sfn.stop_execution(executionArn=arns[0])
    pages = list(
        sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, PaginationConfig={"PageSize": 2})
    )
    assert [len(p["executions"]) for p in pages] == [2, 2, 1]
    assert [e["executionArn"] for p in pages for e in p["executions"]] == list(reversed(arns))
    running = sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
    assert len(running) == 4 and all(e["status"] == "RUNNING" for e in running)
    aborted = sfn.list_executions(stateMachineArn=arn, statusFilter="ABORTED")["executions"]
    assert [e["executionArn"] for e in aborted] == [arns[0]] and "stopDate" in aborted[0]
    for execution in arns[1:]:
        sfn.stop_execution(executionArn=execution)


def test_deleting_a_machine_with_running_executions(sfn: Any) -> None:
    arn = create(sfn, WAIT)["stateMachineArn"]
    running = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    sfn.delete_state_machine(stateMachineArn=arn)
    assert sfn.describe_state_machine(stateMachineArn=arn)["status"] == "DELETING"
    assert error(lambda: sfn.start_execution(stateMachineArn=arn))[0] == "StateMachineDeleting"
    assert (
        error(lambda: sfn.update_state_machine(stateMachineArn=arn, roleArn=ROLE))[0]
        == "StateMachineDeleting"
    )
    sfn.stop_execution(executionArn=running)
    assert error(lambda: sfn.describe_state_machine(stateMachineArn=arn))[0] == "StateMachineDoesNotExist"


# activities and task tokens ---------------------------------------------------------------------------


def test_an_activity_task_waits_for_a_worker(sfn: Any) -> None:
    name = unique("work")
    activity = sfn.create_activity(name=name)["activityArn"]
    assert activity == f"{ARN}:activity:{name}"
    assert sfn.describe_activity(activityArn=activity)["name"] == name
    assert activity in [a["activityArn"] for a in sfn.list_activities()["activities"]]
    definition = {
        "StartAt": "Do",
        "States": {"Do": {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30, "End": True}},
    }
    arn = create(sfn, definition)["stateMachineArn"]
    # A long poll that a task ends: the worker waits before the execution starts.
    taken: list[dict[str, Any]] = []
    poller = threading.Thread(
        target=lambda: taken.append(sfn.get_activity_task(activityArn=activity, workerName="w1"))
    )
    poller.start()
    execution = sfn.start_execution(stateMachineArn=arn, input='{"job": 7}')["executionArn"]
    poller.join(10)
    if not taken or not taken[0].get("taskToken"):  # the poll ended before the task was queued
        taken[:] = [sfn.get_activity_task(activityArn=activity)]
    task = taken[0]
    assert json.loads(task["input"]) == {"job": 7}
    sfn.send_task_heartbeat(taskToken=task["taskToken"])
    sfn.send_task_success(taskToken=task["taskToken"], output='{"result": 42}')
    done = wait_until_done(sfn, execution)
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"result": 42}
    types = [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]
    assert types[2:5] == ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]
    assert error(lambda: sfn.send_task_success(taskToken=task["taskToken"], output="{}"))[0] == "TaskTimedOut"
    # No task within the poll: a null token.
    assert sfn.get_activity_task(activityArn=activity).get("taskToken") is None
    failing = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    task = sfn.get_activity_task(activityArn=activity)
    sfn.send_task_failure(taskToken=task["taskToken"], error="Nope", cause="worker said so")
    failed = wait_until_done(sfn, failing)
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "Nope", "worker said so")
    sfn.delete_activity(activityArn=activity)
    assert error(lambda: sfn.describe_activity(activityArn=activity))[0] == "ActivityDoesNotExist"
    assert error(lambda: sfn.get_activity_task(activityArn=activity))[0] == "ActivityDoesNotExist"


def test_task_token_errors(sfn: Any) -> None:
    assert error(lambda: sfn.send_task_success(taskToken="not a token", output="{}"))[0] == "InvalidToken"
    import base64

    from machinery.engine.interpreter import TASK_TOKEN_RANDOM_BYTES, decode_task_token

    raw = f"nope|nope|1|{'ab' * TASK_TOKEN_RANDOM_BYTES}|S".encode()
    unknown = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_task_token(unknown) is not None  # well formed, naming no task
    assert error(lambda: sfn.send_task_heartbeat(taskToken=unknown))[0] == "TaskDoesNotExist"
    assert error(lambda: sfn.send_task_failure(taskToken=unknown))[0] == "TaskDoesNotExist"


def test_invalid_output(sfn: Any) -> None:
    name = unique("out")
    activity = sfn.create_activity(name=name)["activityArn"]
    arn = create(
        sfn, {"StartAt": "Do", "States": {"Do": {"Type": "Task", "Resource": activity, "End": True}}}
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    task = sfn.get_activity_task(activityArn=activity)
    assert (
        error(lambda: sfn.send_task_success(taskToken=task["taskToken"], output="{nope"))[0]
        == "InvalidOutput"
    )
    sfn.stop_execution(executionArn=execution)


# tags -------------------------------------------------------------------------------------------------


def test_tags(sfn: Any) -> None:
    arn = create(sfn, PASS)["stateMachineArn"]
    sfn.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
    sfn.untag_resource(resourceArn=arn, tagKeys=["a"])
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "b", "value": "2"}]
    code, _ = error(lambda: sfn.tag_resource(resourceArn=f"{arn}-missing", tags=[{"key": "a", "value": "1"}]))
    assert code == "ResourceNotFound"
    code, _ = error(
        lambda: sfn.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    )
    assert code == "TooManyTags"


# TestState --------------------------------------------------------------------------------------------


def test_test_state(sfn: Any) -> None:
    passing = {
        "Type": "Pass",
        "InputPath": "$.in",
        "Parameters": {"v.$": "$.x"},
        "ResultPath": "$.out",
        "Next": "After",
    }
    answer = sfn.test_state(definition=json.dumps(passing), input='{"in": {"x": 5}}', inspectionLevel="DEBUG")
    assert answer["status"] == "SUCCEEDED" and answer["nextState"] == "After"
    assert json.loads(answer["output"]) == {"in": {"x": 5}, "out": {"v": 5}}
    assert json.loads(answer["inspectionData"]["afterInputPath"]) == {"x": 5}
    info = sfn.test_state(definition=json.dumps(passing), input='{"in": {"x": 5}}')
    assert "inspectionData" not in info
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "ResultSelector": {"p.$": "$.Payload"},
        "Retry": [{"ErrorEquals": ["Retry.Me"], "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}],
        "End": True,
    }
    mocked = sfn.test_state(
        definition=json.dumps(task),
        input='{"a": 1}',
        mock={"result": '{"Payload": {"b": 2}}'},
        inspectionLevel="DEBUG",
    )
    assert mocked["status"] == "SUCCEEDED" and json.loads(mocked["output"]) == {"p": {"b": 2}}
    assert json.loads(mocked["inspectionData"]["afterParameters"]) == {
        "FunctionName": "f",
        "Payload": {"a": 1},
    }
    caught = sfn.test_state(
        definition=json.dumps(task), mock={"errorOutput": {"error": "Boom", "cause": "c"}}
    )
    assert (caught["status"], caught["nextState"], caught["error"]) == ("CAUGHT_ERROR", "Handle", "Boom")
    retried = sfn.test_state(
        definition=json.dumps(task), mock={"errorOutput": {"error": "Retry.Me", "cause": ""}}
    )
    assert retried["status"] == "RETRIABLE" and retried["error"] == "Retry.Me"
    exhausted = sfn.test_state(
        definition=json.dumps(task),
        mock={"errorOutput": {"error": "Retry.Me", "cause": ""}},
        stateConfiguration={"retrierRetryCount": 2},
    )
    assert exhausted["status"] == "CAUGHT_ERROR"
    machine = {
        "StartAt": "One",
        "States": {
            "One": {"Type": "Pass", "Next": "Two"},
            "Two": {"Type": "Fail", "Error": "X", "Cause": "y"},
        },
    }
    failed = sfn.test_state(definition=json.dumps(machine), stateName="Two")
    assert (failed["status"], failed["error"], failed["cause"]) == ("FAILED", "X", "y")
    assert (
        error(lambda: sfn.test_state(definition=json.dumps(machine), stateName="Three"))[0]
        == "ValidationException"
    )
    assert error(lambda: sfn.test_state(definition='{"Type": "Nope"}'))[0] == "InvalidDefinition"


# redrive ----------------------------------------------------------------------------------------------


def test_redrive_a_failed_map_reruns_only_its_failed_iterations(sfn: Any, flaky: FlakyService) -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Call",
                    "States": {"Call": {"Type": "Task", "Resource": flaky.url, "End": True}},
                },
                "End": True,
            }
        },
    }
    arn = create(sfn, definition)["stateMachineArn"]
    items = [{"i": i} for i in range(5)]
    flaky.failing = {key({"i": 1}), key({"i": 3})}
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(items))["executionArn"]
    failed = wait_until_done(sfn, execution)
    assert failed["status"] == "FAILED" and failed["redriveStatus"] == "REDRIVABLE"
    history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    succeeded = {
        e["mapIterationSucceededEventDetails"]["index"]
        for e in history
        if e["type"] == "MapIterationSucceeded"
    }
    before = dict(flaky.calls)
    flaky.failing = set()
    redriven = sfn.redrive_execution(executionArn=execution)
    done = wait_until_done(sfn, execution)
    assert done["status"] == "SUCCEEDED", done
    assert json.loads(done["output"]) == [{"done": item} for item in items]
    assert done["redriveCount"] == 1 and done["redriveDate"] == redriven["redriveDate"]
    assert done["executionArn"] == execution
    for index, item in enumerate(items):
        extra = flaky.calls[key(item)] - before.get(key(item), 0)
        # Succeeded before: not run again; else once more (a first-run call still in flight when its
        # sibling failed may land after the snapshot: at-least-once, so at most two calls in all).
        assert extra == 0 if index in succeeded else (extra >= 1 and flaky.calls[key(item)] <= 2)
    types = [e["type"] for e in sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]]
    assert types.count("ExecutionStarted") == 1 and types.count("ExecutionRedriven") == 1
    redrive_event = next(
        e
        for e in sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=1000)[
            "events"
        ]
        if e["type"] == "ExecutionRedriven"
    )
    assert redrive_event["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert [
        e["executionArn"]
        for e in sfn.list_executions(stateMachineArn=arn, redriveFilter="REDRIVEN")["executions"]
    ] == [execution]
    code, message = error(lambda: sfn.redrive_execution(executionArn=execution))
    assert code == "ExecutionNotRedrivable" and "SUCCEEDED" in message


# errors ------------------------------------------------------------------------------------------------


def test_the_errors_the_api_names(sfn: Any, server: str) -> None:
    arn = create(sfn, PASS)["stateMachineArn"]
    missing = f"{ARN}:stateMachine:nope"
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("InvalidArn", lambda: sfn.describe_state_machine(stateMachineArn="arn:nope")),
        ("InvalidArn", lambda: sfn.describe_execution(executionArn=arn)),
        (
            "InvalidArn",
            lambda: sfn.create_state_machine(
                name=unique("r"), definition=json.dumps(PASS), roleArn="arn:aws:s3:::bucket"
            ),
        ),
        (
            "InvalidName",
            lambda: sfn.create_state_machine(name="bad name", definition=json.dumps(PASS), roleArn=ROLE),
        ),
        ("InvalidName", lambda: sfn.start_execution(stateMachineArn=arn, name="bad:name")),
        (
            "InvalidDefinition",
            lambda: sfn.create_state_machine(name=unique("d"), definition="{}", roleArn=ROLE),
        ),
        (
            "InvalidDefinition",
            lambda: sfn.create_state_machine(name=unique("d"), definition="nope", roleArn=ROLE),
        ),
        ("InvalidExecutionInput", lambda: sfn.start_execution(stateMachineArn=arn, input="{")),
        ("StateMachineDoesNotExist", lambda: sfn.describe_state_machine(stateMachineArn=missing)),
        ("StateMachineDoesNotExist", lambda: sfn.start_execution(stateMachineArn=missing)),
        ("ExecutionDoesNotExist", lambda: sfn.describe_execution(executionArn=f"{ARN}:execution:nope:x")),
        ("ExecutionDoesNotExist", lambda: sfn.get_execution_history(executionArn=f"{ARN}:execution:nope:x")),
        ("ActivityDoesNotExist", lambda: sfn.describe_activity(activityArn=f"{ARN}:activity:nope")),
        ("ResourceNotFound", lambda: sfn.describe_state_machine_alias(stateMachineAliasArn=f"{arn}:nope")),
        ("ResourceNotFound", lambda: sfn.describe_map_run(mapRunArn=f"{ARN}:mapRun:x/y:1234")),
        ("ValidationException", lambda: sfn.list_executions()),
        ("ValidationException", lambda: sfn.delete_state_machine(stateMachineArn=f"{arn}:1")),
        ("MissingRequiredParameter", lambda: sfn.update_state_machine(stateMachineArn=arn)),
    ]
    for expected, attempt in checks:
        code, message = error(attempt)
        assert code == expected, (expected, code, message)
        assert message
    with pytest.raises(ClientError) as caught:
        sfn.list_executions()
    assert caught.value.response["reason"] == "MISSING_REQUIRED_PARAMETER"
    request = urllib.request.Request(
        f"{server}/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AWSStepFunctions.NoSuchAction",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as http_error:
        urllib.request.urlopen(request)
    assert http_error.value.code == 400
    assert json.loads(http_error.value.read())["__type"] == "UnknownOperationException"


def test_distributed_map_runs(sfn: Any) -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "Label": "Items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "P",
                    "States": {"P": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }
    arn = create(sfn, definition)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps([1, 2, 3]))["executionArn"]
    assert wait_until_done(sfn, execution)["status"] == "SUCCEEDED"
    runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
    assert len(runs) == 1 and runs[0]["executionArn"] == execution
    run = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
    assert run["status"] == "SUCCEEDED" and run["maxConcurrency"] == 2
    assert run["itemCounts"]["succeeded"] == 3 and run["itemCounts"]["total"] == 3
    assert run["mapRunArn"].startswith(f"{ARN}:mapRun:{arn.rsplit(':', 1)[1]}/Items:")
    children = sfn.list_executions(mapRunArn=runs[0]["mapRunArn"])["executions"]
    assert len(children) == 3 and all(c["mapRunArn"] == runs[0]["mapRunArn"] for c in children)
    child = sfn.describe_execution(executionArn=children[0]["executionArn"])
    assert child["mapRunArn"] == runs[0]["mapRunArn"]
    code, _ = error(lambda: sfn.update_map_run(mapRunArn=runs[0]["mapRunArn"], maxConcurrency=5))
    assert code == "ValidationException"


def test_with_api_tokens_requests_must_be_signed_with_a_token_key(tmp_path: Path) -> None:
    """Once an API token exists, the AWS API needs SigV4 with its key pair (``machinery tokens create``)."""
    import subprocess
    import sys

    import boto3
    from botocore.config import Config

    from examples.demo import REPOSITORY

    database = tmp_path / "db.sqlite"
    created = subprocess.run(
        [sys.executable, "-m", "machinery", "tokens", "create", "--name", "ci", "--scope", "write", "--json",
         "--database-url", f"sqlite:///{database}"],
        cwd=REPOSITORY, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    token = json.loads(created.stdout)
    with aws_server(tmp_path) as url:

        def client(key: str, secret: str) -> Any:
            return boto3.client(
                "stepfunctions", endpoint_url=url, region_name=REGION, aws_access_key_id=key,
                aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}),
            )  # fmt: skip

        signed = client(token["access_key_id"], token["secret_access_key"])
        arn = signed.create_state_machine(name="signed", definition=json.dumps(PASS), roleArn=ROLE)[
            "stateMachineArn"
        ]
        assert arn.endswith(":stateMachine:signed")
        with pytest.raises(ClientError) as wrong:
            client(token["access_key_id"], "not-the-secret").list_state_machines()
        assert wrong.value.response["Error"]["Code"] == "InvalidSignatureException"
        with pytest.raises(ClientError) as unknown:
            client(ACCOUNT, "anything").list_state_machines()
        assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_update_map_run_raises_the_concurrency_of_a_running_map(sfn: Any) -> None:
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "W",
                    "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}},
                },
                "End": True,
            }
        },
    }
    arn = create(sfn, definition)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps([1, 2, 3, 4]))["executionArn"]

    def map_run() -> dict[str, Any]:
        for _ in range(200):  # the run exists once the worker has started the Map (a client polls)
            runs = sfn.list_map_runs(executionArn=execution)["mapRuns"]
            if runs:
                found: dict[str, Any] = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
                return found
            threading.Event().wait(0.05)
        raise AssertionError("no map run")

    before = map_run()
    assert before["status"] == "RUNNING" and before["maxConcurrency"] == 1
    assert (before["itemCounts"]["pending"], before["itemCounts"]["total"]) == (3, 4)
    sfn.update_map_run(mapRunArn=before["mapRunArn"], maxConcurrency=3, toleratedFailureCount=1)
    after = sfn.describe_map_run(mapRunArn=before["mapRunArn"])
    assert (after["maxConcurrency"], after["toleratedFailureCount"]) == (3, 1)
    assert after["itemCounts"]["pending"] == 1
    sfn.stop_execution(executionArn=execution)
    assert sfn.describe_map_run(mapRunArn=before["mapRunArn"])["status"] == "ABORTED"


def test_the_host_prefix_turned_off_by_the_environment(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``AWS_DISABLE_HOST_PREFIX_INJECTION=true`` instead of ``Config(inject_host_prefix=False)``."""
    import boto3

    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    plain = boto3.client(
        "stepfunctions", endpoint_url=server, region_name=REGION, aws_access_key_id=ACCOUNT,
        aws_secret_access_key="x",
    )  # fmt: skip
    arn = plain.create_state_machine(
        name=unique("env"), definition=json.dumps(PASS), roleArn=ROLE, type="EXPRESS"
    )
    assert plain.start_sync_execution(stateMachineArn=arn["stateMachineArn"])["status"] == "SUCCEEDED"
