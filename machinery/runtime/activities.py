"""Activities: Task states whose ``Resource`` is an activity ARN wait for a worker to take them.

When such a task is scheduled, the worker queues an *activity task* (its input and task token) in the
storage's resource store and parks the task as a ``.waitForTaskToken`` task: whoever takes it
(``GetActivityTask``) reports back with the token (``SendTaskSuccess``/``Failure``/``Heartbeat``), and
``TimeoutSeconds``/``HeartbeatSeconds`` apply as to any parked task.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from machinery.jsontext import dumps_compact
from machinery.storage.base import Storage

#: Kind of the resources that are activities (key: the activity's name) and their queued tasks (key:
#: ``<activity name>/<enqueue time>/<random>``, so that keys sort in arrival order).
ACTIVITY = "activity"
ACTIVITY_TASK = "activity-task"

_ACTIVITY_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]*:\d{12}:activity:(?P<name>[^:]+)$")


def activity_name(resource: str) -> str | None:
    """The activity a Task resource names, or None when it is not an activity ARN."""
    match = _ACTIVITY_ARN.match(resource)
    return None if match is None else match["name"]


def wake_key(name: str) -> str:
    """What waiters of an activity's tasks register under (:class:`machinery.runtime.notify.Notifier`)."""
    return f"activity:{name}"


def enqueue_activity_task(
    storage: Storage, name: str, token: str, payload: Any, now: float | None = None
) -> None:
    key = f"{name}/{time.time() if now is None else now:020.6f}/{uuid.uuid4().hex[:8]}"
    storage.put_resource(ACTIVITY_TASK, key, {"token": token, "input": dumps_compact(payload)})
