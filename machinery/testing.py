"""Fakes that unit tests of the runtime assert against (procrastinate's ``InMemoryConnector`` is the model).

- :class:`RecordingStorage` is a storage that records every call made to it, in order, with its
  arguments, and otherwise behaves exactly like the backend it wraps (by default the memory backend:
  SQLite's ``:memory:`` database behind the same code as the default backend). A test can make a
  call fail (:meth:`RecordingStorage.fail_next`) and take a claimed item's lease over as another worker
  would (:meth:`RecordingStorage.take_over_all`).
- :class:`FakeInvoker` answers task calls from Python functions, without sockets, and records them.

With both, :meth:`machinery.runtime.worker.Worker.run_until_idle` and
:meth:`machinery.runtime.express.ExpressRunner.execute` run on the test's own event loop: no thread, no
socket, no sleep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from machinery.engine.types import InvokeTask
from machinery.runtime.tasks import CallIdentity, TaskOutcome
from machinery.storage.base import CommitResult, Storage, WorkItem


@dataclass(frozen=True)
class StorageCall:
    """One call a :class:`RecordingStorage` received."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    #: The ident of the thread it was made on.
    thread: int = 0


class RecordingStorage:
    """A :class:`~machinery.storage.base.Storage` that records its calls (see the module docstring).

    It wraps rather than subclasses, so that every method of the interface, present and future, is
    recorded; ``isinstance`` checks against a backend class see the wrapper, not the backend.
    """

    def __init__(self, inner: Storage | None = None, blocking_io: bool | None = None) -> None:
        """``blocking_io``: what the wrapper claims (``True``: the runtime calls it from threads, as it
        does PostgreSQL); by default the backend's."""
        if inner is None:
            from machinery.storage.memory import MemoryStorage

            inner = MemoryStorage()
        self.inner = inner
        self._blocking_io = blocking_io
        self.calls: list[StorageCall] = []
        self._failures: dict[str, list[BaseException]] = {}
        self._last_commit_results: list[CommitResult | Exception] = []

    @property
    def blocking_io(self) -> bool:
        return self.inner.blocking_io if self._blocking_io is None else self._blocking_io

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name.startswith("_") or not callable(target):
            return target

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(StorageCall(name, args, kwargs, threading.get_ident()))
            pending = self._failures.get(name)
            if pending:
                raise pending.pop(0)
            result = target(*args, **kwargs)
            if name == "commit_many":
                self._last_commit_results = list(result)
            return result

        return recorded

    # what tests ask ------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[StorageCall]:
        """The calls of ``method``, in order."""
        return [call for call in self.calls if call.method == method]

    def methods(self) -> list[str]:
        """The methods called, in order (``["claim_work", "get_branch", "commit_many", ...]``)."""
        return [call.method for call in self.calls]

    def forget(self) -> None:
        """Drop the calls recorded so far."""
        self.calls.clear()

    def fail_next(self, method: str, error: BaseException) -> None:
        """Make the next call of ``method`` raise ``error`` (without reaching the backend)."""
        self._failures.setdefault(method, []).append(error)

    def take_over_all(self, owner: str = "intruder") -> list[WorkItem]:
        """Claim every item for ``owner``, as another worker would once their leases expired: their
        fences move on, so their first owner's commits are refused (:class:`LeaseLost`)."""
        far_future = 4_000_000_000.0  # past every lease (and every due time) a test sets
        return self.inner.claim_work(owner, far_future, 10_000, 30.0)

    def last_commit_results(self) -> list[CommitResult | Exception]:
        """What the last ``commit_many`` call returned, one entry per commit."""
        return list(self._last_commit_results)


@dataclass
class FakeInvoker:
    """Answers task calls by resource from Python functions of the state's input; records every call.

    ``answers["upper"] = lambda payload: {"message": payload["message"].upper()}``. A function may raise
    :class:`TaskError` to fail the task with an ASL error. ``before_answer`` runs (awaited) before each
    answer, so that a test can act while the call is in flight (take its lease over, stop the execution).
    """

    answers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    calls: list[tuple[str, Any, str]] = field(default_factory=list)
    before_answer: Callable[[InvokeTask, CallIdentity], Any] | None = None

    async def invoke(self, effect: InvokeTask, identity: CallIdentity) -> TaskOutcome:
        """Record the call, then answer what the test scripted for its resource."""
        self.calls.append((effect.resource, effect.payload, identity.idempotency_key(effect)))
        if self.before_answer is not None:
            outcome = self.before_answer(effect, identity)
            if asyncio.iscoroutine(outcome):
                await outcome
        await asyncio.sleep(0)  # a real call yields to the loop: other executions go on meanwhile
        answer = self.answers.get(effect.resource)
        if answer is None:
            return TaskOutcome(error="States.Runtime", cause=f"Unknown task resource '{effect.resource}'")
        try:
            return TaskOutcome(output=answer(effect.payload))
        except TaskError as exc:
            return TaskOutcome(error=exc.error, cause=exc.cause)

    async def close(self) -> None:
        """Nothing to close (the worker and the express runner close their invoker when they stop)."""


class TaskError(Exception):
    """Raised by a :class:`FakeInvoker` answer: the task fails with ``error`` and ``cause``."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


def resources_called(invoker: FakeInvoker) -> Sequence[str]:
    """The resources a :class:`FakeInvoker` was called for, in order."""
    return [resource for resource, _payload, _key in invoker.calls]
