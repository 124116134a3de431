"""The real brokers of the event-source tests: the machine's RabbitMQ, NATS and Redis, and private NATS and
Redis servers (on free ports, in a temporary folder) for tests that restart a broker.

Every test names its queue, stream or subject uniquely (:func:`unique`), so parallel runs never meet.
Restarting: RabbitMQ is the machine's own server (durable queues and persistent messages survive it);
NATS and Redis restarts use private servers with their own storage (the machine's Redis keeps nothing
on disk), so the machine's servers are never restarted for them.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from examples.demo import free_port

RABBITMQ_URL = os.environ.get("MACHINERY_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("MACHINERY_TEST_NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("MACHINERY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

Message = tuple[str, bytes]  # (id, body)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(host: str, port: int, what: str) -> None:
    """Skip (fail under CI) when a broker is not listening."""
    if reachable(host, port):
        return
    message = f"{what} is not listening on {host}:{port} (.ci/run starts it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def wait_for_port(host: str, port: int, timeout: float, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while reachable(host, port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} did not {'open' if up else 'close'} in {timeout}s")
        time.sleep(0.1)


class Broker(abc.ABC):
    """One broker as a test uses it: make a queue/stream, publish, look at what is left, restart."""

    type: str

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def options(self, name: str) -> dict[str, Any]:
        """A source body's options for the queue or stream ``name`` (quick redelivery after a crash)."""

    @abc.abstractmethod
    async def prepare(self, name: str) -> None: ...

    @abc.abstractmethod
    async def publish(self, name: str, messages: Sequence[Message]) -> None: ...

    @abc.abstractmethod
    async def left(self, name: str) -> int:
        """Messages not acknowledged yet (waiting or delivered and unacknowledged)."""

    @abc.abstractmethod
    async def replay(self, name: str) -> None:
        """Deliver every message again (the consumer position back to the start)."""

    @abc.abstractmethod
    async def cleanup(self, name: str) -> None: ...

    def restart(self) -> None:
        raise NotImplementedError

    def run(self, coroutine: Any) -> Any:
        return asyncio.run(coroutine)


class RabbitMQ(Broker):
    type = "rabbitmq"

    def options(self, name: str) -> dict[str, Any]:
        return {"queue": name, "prefetch": 50}

    async def _channel(self) -> Any:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        return connection, await connection.channel()

    async def prepare(self, name: str) -> None:
        connection, channel = await self._channel()
        async with connection:
            await channel.declare_queue(name, durable=True)

    async def publish(self, name: str, messages: Sequence[Message]) -> None:
        import aio_pika

        connection, channel = await self._channel()
        async with connection:
            for start in range(0, len(messages), 100):
                await asyncio.gather(
                    *(
                        channel.default_exchange.publish(
                            aio_pika.Message(
                                body, message_id=key, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                            ),
                            routing_key=name,
                        )
                        for key, body in messages[start : start + 100]
                    )
                )

    async def left(self, name: str) -> int:
        connection, channel = await self._channel()
        async with connection:
            queue = await channel.declare_queue(name, passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def replay(self, name: str) -> None:
        raise NotImplementedError("RabbitMQ forgets acknowledged messages: publish them again")

    async def cleanup(self, name: str) -> None:
        connection, channel = await self._channel()
        async with connection:
            await channel.queue_delete(name)

    def restart(self) -> None:
        """Stop the machine's RabbitMQ and start it as the machine does (``rabbitmq-server -detached``)."""
        subprocess.run(["rabbitmqctl", "stop"], check=False, capture_output=True, timeout=60)
        wait_for_port("127.0.0.1", 5672, 30, up=False)
        subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True, timeout=60)
        wait_for_port("127.0.0.1", 5672, 90)


class Nats(Broker):
    type = "nats"

    def options(self, name: str) -> dict[str, Any]:
        return {
            "stream": name,
            "subject": f"{name}.in",
            "durable": f"machinery-{name}",
            "batch": 50,
            "ack_wait_seconds": 2,
        }

    async def prepare(self, name: str) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            await client.jetstream().add_stream(name=name, subjects=[f"{name}.>"])
        finally:
            await client.close()

    async def publish(self, name: str, messages: Sequence[Message]) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            js = client.jetstream()
            for start in range(0, len(messages), 100):
                await asyncio.gather(
                    *(js.publish(f"{name}.in", body) for _key, body in messages[start : start + 100])
                )
        finally:
            await client.close()

    async def left(self, name: str) -> int:
        import nats
        from nats.js.errors import NotFoundError

        client = await nats.connect(self.url)
        try:
            info = await client.jetstream().consumer_info(name, f"machinery-{name}")
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        except NotFoundError:
            return -1  # the source has not made its consumer (again) yet
        finally:
            await client.close()

    async def replay(self, name: str) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            await client.jetstream().delete_consumer(name, f"machinery-{name}")
        finally:
            await client.close()

    async def cleanup(self, name: str) -> None:
        import nats

        client = await nats.connect(self.url)
        try:
            await client.jetstream().delete_stream(name)
        finally:
            await client.close()


class Redis(Broker):
    type = "redis"

    def options(self, name: str) -> dict[str, Any]:
        return {"stream": name, "batch": 50, "claim_idle_seconds": 1}

    def _client(self) -> Any:
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(self.url)

    async def prepare(self, name: str) -> None:
        return None

    async def publish(self, name: str, messages: Sequence[Message]) -> None:
        client = self._client()
        try:
            async with client.pipeline(transaction=False) as pipe:
                for _key, body in messages:
                    pipe.xadd(name, {"body": body})
                await pipe.execute()
        finally:
            await client.aclose()

    async def left(self, name: str) -> int:
        client = self._client()
        try:
            for info in await client.xinfo_groups(name):
                if info["name"] in (b"machinery", "machinery"):
                    return int(info.get("lag") or 0) + int(info.get("pending") or 0)
            return -1
        finally:
            await client.aclose()

    async def replay(self, name: str) -> None:
        client = self._client()
        try:
            await client.xgroup_setid(name, "machinery", "0")
        finally:
            await client.aclose()

    async def cleanup(self, name: str) -> None:
        client = self._client()
        try:
            await client.delete(name)
        finally:
            await client.aclose()


class PrivateServer:
    """A broker server of the test's own on a free port, stopped and started again on the same port and
    storage folder."""

    def __init__(self, command: list[str], port: int, log: Path) -> None:
        self.command = command
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT)
        wait_for_port("127.0.0.1", self.port, 30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
        wait_for_port("127.0.0.1", self.port, 30, up=False)

    def restart(self) -> None:
        self.stop()
        self.start()


def private_nats(folder: Path) -> tuple[Nats, PrivateServer]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder / "jetstream")]
    server = PrivateServer(command, port, folder / "nats.log")
    broker = Nats(f"nats://127.0.0.1:{port}")
    broker.restart = server.restart  # type: ignore[method-assign]
    return broker, server


def private_redis(folder: Path) -> tuple[Redis, PrivateServer]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    # An append-only file synced on every write: what was acknowledged survives the restart.
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
               "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
    server = PrivateServer(command, port, folder / "redis.log")
    broker = Redis(f"redis://127.0.0.1:{port}/0")
    broker.restart = server.restart  # type: ignore[method-assign]
    return broker, server


def numbered(count: int, prefix: str) -> list[Message]:
    """``count`` messages ``{"n": i}`` with ids ``<prefix>-<i>``."""
    return [(f"{prefix}-{i}", json.dumps({"n": i}).encode()) for i in range(count)]


#: Test runs on one machine share its RabbitMQ; a run that restarts it must not do so under another's feet.
RABBITMQ_LOCK = Path(tempfile.gettempdir()) / "machinery-tests-rabbitmq.lock"


@contextmanager
def rabbitmq_lock(exclusive: bool) -> Iterator[None]:
    """Hold the machine-wide lock on the shared RabbitMQ: shared to use it, exclusive to restart it."""
    with RABBITMQ_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            if not exclusive and reachable("127.0.0.1", 5672) is False:
                # A restart by another run has just ended: give the broker its time to listen again.
                with contextlib.suppress(TimeoutError):
                    wait_for_port("127.0.0.1", 5672, 60)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def broker_lock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test of a module that uses the brokers holds the RabbitMQ lock (exclusive when it restarts
    the machine's RabbitMQ)."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    exclusive = (
        request.node.get_closest_marker("restarts_broker") is not None and params.get("kind") == "rabbitmq"
    )
    with rabbitmq_lock(exclusive):
        yield
