"""In-process wake-ups for requests that wait for an execution to finish.

Whoever finishes an execution in this process (the worker, the express runner) tells the waiters how it
ended (:class:`Finish`, or the whole record), so that a request waiting for it answers without reading
the record back; a wake-up from elsewhere (a stop, the watcher of other processes) carries nothing and
the waiter reads storage.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from machinery.status import ExecutionStatus
from machinery.storage.base import ExecutionRecord

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finish:
    """How an execution ended, as its commit stored it: what its record changes to."""

    status: ExecutionStatus
    output: Any
    error: str | None
    cause: str | None
    finished_at: float

    def applied_to(self, record: ExecutionRecord) -> ExecutionRecord:
        """``record`` (as it was while running) as storage now holds it."""
        return replace(
            record,
            status=self.status,
            output=self.output,
            error=self.error,
            cause=self.cause,
            finished_at=self.finished_at,
        )


class Waiter:
    """A one-shot wake-up (a lock held until set: lighter than a ``threading.Event``, whose condition
    and second lock cost a request that waits as much as its JSON encoding did)."""

    __slots__ = ("_lock", "_set", "finish")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # pylint: disable=consider-using-with  # released by set()
        self._set = False
        #: What the finisher said of the outcome, when it said it.
        self.finish: Finish | ExecutionRecord | None = None

    def set(self, finish: Finish | ExecutionRecord | None = None) -> None:
        if self._set:
            return
        self.finish = finish
        self._set = True
        self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """True once set (at once if it was), False when ``timeout`` seconds passed first."""
        if self._set:
            return True
        if self._lock.acquire(timeout=max(0.0, timeout)):  # pylint: disable=consider-using-with
            self._lock.release()
            return True
        return self._set

    def outcome(self, record: ExecutionRecord) -> ExecutionRecord | None:
        """The finished record, from ``record`` and what the finisher said; None: read storage."""
        if isinstance(self.finish, ExecutionRecord):
            return self.finish
        if isinstance(self.finish, Finish):
            return self.finish.applied_to(record)
        return None


class Notifier:
    """Waiters register before they check storage, so a finish between check and wait is not missed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[Waiter]] = defaultdict(list)

    def register(self, execution_id: str) -> Waiter:
        waiter = Waiter()
        with self._lock:
            self._waiters[execution_id].append(waiter)
        return waiter

    def unregister(self, execution_id: str, event: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(execution_id)
            if waiters and event in waiters:
                waiters.remove(event)
                if not waiters:
                    del self._waiters[execution_id]

    def waited_for(self) -> list[str]:
        """The executions somebody waits for now."""
        with self._lock:
            return list(self._waiters)

    def finished(self, execution_id: str, finish: Finish | ExecutionRecord | None = None) -> None:
        """Wake the waiters of ``execution_id``, telling them how it ended when the caller knows."""
        with self._lock:
            waiters = self._waiters.pop(execution_id, None)
        for waiter in waiters or ():
            waiter.set(finish)


class FinishWatcher:
    """Wakes waiters whose execution another process finished (a sibling ``serve`` process, a
    ``machinery worker``): every ``interval`` seconds while anybody waits, one storage query asks which of
    the waited-for executions have ended. Executions that end in this process wake their waiters at
    once, without it."""

    def __init__(
        self, notifier: Notifier, finished_among: Callable[[Sequence[str]], list[str]], interval: float
    ) -> None:
        self.notifier = notifier
        self.finished_among = finished_among
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="machinery-finish-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            waited = self.notifier.waited_for()
            if not waited:
                continue
            try:
                ended = self.finished_among(waited)
            except Exception:  # storage away for a moment: the waiters' own timeouts still hold
                logger.warning("looking for executions finished elsewhere failed", exc_info=True)
                continue
            for execution_id in ended:
                self.notifier.finished(execution_id)
