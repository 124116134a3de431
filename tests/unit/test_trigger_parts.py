"""Small parts of the triggers: reconnection back-off, broker destinations, masked URLs, message names."""

from __future__ import annotations

import re

import pytest

from machinery.control.triggers import masked_url
from machinery.runtime.outbound import OutboundPolicy
from machinery.runtime.publish import DestinationProblem, broker_refusal, destination
from machinery.runtime.sources import BROKERS, Source
from machinery.runtime.sources.consumer import MAX_RECONNECT_SECONDS, reconnect_delay
from machinery.runtime.sources.intake import decode, message_execution_id, message_execution_name


def test_reconnect_delay_doubles_with_equal_jitter_up_to_the_cap() -> None:
    assert [reconnect_delay(n, rand=lambda: 0.0) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert [reconnect_delay(n, rand=lambda: 1.0) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert reconnect_delay(40, rand=lambda: 1.0) == MAX_RECONNECT_SECONDS
    assert reconnect_delay(40, rand=lambda: 0.0) == MAX_RECONNECT_SECONDS / 2


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "amqp://u:p@h:5672/v?exchange=x&routing_key=k",
            ("rabbitmq", "amqp://u:p@h:5672/v", {"exchange": "x", "routing_key": "k"}),
        ),
        (
            "nats://h:4222?subject=a.b&jetstream=true",
            ("nats", "nats://h:4222", {"subject": "a.b", "jetstream": "true"}),
        ),
        ("rediss://h/1?stream=s&maxlen=10", ("redis", "rediss://h/1", {"stream": "s", "maxlen": "10"})),
    ],
)  # fmt: skip
def test_broker_destinations(url: str, expected: tuple[str, str, dict[str, str]]) -> None:
    assert destination(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nats://h:4222", "needs ?subject="),
        ("redis://h/0?stream=s&maxlen=ten", "maxlen"),
        ("amqp://h/?queue=q", "unknown parameter 'queue'"),
        ("http://h/", "not a broker URL"),
    ],
)
def test_invalid_broker_destinations(url: str, message: str) -> None:
    with pytest.raises(DestinationProblem, match=re.escape(message)):
        destination(url)


def test_broker_hosts_meet_the_outbound_policy() -> None:
    policy = OutboundPolicy()
    assert broker_refusal("amqp://127.0.0.1:5672/", policy) is None
    assert "MACHINERY_DENIED_TARGETS" in (broker_refusal("redis://169.254.169.254:6379/0", policy) or "")
    assert broker_refusal("nats://[::1]:4222", policy) is None


def test_masked_urls_never_show_the_password() -> None:
    assert masked_url("amqp://guest:guest@127.0.0.1:5672/vh") == "amqp://guest:***@127.0.0.1:5672/vh"
    assert masked_url("redis://:secret@[::1]:6379/0") == "redis://:***@[::1]:6379/0"
    assert masked_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def source(name: str = "orders") -> Source:
    return Source(
        "id-1", name, "wf", "redis", BROKERS["redis"].default_url, {"stream": "s"}, True, 1, 0.0, 0.0
    )


def test_message_ids_and_names() -> None:
    assert message_execution_id(source(), "k1") == message_execution_id(source(), "k1")
    assert message_execution_id(source(), "k1") != message_execution_id(source(), "k2")
    assert message_execution_name(source(), "s:1700000000000-0") == "orders-s_1700000000000-0"
    long_name = message_execution_name(source(), "x" * 200)
    assert len(long_name) <= 80 and long_name.startswith("orders-")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not JSON"),
        (b'{"n": NaN}', "NaN is not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" + b"1," * 100 + b"1]", "over the limit"),
    ],
)
def test_undecodable_messages_say_why(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode(body, limit=100)
    assert decode(b'{"n": 1}', limit=100) == {"n": 1}


def test_a_rejection_and_this_processs_count_of_them_are_stored_before_the_message_is_settled() -> None:
    """A process killed right after it settled a rejected message must not lose the count of it: the
    message is not delivered again."""
    import asyncio

    from machinery.runtime.sources import STATUS_KIND, SourceStatus
    from machinery.runtime.sources.intake import Incoming, Intake
    from machinery.runtime.worker import Worker, WorkerSettings
    from machinery.storage.memory import MemoryStorage

    storage = MemoryStorage()
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    storage.save_workflow("flow", {"name": "flow"}, definition, [], False, 1.0)
    worker = Worker(storage, WorkerSettings())
    source = Source("src-1", "orders", "flow", "nats", "nats://127.0.0.1:4222", {}, True, 1, 1.0, 1.0)
    status = SourceStatus(owner=worker.owner)
    intake = Intake(worker, source, status, data_limit=1024)

    outcomes = asyncio.run(intake.process([Incoming("m1", b"not json"), Incoming("m2", b'{"n": 1}')]))

    assert [outcome.settlement for outcome in outcomes] == ["rejected", "started"]
    stored = storage.get_resource(STATUS_KIND, f"src-1/{worker.owner}")
    assert stored is not None and (stored["rejected"], stored["owner"]) == (1, worker.owner)
    assert status.rejected == 1


def test_a_rejection_that_could_not_be_stored_is_not_counted_and_comes_again() -> None:
    import asyncio
    from typing import cast

    from machinery.errors import StorageError
    from machinery.runtime.sources import SourceStatus
    from machinery.runtime.sources.intake import Incoming, Intake
    from machinery.runtime.worker import Worker, WorkerSettings
    from machinery.storage.base import Storage
    from machinery.storage.memory import MemoryStorage
    from machinery.testing import RecordingStorage

    recording = RecordingStorage(MemoryStorage())
    storage = cast(Storage, recording)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    storage.save_workflow("flow", {"name": "flow"}, definition, [], False, 1.0)
    worker = Worker(storage, WorkerSettings())
    source = Source("src-1", "orders", "flow", "nats", "nats://127.0.0.1:4222", {}, True, 1, 1.0, 1.0)
    status = SourceStatus(owner=worker.owner)
    recording.fail_next("put_resource", StorageError("disk on fire"))

    outcomes = asyncio.run(Intake(worker, source, status, data_limit=1024).process([Incoming("m1", b"{")]))

    assert [outcome.settlement for outcome in outcomes] == ["retry"]  # delivered again, counted then
    assert status.rejected == 0 and status.retried == 1
