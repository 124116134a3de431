"""Activities and their workers: create, read, delete, and hand out queued activity tasks.

Tasks are queued by the runtime (:mod:`machinery.runtime.activities`); :func:`take_task` gives the oldest
one whose task is still waiting (tasks that timed out or whose execution ended meanwhile are dropped),
long-polling up to ``wait`` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from machinery.engine.interpreter import decode_task_token
from machinery.engine.types import ACTIVE, PHASE_TASK
from machinery.runtime.activities import ACTIVITY, ACTIVITY_TASK, wake_key
from machinery.runtime.notify import Notifier
from machinery.storage.base import Storage


@dataclass(frozen=True)
class Activity:
    name: str
    created_at: float


@dataclass(frozen=True)
class ActivityTask:
    token: str
    input: str


def create_activity(storage: Storage, name: str, now: float | None = None) -> tuple[Activity, bool]:
    """Create an activity; an existing one of that name is given back (``False``: not created)."""
    created = time.time() if now is None else now
    if storage.insert_resource(ACTIVITY, name, {"created_at": created}):
        return Activity(name, created), True
    found = find_activity(storage, name)
    assert found is not None
    return found, False


def find_activity(storage: Storage, name: str) -> Activity | None:
    body = storage.get_resource(ACTIVITY, name)
    return None if body is None else Activity(name, float(body["created_at"]))


def list_activities(storage: Storage) -> list[Activity]:
    return [Activity(name, float(body["created_at"])) for name, body in storage.list_resources(ACTIVITY)]


def delete_activity(storage: Storage, name: str) -> None:
    storage.delete_resource(ACTIVITY, name)


def _still_waiting(storage: Storage, token: str) -> bool:
    decoded = decode_task_token(token)
    if decoded is None:
        return False
    branch = storage.get_branch(decoded[1])
    return (
        branch is not None
        and branch.status == ACTIVE
        and branch.phase == PHASE_TASK
        and branch.task_token == token
    )


def take_task(
    storage: Storage, notifier: Notifier, name: str, wait: float, poll: float = 1.0
) -> ActivityTask | None:
    """The oldest waiting task of the activity, waiting up to ``wait`` seconds for one; None if none came.

    Tasks queued by this process wake the wait at once; ``poll`` bounds the wait for other processes'.
    """
    deadline = time.monotonic() + wait
    while True:
        waiter = notifier.register(wake_key(name))
        try:
            while True:
                taken = storage.take_resource(ACTIVITY_TASK, f"{name}/")
                if taken is None:
                    break
                body: dict[str, Any] = taken[1]
                if _still_waiting(storage, str(body["token"])):
                    return ActivityTask(str(body["token"]), str(body["input"]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            waiter.wait(min(remaining, poll))
        finally:
            notifier.unregister(wake_key(name), waiter)
