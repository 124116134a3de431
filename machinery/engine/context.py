"""What a state sees besides its input: the context object (``$$``, ``$states.context``) and ``$states``.

Both are rebuilt from plain data (the execution, the branch, the state) whenever a state needs them, so
they are never persisted and always agree with the branch being run.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from machinery.asl.model import State
from machinery.engine.types import Branch, ExecutionContext

__all__ = ["context_object", "epoch_of", "iso_time", "states_variable"]


# The last second formatted, as (second, "YYYY-MM-DDTHH:MM:SS."): timestamps come in bursts of the same
# second. One tuple, replaced whole, so threads never see half of it.
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")


def iso_time(epoch: float) -> str:
    """Format epoch seconds as Step Functions prints timestamps (UTC, milliseconds).

    The same text as ``datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"``
    (microseconds rounded half to even, then cut to milliseconds), without ``strftime``: glibc's looks
    at the time zone on every call, and this runs for every state entered.
    """
    global _last_second  # pylint: disable=global-statement
    fraction, whole = math.modf(epoch)
    second = int(whole)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached_second, prefix = _last_second
    if cached_second != second:
        moment = time.gmtime(second)
        prefix = (
            f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}"
            f"T{moment.tm_hour:02d}:{moment.tm_min:02d}:{moment.tm_sec:02d}."
        )
        _last_second = (second, prefix)
    return f"{prefix}{micros // 1000:03d}Z"


def epoch_of(iso: str) -> float:
    """The epoch seconds of a timestamp :func:`iso_time` wrote (0.0 for an empty one)."""
    return datetime.fromisoformat(iso).timestamp() if iso else 0.0


def context_object(execution: ExecutionContext, branch: Branch, state: State, now: float) -> dict[str, Any]:
    """The context object of ``state`` running in ``branch``, as Step Functions shows it.

    ``State.RetryCount`` and ``Task.Token`` appear in Task states only, ``Map.Item`` inside Map iterations.
    """
    context: dict[str, Any] = {
        "Execution": {
            "Id": execution.execution_arn,
            "Input": execution.input,
            "Name": execution.name,
            "RoleArn": execution.role_arn,
            "StartTime": execution.start_time,
            "RedriveCount": 0,
        },
        "State": {"EnteredTime": branch.entered_time or iso_time(now), "Name": state.name},
        "StateMachine": {"Id": execution.state_machine_arn, "Name": execution.state_machine_name},
    }
    if state.type == "Task":
        context["State"]["RetryCount"] = sum(branch.retry_counts)
        if branch.task_token:
            context["Task"] = {"Token": branch.task_token}
    if branch.map_item is not None:
        context["Map"] = {"Item": branch.map_item}
    return context


_ABSENT: Any = object()


def states_variable(
    state_input: Any, context: dict[str, Any], *, result: Any = _ABSENT, error_output: Any = _ABSENT
) -> dict[str, Any]:
    """The reserved JSONata variable ``$states``.

    ``input`` and ``context`` always; ``result`` only after a Task, Parallel or Map produced one;
    ``errorOutput`` only in a Catcher.
    """
    states = {"input": state_input, "context": context}
    if result is not _ABSENT:
        states["result"] = result
    if error_output is not _ABSENT:
        states["errorOutput"] = error_output
    return states
