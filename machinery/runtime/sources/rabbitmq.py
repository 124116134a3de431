"""RabbitMQ (AMQP 0-9-1) sources on aio-pika: one queue, consumed with manual acknowledgements.

The channel's prefetch count bounds the messages delivered and not yet acknowledged; while the worker
is saturated the consumer stops taking them, so the broker stops sending. A message's dedup key is its
``message_id`` property; a message without one is keyed by the SHA-256 of its body (so two identical
bodies without ids are one message: publishers should set ``message_id``). Rejected messages are
rejected without requeueing: dead-lettered when the queue has a dead-letter exchange, else dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from machinery.runtime.sources.consumer import Consumer
from machinery.runtime.sources.intake import Incoming


def message_key(message: AbstractIncomingMessage) -> str:
    if message.message_id:
        return str(message.message_id)
    return "sha256:" + hashlib.sha256(message.body).hexdigest()


class RabbitMQConsumer(Consumer):
    """Events from a RabbitMQ queue (AMQP 0-9-1)."""

    _channel: AbstractChannel | None = None

    async def consume(self) -> None:
        queue_name = str(self.source.option("queue"))
        prefetch = int(self.source.option("prefetch"))
        connection = await aio_pika.connect(self.source.url, timeout=10)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=prefetch)
            try:
                queue = await channel.declare_queue(queue_name, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                if not self.source.option("declare"):
                    raise
                # The failed passive declaration closed the channel: declare it durable on a new one.
                channel = await connection.channel()
                await channel.set_qos(prefetch_count=prefetch)
                queue = await channel.declare_queue(queue_name, durable=True)
            self._channel = channel
            # ``connection.closed()`` resolves only on a close we asked for, not when the broker goes
            # away (aio-pika 10): the close callbacks are told of both, and of a channel closed alone.
            closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

            def lost(*_: Any) -> None:
                if not closed.done():
                    closed.set_result(None)

            connection.close_callbacks.add(lost)
            channel.close_callbacks.add(lost)
            inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
            tag = await queue.consume(inbox.put, no_ack=False)
            self.connected(self.intake.host.clock())
            try:
                while True:
                    await self.wait_for_room()
                    first: asyncio.Future[Any] = asyncio.ensure_future(inbox.get())
                    done, _ = await asyncio.wait({first, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if first not in done:
                        first.cancel()
                        raise ConnectionError("the connection to RabbitMQ was closed")
                    batch = [first.result()]
                    while len(batch) < prefetch and not inbox.empty():
                        batch.append(inbox.get_nowait())
                    await self._settle(batch)
            finally:
                closed.cancel()
                self._channel = None
                with contextlib.suppress(Exception):
                    await queue.cancel(tag)

    async def _settle(self, batch: list[AbstractIncomingMessage]) -> None:
        outcomes = await self.handle([Incoming(message_key(m), m.body) for m in batch])
        if all(outcome.settlement in ("started", "duplicate") for outcome in outcomes):
            # Every earlier delivery on the channel is settled: one frame acknowledges the whole batch.
            await batch[-1].ack(multiple=True)
            return
        for message, outcome in zip(batch, outcomes, strict=True):
            if outcome.settlement == "rejected":
                await message.reject(requeue=False)
            elif outcome.settlement == "retry":
                await message.nack(requeue=True)
            else:
                await message.ack()

    async def lag(self) -> int | None:
        channel = self._channel
        if channel is None or channel.is_closed:
            return None
        declared: Any = await channel.declare_queue(str(self.source.option("queue")), passive=True)
        count = declared.declaration_result.message_count
        return None if count is None else int(count)
