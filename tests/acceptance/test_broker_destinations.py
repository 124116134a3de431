"""An execution's final record published to a broker (its ``callback_url`` names a RabbitMQ exchange, a NATS
subject or a Redis stream) by a real server, with the webhook's attempts and back-off when it cannot be."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from examples.demo import free_port, machinery_process, request
from tests.acceptance.brokers import (
    NATS_URL,
    RABBITMQ_URL,
    REDIS_URL,
    broker_lock,  # noqa: F401 (the fixture)
    require,
    unique,
)

pytestmark = pytest.mark.usefixtures("broker_lock")

PASS = {
    "name": "echo",
    "definition": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("destinations")
    with ExitStack() as stack:
        log = stack.enter_context((tmp_path / "server.log").open("w"))
        settings = {
            "MACHINERY_WEBHOOK_ATTEMPTS": "2",
            "MACHINERY_TIME_SCALE": "0",
            "MACHINERY_POLL_INTERVAL": "0.1",
        }
        base = stack.enter_context(
            machinery_process(f"sqlite:///{tmp_path / 'db.sqlite'}", log, settings=settings)
        )
        assert request("POST", f"{base}/w", PASS)[0] == 201
        yield base


def start(base: str, callback_url: str) -> dict[str, Any]:
    status, record = request("POST", f"{base}/e/echo", {"data": {"n": 1}, "callback_url": callback_url})
    assert status == 201, record
    return dict(record)


def wait_for_webhook(base: str, event_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        record = request("GET", f"{base}/e/{event_id}")[1]
        webhook = record.get("webhook") or {}
        if webhook.get("status") == wanted:
            return dict(webhook)
        assert time.monotonic() < deadline, record
        time.sleep(0.05)


def test_the_record_is_published_to_a_redis_stream(server: str) -> None:
    require("127.0.0.1", 6379, "Redis")
    import redis

    stream = unique("results")
    record = start(server, f"{REDIS_URL}?stream={stream}&maxlen=1000")
    assert wait_for_webhook(server, record["event_id"], "delivered")["attempts"] == 1
    client = redis.Redis.from_url(REDIS_URL)
    try:
        [(_entry_id, fields)] = client.xrange(stream)
        assert fields[b"event_id"].decode() == record["event_id"]
        published = json.loads(fields[b"body"])
        assert published["status"] == "SUCCEEDED" and published["output"] == {"ok": 1}
    finally:
        client.delete(stream)
        client.close()


def test_the_record_is_published_to_a_rabbitmq_queue(server: str) -> None:
    require("127.0.0.1", 5672, "RabbitMQ")
    import aio_pika

    queue_name = unique("results")

    async def declare() -> None:
        async with await aio_pika.connect(RABBITMQ_URL) as connection:
            await (await connection.channel()).declare_queue(queue_name, durable=True)

    async def take() -> Any:
        async with await aio_pika.connect(RABBITMQ_URL) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(queue_name, passive=True)
            message = await queue.get(timeout=10)
            await message.ack()
            await queue.delete()
            return message

    asyncio.run(declare())
    # The default exchange routes by queue name.
    record = start(server, f"{RABBITMQ_URL}?routing_key={queue_name}")
    wait_for_webhook(server, record["event_id"], "delivered")
    message = asyncio.run(take())
    assert message.message_id == record["event_id"] and message.content_type == "application/json"
    assert message.headers["X-Machinery-Event-Id"] == record["event_id"]
    assert json.loads(message.body)["output"] == {"ok": 1}


def test_the_record_is_published_to_a_jetstream_subject(server: str) -> None:
    require("127.0.0.1", 4222, "NATS")
    import nats

    name = unique("results")

    async def make_stream() -> None:
        client = await nats.connect(NATS_URL)
        await client.jetstream().add_stream(name=name, subjects=[f"{name}.done"])
        await client.close()

    async def read_stream() -> Any:
        client = await nats.connect(NATS_URL)
        try:
            js = client.jetstream()
            message = await js.get_last_msg(name, f"{name}.done")
            await js.delete_stream(name)
            return message
        finally:
            await client.close()

    asyncio.run(make_stream())
    record = start(server, f"{NATS_URL}?subject={name}.done&jetstream=true")
    wait_for_webhook(server, record["event_id"], "delivered")
    message = asyncio.run(read_stream())
    assert message.headers["Nats-Msg-Id"] == record["event_id"]
    assert json.loads(message.data)["event_id"] == record["event_id"]


def test_an_unreachable_broker_is_retried_then_given_up(server: str) -> None:
    record = start(server, f"redis://127.0.0.1:{free_port()}/0?stream=nowhere")
    webhook = wait_for_webhook(server, record["event_id"], "failed")
    assert webhook["attempts"] == 2 and "Connection" in webhook["last_error"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:6379/0", "needs ?stream="),
        ("nats://127.0.0.1:4222?subject=x&queue=y", "unknown parameter 'queue'"),
        ("amqp://169.254.169.254/", "MACHINERY_DENIED_TARGETS"),
        ("ftp://127.0.0.1/", "must be an http:// or https:// URL, or a broker's"),
    ],
)
def test_broker_callback_urls_are_checked_when_the_event_arrives(server: str, url: str, message: str) -> None:
    status, body = request("POST", f"{server}/e/echo", {"data": {}, "callback_url": url})
    assert status == 422, body
    assert message in json.dumps(body)
