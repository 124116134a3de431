"""Which sources a process consumes, and what it reports of them.

Every process that runs a worker (``machinery serve`` unless ``--no-worker``, ``machinery worker``)
runs a :class:`SourceManager` on its worker's event loop, unless ``MACHINERY_CONSUME_SOURCES`` is off.
Every ``MACHINERY_SOURCE_REFRESH_SECONDS`` it reads the stored sources, starts a consumer for each
enabled one it does not run yet (or runs at an older revision), stops those deleted or disabled, and
writes its status of each (connected, lag, counters, last error) as ``source-status/<id>/<owner>``,
which the API adds up over processes. All processes consume all sources: the broker balances messages
between them (competing consumers on a RabbitMQ queue, one durable JetStream consumer pulled by all,
one Redis consumer group), a process that dies hands its unacknowledged messages back to the broker,
and adding processes adds consumers with no election or hand-over to wait for.

:func:`counters` gives every manager's counters in this process, for a metrics exporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from machinery.errors import StorageError
from machinery.runtime.sources import (
    SOURCE_KIND,
    STATUS_KIND,
    Source,
    SourceStatus,
    missing_library,
    status_key,
)
from machinery.runtime.sources.consumer import Consumer
from machinery.runtime.sources.intake import Host, Intake

if TYPE_CHECKING:
    from machinery.runtime.worker import WorkerSettings

logger = logging.getLogger(__name__)

_LAG_TIMEOUT_SECONDS = 2.0
_MANAGERS: weakref.WeakSet[SourceManager] = weakref.WeakSet()


def consumer_for(source: Source, intake: Intake, status: SourceStatus) -> Consumer:
    """The consumer of a source's type (its broker library is imported here, when first needed)."""
    if source.type == "rabbitmq":
        from machinery.runtime.sources.rabbitmq import RabbitMQConsumer

        return RabbitMQConsumer(source, intake, status)
    if source.type == "nats":
        from machinery.runtime.sources.jetstream import JetStreamConsumer

        return JetStreamConsumer(source, intake, status)
    from machinery.runtime.sources.redis_streams import RedisStreamConsumer

    return RedisStreamConsumer(source, intake, status)


class _Running:
    def __init__(self, source: Source, consumer: Consumer | None, task: asyncio.Task[None] | None) -> None:
        self.source = source
        self.consumer = consumer
        self.task = task
        self.status = consumer.status if consumer is not None else SourceStatus(owner="")


class SourceManager:
    """Runs the consumers of one process's worker ``host``."""

    def __init__(
        self,
        host: Host,
        refresh_seconds: float = 2.0,
        data_limit: int = 256 * 1024,
        time_scale: float = 1.0,
        lease_seconds: float = 30.0,
    ) -> None:
        self.host = host
        self.refresh_seconds = refresh_seconds
        self.data_limit = data_limit
        self.time_scale = time_scale
        self.lease_seconds = lease_seconds
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        _MANAGERS.add(self)

    @classmethod
    def of_worker(cls, worker: Host, settings: WorkerSettings) -> SourceManager:
        """The manager of a worker, with its settings."""
        return cls(
            worker,
            refresh_seconds=settings.source_refresh_seconds,
            data_limit=settings.data_limit,
            time_scale=settings.time_scale,
            lease_seconds=settings.lease_seconds,
        )

    async def run(self) -> None:
        """Reconcile and report until cancelled; then stop every consumer and withdraw its status."""
        try:
            while True:
                try:
                    await self.reconcile()
                    await self.report()
                except StorageError as exc:
                    logger.warning("sources: storage failed (%s); trying again", exc.message)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.refresh_seconds)
        finally:
            for source_id in list(self._running):
                await self._stop(source_id)

    def refresh(self) -> None:
        """Look at the stored sources now (call on the worker's loop)."""
        self._wake.set()

    async def reconcile(self) -> None:
        stored = await self.host.blocking(self.host.storage.list_resources, SOURCE_KIND)
        wanted = {source.source_id: source for source in (Source.from_json(body) for _key, body in stored)}
        for source_id, running in list(self._running.items()):
            source = wanted.get(source_id)
            if source is None or not source.enabled or source.revision != running.source.revision:
                await self._stop(source_id)
        for source_id, source in wanted.items():
            if source.enabled and source_id not in self._running:
                self._start(source)

    def _start(self, source: Source) -> None:
        status = SourceStatus(owner=self.host.owner)
        missing = missing_library(source.type)
        if missing is not None:
            status.last_error = missing
            running = _Running(source, None, None)
            running.status = status
            self._running[source.source_id] = running
            logger.error("source %s cannot run here: %s", source.name, missing)
            return
        intake = Intake(self.host, source, status, self.data_limit, self.time_scale, self.lease_seconds)
        consumer = consumer_for(source, intake, status)
        task = asyncio.create_task(consumer.run(), name=f"machinery-source-{source.name}")
        self._running[source.source_id] = _Running(source, consumer, task)

    async def _stop(self, source_id: str) -> None:
        running = self._running.pop(source_id)
        if running.task is not None:
            running.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        key = status_key(source_id, self.host.owner)
        with contextlib.suppress(StorageError):
            await self.host.blocking(self.host.storage.delete_resource, STATUS_KIND, key)

    async def report(self) -> None:
        """Write this process's status of each source it runs."""
        now = self.host.clock()
        for source_id, running in self._running.items():
            status = running.status
            if running.consumer is not None and status.connected:
                try:
                    status.lag = await asyncio.wait_for(running.consumer.lag(), _LAG_TIMEOUT_SECONDS)
                except Exception as exc:  # the broker may be going away: the consumer will notice
                    logger.debug("source %s: reading its lag failed: %s", running.source.name, exc)
            status.updated_at = now
            key = status_key(source_id, self.host.owner)
            await self.host.blocking(self.host.storage.put_resource, STATUS_KIND, key, status.to_json())

    def counters(self) -> list[dict[str, Any]]:
        """This manager's counters per source (for metrics)."""
        return [
            {"source": running.source.name, "owner": self.host.owner, **running.status.to_json()}
            for running in self._running.values()
        ]


def counters() -> list[dict[str, Any]]:
    """The counters of every source consumed in this process: ``source``, ``started``, ``duplicates``,
    ``rejected``, ``retried``, ``reconnects``, ``connected``, ``lag``... (one row per source and worker)."""
    return [row for manager in list(_MANAGERS) for row in manager.counters()]
