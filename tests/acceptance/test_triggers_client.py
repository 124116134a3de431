"""Schedules and event sources through ``machinery.client`` and the ``machinery schedules`` / ``machinery
sources`` commands, against a real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from machinery.client import Client, ConflictError, NotFoundError, Schedule, Source
from tests.acceptance.brokers import REDIS_URL, Redis, numbered, require
from tests.acceptance.test_cli_client import machinery

TYPED = {
    "inputs": [{"name": "n", "type": "integer"}],
    "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
}


@pytest.fixture(scope="module")
def server(seeded_server: str) -> str:
    return seeded_server


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server) as made:
        yield made


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def typed_workflow(client: Client) -> str:
    name = unique("typed")
    client.create_workflow({"name": name, **TYPED})
    return name


def test_the_client_manages_schedules(client: Client) -> None:
    workflow = typed_workflow(client)
    name = unique("every")
    created = client.create_schedule(
        {"name": name, "workflow": workflow, "expression": "rate(10 minutes)", "input": {"n": 1}}
    )
    assert isinstance(created, Schedule) and created.kind == "rate" and len(created.next_runs) == 5
    assert created.next_runs[1].timestamp() - created.next_runs[0].timestamp() == 600
    assert [s.name for s in client.list_schedules(workflow)] == [name]
    assert client.update_schedule(name, {"overlap": "allow"}).overlap == "allow"
    assert client.pause_schedule(name).paused is True
    assert client.get_schedule(name).next_runs == ()
    assert client.resume_schedule(name).paused is False
    with pytest.raises(ConflictError):
        client.create_schedule(
            {"name": name, "workflow": workflow, "expression": "rate(1 minute)", "input": {"n": 1}}
        )
    client.delete_schedule(name)
    with pytest.raises(NotFoundError):
        client.get_schedule(name)


def test_the_client_manages_sources_and_reads_their_rejections(client: Client) -> None:
    require("127.0.0.1", 6379, "Redis")
    broker = Redis(REDIS_URL)
    workflow = typed_workflow(client)
    name, stream = unique("src"), unique("stream")
    try:
        created = client.create_source(
            {
                "name": name,
                "workflow": workflow,
                "type": "redis",
                "url": REDIS_URL,
                "stream": stream,
                "batch": 5,
            }
        )
        assert isinstance(created, Source) and created.type == "redis" and created.enabled
        broker.run(broker.publish(stream, [*numbered(3, "m"), ("bad", b"not json")]))
        deadline = time.monotonic() + 30
        while not client.source_rejections(name) or client.get_source(name).state.get("started", 0) < 3:
            assert time.monotonic() < deadline, client.get_source(name).raw
            time.sleep(0.1)
        [rejection] = client.source_rejections(name)
        assert rejection["reason"].startswith("the message is not JSON") and rejection["body"] == "not json"
        assert client.get_source(name).state["connected"] is True
        assert [s.name for s in client.list_sources() if s.name == name] == [name]
        assert client.pause_source(name).enabled is False
        assert client.resume_source(name).enabled is True
        assert client.update_source(name, {"batch": 10}).raw["batch"] == 10
    finally:
        client.delete_source(name)
        broker.run(broker.cleanup(stream))
    with pytest.raises(NotFoundError):
        client.get_source(name)


def test_the_schedules_and_sources_commands(server: str, client: Client, tmp_path: Path) -> None:
    workflow = typed_workflow(client)
    name = unique("nightly")
    definition = tmp_path / "schedule.json"
    body = {
        "name": name,
        "workflow": workflow,
        "expression": "0 2 * * *",
        "timezone": "Asia/Tokyo",
        "input": {"n": 2},
    }
    definition.write_text(json.dumps(body))
    applied = machinery(server, "schedules", "apply", "-f", str(definition))
    assert applied.returncode == 0, applied.stderr
    assert name in applied.stdout
    # Applying again updates the schedule of that name.
    definition.write_text(json.dumps({**body, "overlap": "buffer_one"}))
    again = machinery(server, "schedules", "apply", "-f", str(definition))
    assert again.returncode == 0 and f"updated {name}" in again.stderr
    listed = machinery(server, "schedules", "list", "--workflow", workflow)
    assert listed.returncode == 0 and name in listed.stdout and "buffer_one" in listed.stdout
    shown = machinery(server, "schedules", "get", name, "--json")
    record = json.loads(shown.stdout)
    assert record["overlap"] == "buffer_one" and record["next_runs"][0].endswith("T17:00:00Z")
    paused = machinery(server, "schedules", "pause", name)
    assert paused.returncode == 0 and "paused\tyes" in paused.stdout
    assert machinery(server, "schedules", "resume", name).returncode == 0
    assert client.get_schedule(name).paused is False
    assert machinery(server, "schedules", "delete", name).returncode == 0
    missing = machinery(server, "schedules", "get", name)
    assert missing.returncode == 3 and "404" in missing.stderr

    listed_sources = machinery(server, "sources", "list")
    assert listed_sources.returncode == 0 and listed_sources.stdout.startswith("NAME\tTYPE")
    refused = machinery(
        server, "sources", "apply", "-f", "-", stdin=json.dumps({"name": "s", "type": "kafka"})
    )
    assert refused.returncode == 3 and "type" in refused.stderr
