"""``machinery.client.Client`` against a real ``machinery serve``: every method, and the errors it raises.

One server per module (``seeded_server``: the example services and ``process-text``); each test works
on names of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from examples.demo import DEFINITIONS
from machinery.client import (
    Client,
    ConflictError,
    Event,
    ExecutionStatus,
    HistoryEvent,
    InvalidEventDataError,
    NotFoundError,
    ServerUnreachable,
    Service,
    Workflow,
)
from tests.acceptance.test_task_tokens import TokenService

#: The seed's workflow, defined on the shared server over the registered example services.
PROCESS_TEXT = "process-text"
EXPECTED_OUTPUT = {"message": "! GNINROM EHT NI ESIR LLIW NUS EHT", "space_count": 7}
WAIT_FOREVER = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
FAIL = {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Oops", "Cause": "on purpose"}}}


@pytest.fixture(scope="module")
def server(seeded_server: str) -> str:
    return seeded_server


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as made:
        yield made


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_health(client: Client) -> None:
    assert client.health() is True
    assert Client("http://127.0.0.1:9").health() is False


def test_services_create_list_get_update_delete(client: Client) -> None:
    name = unique("echo")
    created = client.create_service({"name": name, "address": "http://127.0.0.1:9/x", "timeout_seconds": 5})
    assert isinstance(created, Service)
    assert (created.name, created.address, created.timeout_seconds) == (name, "http://127.0.0.1:9/x", 5)
    assert name in {service.name for service in client.list_services()}
    assert client.get_service(name) == client.get_service(created.service_id) == created

    updated = client.update_service(name, {"name": name, "address": "http://127.0.0.1:9/y", "method": "PUT"})
    assert (updated.service_id, updated.address, updated.method) == (
        created.service_id,
        "http://127.0.0.1:9/y",
        "PUT",
    )
    again = client.create_service({"name": name, "address": "http://127.0.0.1:9/z"})
    assert again.service_id == created.service_id  # registering a name again updates it (the seed)

    client.delete_service(name)
    with pytest.raises(NotFoundError) as caught:
        client.get_service(name)
    assert caught.value.status == 404 and name in caught.value.problem.detail


def test_refusals_carry_the_problem_details(client: Client) -> None:
    with pytest.raises(ConflictError) as caught:
        client.create_service({"name": unique("bad"), "address": "not a url"})
    problem = caught.value.problem
    assert problem.status == 409 and problem.error
    assert [issue.field for issue in caught.value.issues] == [issue.field for issue in problem.issues]
    assert any("address" in issue.field for issue in problem.issues)
    assert "address" in str(caught.value)

    with pytest.raises(ConflictError):
        client.delete_service("upper")  # process-text uses it
    with pytest.raises(InvalidEventDataError) as invalid:
        client.start_event(PROCESS_TEXT, {"text": "no message"})
    assert invalid.value.status == 422 and invalid.value.issues


def test_workflows_and_versions(client: Client) -> None:
    name = unique("flow")
    first = client.create_workflow({"name": name, "definition": WAIT_FOREVER})
    assert isinstance(first, Workflow)
    assert (first.name, first.version, first.form) == (name, 1, "asl")
    assert first.definition is not None and first.definition["StartAt"] == "Wait"

    second = client.create_workflow(
        {"name": name, "services": ["upper"], "inputs": [{"name": "message", "type": "string"}]}
    )
    assert (second.workflow_id, second.version, second.form, second.services) == (
        first.workflow_id,
        2,
        "simple",
        ("upper",),
    )
    third = client.update_workflow(name, {"name": name, "definition": FAIL})
    assert third.version == 3

    listed = {workflow.name: workflow for workflow in client.list_workflows()}
    assert listed[name].version == 3 and listed[name].definition is None
    assert client.get_workflow(name).version == 3
    assert client.get_workflow(first.workflow_id, version=1).definition == first.definition
    assert [version.version for version in client.list_versions(name)] == [1, 2, 3]

    client.delete_workflow(name)
    with pytest.raises(NotFoundError):
        client.get_workflow(name)


def test_start_event_waits_for_the_output(client: Client) -> None:
    event = client.start_event(
        PROCESS_TEXT, {"message": "The Sun will rise in the morning !"}, name=unique("run")
    )
    assert isinstance(event, Event)
    assert event.status is ExecutionStatus.SUCCEEDED and event.succeeded and not event.running
    assert event.output == EXPECTED_OUTPUT
    assert event.finished_at is not None and event.finished_at >= event.acknowledged_at
    assert client.get_event(event.event_id) == event


def test_post_event_sends_the_body_as_the_route_takes_it(client: Client) -> None:
    envelope = json.loads((DEFINITIONS / "event-text.json").read_text())
    assert client.post_event(PROCESS_TEXT, envelope).output == EXPECTED_OUTPUT
    assert client.post_event(PROCESS_TEXT, envelope["data"]).output == EXPECTED_OUTPUT


def test_start_without_waiting_then_wait_then_stop(client: Client) -> None:
    name = unique("waits")
    client.create_workflow({"name": name, "definition": WAIT_FOREVER})
    event = client.start_event(name, {}, wait=0)
    assert event.running
    assert client.wait_for_event(event.event_id, timeout=0.2).running  # gives up after its timeout

    stopped = client.stop_event(event.event_id, error="Stopped.ByTest", cause="enough")
    assert (stopped.status, stopped.error, stopped.cause) == (
        ExecutionStatus.ABORTED,
        "Stopped.ByTest",
        "enough",
    )
    assert client.wait_for_event(event.event_id).status is ExecutionStatus.ABORTED
    with pytest.raises(ConflictError):
        client.stop_event(event.event_id)


def test_a_failed_event_has_its_error_and_cause(client: Client) -> None:
    name = unique("fails")
    client.create_workflow({"name": name, "definition": FAIL})
    event = client.start_event(name, {})
    assert (event.status, event.error, event.cause, event.output) == (
        ExecutionStatus.FAILED,
        "Oops",
        "on purpose",
        None,
    )


def test_list_and_iterate_events_across_pages(client: Client) -> None:
    name = unique("many")
    client.create_workflow({"name": name, "definition": FAIL})
    started = [client.start_event(name, {"n": n}).event_id for n in range(5)]

    page = client.list_events(workflow=name, limit=2)
    assert len(page.events) == 2 and page.next_cursor is not None
    assert [event.event_id for event in client.iter_events(workflow=name, page_size=2)] == started[::-1]
    assert list(client.iter_events(workflow=name, status="SUCCEEDED")) == []
    assert {event.event_id for event in client.iter_events(status="FAILED")} >= set(started)


def test_history_whole_and_page_by_page(client: Client) -> None:
    event = client.start_event(PROCESS_TEXT, {"message": "a b"})
    history = client.history(event.event_id)
    assert all(isinstance(entry, HistoryEvent) for entry in history)
    assert history[0].type == "ExecutionStarted" and history[-1].type == "ExecutionSucceeded"
    assert [entry.id for entry in history] == list(range(1, len(history) + 1))
    entered = [entry.state_name for entry in history if entry.state_entered]
    assert entered == ["upper", "reverse", "space-counter"]
    assert history[1].state_type == "Task" and history[1].detail_json("input") == {"message": "a b"}

    assert list(client.iter_history(event.event_id, page_size=2)) == history
    page = client.history_page(event.event_id, after=2, limit=3)
    assert [entry.id for entry in page.events] == [3, 4, 5] and page.next_cursor == 5
    newest = client.history_page(event.event_id, limit=1, reverse=True)
    assert newest.events[0].type == "ExecutionSucceeded" and newest.event_id == event.event_id
    with pytest.raises(NotFoundError):
        client.history(str(uuid.uuid4()))


def test_task_callbacks(client: Client) -> None:
    tokens = TokenService()
    try:
        name = unique("approve")
        state = {"Type": "Task", "Resource": f"{tokens.url}approve.waitForTaskToken", "End": True}
        client.create_workflow(
            {"name": name, "definition": {"StartAt": "Approve", "States": {"Approve": state}}}
        )

        approved = client.start_event(name, {}, wait=0)
        token = tokens.next_call().header_token
        assert token
        client.task_heartbeat(token)
        client.task_success(token, {"approved": True})
        assert client.wait_for_event(approved.event_id, timeout=15).output == {"approved": True}
        with pytest.raises(ConflictError) as spent:
            client.task_success(token, {})
        assert spent.value.code == "TaskTimedOut"

        refused = client.start_event(name, {}, wait=0)
        token = tokens.next_call().header_token
        assert token
        client.task_failure(token, error="Refused", cause="by the test")
        ended = client.wait_for_event(refused.event_id, timeout=15)
        assert (ended.status, ended.error, ended.cause) == (ExecutionStatus.FAILED, "Refused", "by the test")
    finally:
        tokens.close()


def test_an_unreachable_server_raises() -> None:
    with Client("http://127.0.0.1:9", timeout=2) as unreachable, pytest.raises(ServerUnreachable):
        unreachable.list_services()


def test_redrive_reruns_the_failed_state_with_a_new_input(client: Client) -> None:
    name = unique("redrive")
    definition = {"StartAt": "Upper", "States": {"Upper": {"Type": "Task", "Resource": "upper", "End": True}}}
    client.create_workflow({"name": name, "definition": definition})
    failed = client.start_event(name, {"text": "no message: upper refuses it"})
    assert failed.status is ExecutionStatus.FAILED and failed.redrive_count == 0

    redriven = client.redrive_event(failed.event_id, state_input={"message": "now it has one"})
    assert redriven.event_id == failed.event_id and redriven.redrive_count == 1
    assert redriven.redriven_at is not None
    assert client.wait_for_event(failed.event_id, timeout=30).output == {"message": "NOW IT HAS ONE"}
    assert "ExecutionRedriven" in [entry.type for entry in client.history(failed.event_id)]
    with pytest.raises(ConflictError):
        client.redrive_event(failed.event_id)  # it succeeded
