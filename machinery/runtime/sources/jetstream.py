"""NATS JetStream sources on nats-py: a durable pull consumer on a stream (optionally one subject of it).

The consumer fetches at most ``batch`` messages at a time, and none while the worker is saturated. A
message's dedup key is its ``Nats-Msg-Id`` header when the publisher set one, else its sequence number
in the stream, qualified by the stream's creation time (a stream deleted and created again numbers its
messages from 1 again). Rejected messages are terminated (``+TERM``: never delivered again; JetStream
publishes an advisory that a dead-letter consumer can follow).
"""

from __future__ import annotations

import nats
from nats.errors import TimeoutError as FetchTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from machinery.runtime.sources.consumer import Consumer
from machinery.runtime.sources.intake import Incoming

_FETCH_WAIT_SECONDS = 1.0


class JetStreamConsumer(Consumer):
    """Events from a NATS JetStream pull subscription."""

    _subscription: JetStreamContext.PullSubscription | None = None

    @property
    def durable(self) -> str:
        return str(self.source.option("durable") or f"machinery-{self.source.name}")

    async def consume(self) -> None:
        stream = str(self.source.option("stream"))
        batch = int(self.source.option("batch"))
        # machinery reconnects itself (with back-off, visible in the source's state), not the library.
        client = await nats.connect(self.source.url, allow_reconnect=False, connect_timeout=5)
        try:
            js = client.jetstream()
            info = await js.stream_info(stream)
            created = str(info.created or "")
            config = ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=float(self.source.option("ack_wait_seconds")),
                max_ack_pending=max(batch * 4, 256),
                filter_subject=self.source.option("subject") or None,
            )
            await js.add_consumer(stream, config)
            subscription = await js.pull_subscribe_bind(self.durable, stream)
            self._subscription = subscription
            self.connected(self.intake.host.clock())
            while True:
                await self.wait_for_room()
                if client.is_closed:
                    raise ConnectionError("the connection to NATS was closed")
                try:
                    messages = await subscription.fetch(batch, timeout=_FETCH_WAIT_SECONDS)
                except (FetchTimeout, TimeoutError):
                    # Idle: make sure the durable consumer still exists (deleted, it is made again).
                    try:
                        await subscription.consumer_info()
                    except NotFoundError:
                        raise ConnectionError(f"the durable consumer {self.durable} was deleted") from None
                    continue
                incoming = []
                for message in messages:
                    headers = message.headers or {}
                    key = (
                        headers.get("Nats-Msg-Id") or f"{stream}@{created}:{message.metadata.sequence.stream}"
                    )
                    incoming.append(Incoming(key, message.data))
                outcomes = await self.handle(incoming)
                for message, outcome in zip(messages, outcomes, strict=True):
                    if outcome.settlement == "rejected":
                        await message.term()
                    elif outcome.settlement == "retry":
                        await message.nak(delay=1.0)
                    else:
                        await message.ack()
        finally:
            self._subscription = None
            if not client.is_closed:
                await client.close()

    async def lag(self) -> int | None:
        subscription = self._subscription
        if subscription is None:
            return None
        info = await subscription.consumer_info()
        return int(info.num_pending or 0)
