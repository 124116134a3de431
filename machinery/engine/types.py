"""Values the pure interpreter reads and returns: branches, events, effects and history entries.

A *branch* is one thread of control inside an execution: the root branch runs the machine's top-level
states; each Parallel branch and each Map iteration is a child branch whose parent waits for it. A branch
is plain data (:meth:`Branch.to_json`), so storage can persist it after each transition and a restarted
worker can pick it up where it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from machinery.asl.model import ContainerKey

# Branch lifecycle
ACTIVE = "ACTIVE"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"

# What an active branch is waiting for
PHASE_START = "start"  # not yet run (a queued Map iteration, or a fresh branch)
PHASE_TASK = "task"  # a task call is outstanding
PHASE_WAIT = "wait"  # a Wait state's timer
PHASE_RETRY = "retry"  # a Retry back-off timer
PHASE_CHILDREN = "children"  # Parallel branches or Map iterations
PHASE_READ = "read"  # a Map state's ItemReader is reading its items
PHASE_DONE = "done"


@dataclass(frozen=True)
class ExecutionContext:
    """What a branch knows about its execution, for the ``$$`` context object."""

    execution_id: str
    name: str
    input: Any
    start_time: str
    state_machine_id: str
    state_machine_name: str
    role_arn: str = "arn:aws:iam::000000000000:role/machinery"
    region: str = "local"
    account: str = "000000000000"

    @property
    def state_machine_arn(self) -> str:
        """``$$.StateMachine.Id`` as Step Functions shows it: an ARN that ends with the machine's name."""
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine_name}"

    @property
    def execution_arn(self) -> str:
        """``$$.Execution.Id``: an ARN that ends with the machine's and the execution's names."""
        return f"arn:aws:states:{self.region}:{self.account}:execution:{self.state_machine_name}:{self.name}"


@dataclass
class Branch:
    """One thread of control; mutated only by the interpreter, on a copy.

    ``attempt`` counts every task call and every start of children in this branch and never goes back:
    with the branch id it names one call (idempotency keys, task tokens) or one join, even when a loop
    enters the same state again. ``event_cursor`` is the id of the last history event when the interpreter
    can know it (the root branch until its first Parallel or Map); ``entered_event_id`` is the id of the
    current state's ``...StateEntered`` event, 0 when unknown. AWS quotes it in runtime error causes.
    """

    branch_id: str
    execution_id: str
    container: ContainerKey
    parent_id: str | None = None
    index: int = 0
    state: str | None = None
    state_input: Any = None
    entered_time: str = ""
    phase: str = PHASE_START
    attempt: int = 0
    retry_counts: list[int] = field(default_factory=list)
    pending: Any = None
    map_item: dict[str, Any] | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    status: str = ACTIVE
    output: Any = None
    error: str | None = None
    cause: str | None = None
    task_token: str | None = None
    event_cursor: int | None = None
    entered_event_id: int = 0
    #: The root branch of a child execution (a ``DISTRIBUTED`` Map's item): it has a parent branch (the
    #: Map's, in another execution) and yet owns its execution's history and final status.
    execution_root: bool = False
    #: The W3C ``traceparent`` this branch's spans continue: for an execution's root branch the one its
    #: ``POST /e`` carried, for a child branch its Parallel or Map state's span; None when the execution
    #: has a trace of its own (``machinery.telemetry.traceparent``). The interpreter never reads it.
    trace_parent: str | None = None

    @property
    def owns_execution(self) -> bool:
        """Whether this branch's end is its execution's end (records ``ExecutionStarted`` ...)."""
        return self.parent_id is None or self.execution_root

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose (asdict deep-copies): the result is serialised at once.
        data = {name: getattr(self, name) for name in _BRANCH_FIELDS}
        data["container"] = list(self.container)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Branch:
        values = dict(data)
        values["container"] = tuple(values["container"])
        return cls(**values)


_BRANCH_FIELDS = tuple(f.name for f in fields(Branch))


# Events the runtime feeds back to the interpreter ------------------------------------------------


@dataclass(frozen=True)
class TaskSucceeded:
    output: Any


@dataclass(frozen=True)
class TaskFailed:
    error: str
    cause: str = ""


@dataclass(frozen=True)
class TimerFired:
    pass


@dataclass(frozen=True)
class ChildrenSucceeded:
    """Every child branch finished; ``outputs`` in branch (or item) order."""

    outputs: list[Any]


@dataclass(frozen=True)
class ChildrenFailed:
    error: str
    cause: str = ""


@dataclass(frozen=True)
class ItemsRead:
    """A Map state's ``ItemReader`` read these items."""

    items: list[Any]


@dataclass(frozen=True)
class ItemsReadFailed:
    """A Map state's ``ItemReader`` could not read its items (``States.ItemReaderFailed``)."""

    cause: str = ""


ResumeEvent = (
    TaskSucceeded | TaskFailed | TimerFired | ChildrenSucceeded | ChildrenFailed | ItemsRead | ItemsReadFailed
)


# Effects the interpreter asks the runtime to perform ----------------------------------------------


@dataclass(frozen=True)
class InvokeTask:
    """Call a task resource with ``payload``; feed back :class:`TaskSucceeded` or :class:`TaskFailed`."""

    state_name: str
    resource: str
    payload: Any
    attempt: int
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    task_token: str | None = None
    wait_for_token: bool = False


@dataclass(frozen=True)
class StartTimer:
    """Feed back :class:`TimerFired` at ``due`` (epoch seconds, before time scaling)."""

    due: float
    purpose: str


@dataclass(frozen=True)
class ChildStart:
    container: ContainerKey
    input: Any
    map_item: dict[str, Any] | None = None


@dataclass(frozen=True)
class StartChildren:
    """Start child branches; when they are done feed back ChildrenSucceeded or ChildrenFailed.

    ``max_concurrency`` 0 means all at once. A child failure fails the join at once unless the
    tolerated failure count or percentage (Map) allows it.
    """

    kind: str
    state_name: str
    children: list[ChildStart]
    max_concurrency: int = 0
    tolerated_failure_count: int = 0
    tolerated_failure_percentage: float = 0.0
    #: A ``DISTRIBUTED`` Map: each child runs as a child execution of its own (see ``Branch.execution_root``).
    distributed: bool = False
    #: The Map's ``Label`` (or state name), part of the child executions' names.
    label: str = ""


@dataclass(frozen=True)
class ReadItems:
    """Read a Map state's items (``ItemReader``); feed back :class:`ItemsRead` or :class:`ItemsReadFailed`.

    ``resource`` is the reader's ``Resource`` (``arn:aws:states:::http:invoke``, an S3 ARN ...),
    ``parameters`` its evaluated ``Parameters``/``Arguments`` and ``reader_config`` its ``ReaderConfig``.
    """

    state_name: str
    resource: str
    parameters: Any
    reader_config: dict[str, Any]


Effect = InvokeTask | StartTimer | StartChildren | ReadItems


@dataclass(frozen=True)
class HistoryEvent:
    """One entry of an execution's history, in Step Functions' vocabulary."""

    type: str
    details: dict[str, Any]
    timestamp: float


@dataclass
class Step:
    """What one interpreter call produced: the branch's new state, effects to perform, history to append."""

    branch: Branch
    effects: list[Effect] = field(default_factory=list)
    history: list[HistoryEvent] = field(default_factory=list)
