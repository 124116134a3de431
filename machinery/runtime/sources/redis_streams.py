"""Redis Streams sources on redis-py: a consumer group, one consumer per process.

Each process reads new entries (``XREADGROUP ... >``) at most ``batch`` at a time, and none while its
worker is saturated; entries left pending by a consumer that died (or by a retry) are claimed again
once idle for ``claim_idle_seconds`` (``XAUTOCLAIM``). An entry's dedup key is its id in the stream.
Its body is the value of one field (``field``, default ``body``). Rejected entries are acknowledged, and
first copied to ``dead_letter_stream`` when the source names one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from machinery.runtime.sources.consumer import Consumer
from machinery.runtime.sources.intake import Incoming

_BLOCK_MILLISECONDS = 1000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(read: Any) -> list[Any]:
    """The entries of one stream in an ``XREADGROUP`` reply (RESP2: a list of pairs; RESP3: a map)."""
    if not read:
        return []
    if isinstance(read, dict):
        return list(next(iter(read.values())))
    return list(read[0][1])


class RedisStreamConsumer(Consumer):
    """Events from a Redis stream, read by a consumer group."""

    _client: aioredis.Redis | None = None

    async def consume(self) -> None:
        stream = str(self.source.option("stream"))
        group = str(self.source.option("group"))
        batch = int(self.source.option("batch"))
        idle_ms = int(float(self.source.option("claim_idle_seconds")) * 1000)
        consumer = self.intake.host.owner
        client = aioredis.Redis.from_url(self.source.url, socket_connect_timeout=5)
        try:
            start = "0" if self.source.option("start") == "earliest" else "$"
            try:
                await client.xgroup_create(stream, group, id=start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._client = client
            self.connected(self.intake.host.clock())
            reclaim_from = "0-0"
            next_reclaim = 0.0
            loop = asyncio.get_running_loop()
            while True:
                await self.wait_for_room()
                entries: list[Any] = []
                if reclaim_from != "0-0" or loop.time() >= next_reclaim:
                    # Entries idle in the group's pending list (a dead consumer's, or retried).
                    claimed: Any = await client.xautoclaim(
                        stream, group, consumer, idle_ms, reclaim_from, count=batch
                    )
                    reclaim_from = _text(claimed[0])
                    entries = [entry for entry in claimed[1] if entry and entry[1] is not None]
                    if reclaim_from == "0-0":
                        next_reclaim = loop.time() + max(0.1, idle_ms / 2000)
                if not entries:
                    read: Any = await client.xreadgroup(
                        group, consumer, {stream: ">"}, count=batch, block=_BLOCK_MILLISECONDS
                    )
                    entries = _entries(read)
                if entries:
                    await self._settle(client, stream, group, entries)
        finally:
            self._client = None
            await client.aclose()

    async def _settle(self, client: aioredis.Redis, stream: str, group: str, entries: list[Any]) -> None:
        field = str(self.source.option("field")).encode()
        incoming = []
        for entry_id, fields in entries:
            body = fields.get(field)
            # An entry without the body field is rejected as not JSON (an empty body).
            incoming.append(Incoming(f"{stream}:{_text(entry_id)}", body if isinstance(body, bytes) else b""))
        outcomes = await self.handle(incoming)
        done = []
        dead_letters = self.source.option("dead_letter_stream")
        for (entry_id, fields), outcome in zip(entries, outcomes, strict=True):
            if outcome.settlement == "retry":
                continue  # stays pending: claimed again once idle
            if outcome.settlement == "rejected" and dead_letters:
                copy = {
                    **fields,
                    b"machinery-reason": (outcome.reason or "").encode(),
                    b"machinery-id": entry_id,
                }
                await client.xadd(str(dead_letters), copy)
            done.append(entry_id)
        if done:
            await client.xack(stream, group, *done)

    async def lag(self) -> int | None:
        client = self._client
        if client is None:
            return None
        group = str(self.source.option("group"))
        for info in await client.xinfo_groups(str(self.source.option("stream"))):
            if _text(info.get("name")) == group:
                lag = info.get("lag")
                return None if lag is None else int(lag) + int(info.get("pending") or 0)
        return None
