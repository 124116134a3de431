"""Retention: finished executions are deleted ``MACHINERY_RETENTION_DAYS`` after they end.

Every worker runs a :class:`Retention` loop next to its work: a pass deletes at most
``MACHINERY_RETENTION_BATCH`` top-level executions (with their histories, branches, joins, work and child
executions) in one short transaction, so that it never holds the database for long; while there is a
backlog, passes follow each other after a short pause, then one every ``MACHINERY_RETENTION_INTERVAL``
seconds. ``machinery purge --before DATE`` runs the same passes on demand (:func:`purge_finished`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from machinery.errors import StorageError
from machinery.storage.base import Storage

logger = logging.getLogger(__name__)

DAY = 86400.0
#: Pause between two full batches: other writers get the database in between.
BACKLOG_PAUSE = 0.2


@dataclass(frozen=True)
class RetentionSettings:
    """``days`` 0 keeps executions forever."""

    days: float = 90.0
    batch: int = 200
    interval: float = 60.0


#: Keep every execution (a bare :class:`~machinery.runtime.worker.Worker`'s default).
NO_RETENTION = RetentionSettings(days=0)


def purge_finished(storage: Storage, before: float, batch: int = 500) -> int:
    """Delete every top-level execution that finished before ``before`` (epoch seconds), ``batch`` at a
    time; the number deleted."""
    total = 0
    while True:
        deleted = storage.purge_executions(before, batch)
        total += deleted
        if deleted < batch:
            return total


class Retention:
    """The retention loop of one worker (see the module's docstring)."""

    def __init__(
        self, storage: Storage, settings: RetentionSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return self.settings.days > 0

    def sweep(self) -> int:
        """One pass: delete up to a batch of executions past retention; the number deleted."""
        return self.storage.purge_executions(self.clock() - self.settings.days * DAY, self.settings.batch)

    async def run(self, blocking: Callable[..., Awaitable[Any]]) -> None:
        """Sweep until cancelled; ``blocking`` runs a storage call as the worker runs its own."""
        while True:
            try:
                deleted: int = await blocking(self.sweep)
            except StorageError:
                logger.warning("retention pass failed; trying again later", exc_info=True)
                deleted = 0
            if deleted:
                logger.info("retention: deleted %d finished executions", deleted)
            full = deleted >= self.settings.batch
            await asyncio.sleep(BACKLOG_PAUSE if full else self.settings.interval)
