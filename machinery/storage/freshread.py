"""One read shared by the threads that ask for it at once, without ever handing out a stale answer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

_T = TypeVar("_T")


class FreshRead(Generic[_T]):
    """Calls of :meth:`get` from many threads share the runs of ``read``.

    Each call returns what a run that *started after the call began* read, so it sees everything
    committed before it asked, as if it had read alone; at most one run is under way at a time. A call
    that arrives while a run is under way waits for it and takes the next one, which serves every call
    that arrived meanwhile: under load, one read per round trip instead of one per caller. A run that
    fails raises its error in every call it served.
    """

    def __init__(self, read: Callable[[], _T]) -> None:
        self._read = read
        self._changed = threading.Condition(threading.Lock())
        self._running = False
        self._started = 0  # number of the last run started
        self._finished = 0  # number of the last run finished
        self._value: _T | None = None
        self._error: BaseException | None = None  # the last finished run's, if it failed
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """How many calls are waiting for a run to serve them."""
        with self._changed:
            return self._waiting

    def get(self) -> _T:
        """A value read after this call began (by this thread or by a run that served others too)."""
        with self._changed:
            wanted = self._started + 1  # a run under way began before this call: the next one serves it
            while self._finished < wanted and self._running:
                self._waiting += 1
                try:
                    self._changed.wait()
                finally:
                    self._waiting -= 1
            if self._finished >= wanted:
                if self._error is not None:
                    raise self._error
                return self._value  # type: ignore[return-value]  # set by the run that served us
            self._running, self._started = True, wanted
        value: _T | None = None
        error: BaseException | None = None
        try:
            value = self._read()
            return value
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._changed:
                self._running, self._finished = False, wanted
                self._value, self._error = value, error
                self._changed.notify_all()
