"""The statuses of an execution: Step Functions' set, one enumeration for every layer.

A :class:`~enum.StrEnum`, so the values stored in every backend and shown by the API are the plain
strings they always were (``"RUNNING"``), and a status read back from storage compares equal to its
member.
"""

from __future__ import annotations

from enum import StrEnum


class ExecutionStatus(StrEnum):
    """Where an execution is: running, or one of the four ways it ends."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"

    @property
    def end_event_type(self) -> str:
        """The history event an execution ending with this status records (``ExecutionAborted``)."""
        return _END_EVENTS[self]


_END_EVENTS = {
    ExecutionStatus.RUNNING: "ExecutionStarted",
    ExecutionStatus.SUCCEEDED: "ExecutionSucceeded",
    ExecutionStatus.FAILED: "ExecutionFailed",
    ExecutionStatus.TIMED_OUT: "ExecutionTimedOut",
    ExecutionStatus.ABORTED: "ExecutionAborted",
}


#: The statuses an execution ends with.
TERMINAL_STATUSES = frozenset(ExecutionStatus) - {ExecutionStatus.RUNNING}
