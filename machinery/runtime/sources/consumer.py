"""What every broker's consumer shares: connecting again with back-off, back-pressure, settling a batch.

A consumer's :meth:`Consumer.consume` connects, subscribes and handles batches until the connection
fails; :meth:`Consumer.run` then waits a back-off (:func:`reconnect_delay`) and connects again, for as
long as the source runs. Before it takes a batch it waits while its worker is saturated
(:meth:`Consumer.wait_for_room`): messages then stay with the broker (RabbitMQ stops at the prefetch
count, NATS and Redis are not asked for more).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from collections.abc import Callable, Sequence

from machinery.runtime.sources import Source, SourceStatus
from machinery.runtime.sources.intake import Incoming, Intake, Outcome

logger = logging.getLogger(__name__)

#: Seconds before the first reconnection; each next one waits twice as long, up to the cap.
FIRST_RECONNECT_SECONDS = 0.2
MAX_RECONNECT_SECONDS = 10.0
#: How often a saturated consumer looks whether its worker has room again.
ROOM_POLL_SECONDS = 0.02


def reconnect_delay(
    failures: int, rand: Callable[[], float] = random.random, cap: float = MAX_RECONNECT_SECONDS
) -> float:
    """Seconds to wait after ``failures`` consecutive failed connections (1 for the first): exponential,
    capped, with "equal jitter" so that processes reconnecting to a restarted broker spread out."""
    delay = min(cap, FIRST_RECONNECT_SECONDS * 2.0 ** (failures - 1))
    return delay / 2 + rand() * delay / 2


class Consumer(abc.ABC):
    """One source consumed in one process."""

    def __init__(self, source: Source, intake: Intake, status: SourceStatus) -> None:
        self.source = source
        self.intake = intake
        self.status = status
        self._failures = 0

    async def run(self) -> None:
        """Consume until cancelled, connecting again with back-off whenever the connection fails."""
        while True:
            try:
                await self.consume()
                raise ConnectionError("the broker closed the connection")
            except asyncio.CancelledError:  # pylint: disable=try-except-raise  # said outright: it ends the loop
                raise
            except Exception as exc:  # every failure of a broker library: reconnect
                self._failures += 1
                self.status.connected = False
                self.status.reconnects += 1
                self.status.last_error = f"{type(exc).__name__}: {exc}"[:500]
                delay = reconnect_delay(self._failures)
                logger.warning(
                    "source %s: %s; connecting again in %.1fs",
                    self.source.name, self.status.last_error, delay, extra={"source": self.source.name},
                )  # fmt: skip
                await asyncio.sleep(delay)

    def connected(self, now: float) -> None:
        """The consumer is subscribed: reset the back-off."""
        self._failures = 0
        self.status.connected = True
        self.status.connected_at = now
        self.status.last_error = None
        logger.info("source %s connected", self.source.name, extra={"source": self.source.name})

    async def wait_for_room(self) -> None:
        """Back-pressure: wait while the worker runs as much work as it may."""
        if not self.intake.saturated():
            return
        self.status.saturated = True
        while self.intake.saturated():
            await asyncio.sleep(ROOM_POLL_SECONDS)
        self.status.saturated = False

    async def handle(self, batch: Sequence[Incoming]) -> list[Outcome]:
        outcomes = await self.intake.process(batch)
        if any(outcome.settlement == "retry" for outcome in outcomes):
            # Storage is down or the workflow is gone: do not spin on redeliveries.
            self._failures += 1
            await asyncio.sleep(reconnect_delay(self._failures))
        else:
            self._failures = 0
        return outcomes

    @abc.abstractmethod
    async def consume(self) -> None:
        """Connect, subscribe and handle batches until the connection fails (raise) or is cancelled."""

    @abc.abstractmethod
    async def lag(self) -> int | None:
        """Messages waiting at the broker for this source (None: unknown now)."""
