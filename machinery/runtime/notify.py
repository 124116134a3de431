"""In-process wake-ups for requests that wait for an execution to finish."""

from __future__ import annotations

import threading
from collections import defaultdict


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

    def finished(self, execution_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(execution_id, [])
        for event in waiters:
            event.set()
