"""In-process wake-ups for requests that wait for an execution to finish."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)


class Notifier:
    """Waiters register before they check storage, so a finish between check and wait is not missed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, list[threading.Event]] = defaultdict(list)

    def register(self, execution_id: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiters[execution_id].append(event)
        return event

    def unregister(self, execution_id: str, event: threading.Event) -> None:
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

    def finished(self, execution_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(execution_id, [])
        for event in waiters:
            event.set()


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
