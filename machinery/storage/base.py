"""The storage interface: the operations the API and the runtime need, not a SQL schema.

Every backend implements :class:`Storage` and passes the shared conformance suite in
``tests/integration/test_storage_conformance.py``. Join accounting (when are a Parallel's branches or a
Map's iterations all done, may the next queued iteration start, is the failure tolerance exceeded) is
decided by the pure :func:`decide_join` so that every backend applies the same rule inside its own
transaction.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from machinery.engine.types import Branch, HistoryEvent
from machinery.errors import MachineryError
from machinery.status import ExecutionStatus

_A = TypeVar("_A")
_R = TypeVar("_R")

# Work kinds
WORK_START = "start"  # run a fresh branch
WORK_TASK = "task"  # call a task resource (payload: the InvokeTask effect)
WORK_TIMER = "timer"  # a Wait state or a retry back-off is due
WORK_CHILDREN = "children"  # a join completed (payload: {"error", "cause"} on failure)
WORK_TOKEN = "token"  # a callback arrived for a .waitForTaskToken task (payload: outcome)
WORK_WEBHOOK = "webhook"  # POST the final record to the execution's callback_url
WORK_TIMEOUT = "timeout"  # the execution's own TimeoutSeconds elapsed
WORK_READ = "read"  # read a Map state's items (payload: the ReadItems effect)
WORK_SCHEDULE = "schedule"  # a schedule's cursor: its next tick is due (payload: the schedule's state)

#: Resources (see :meth:`Storage.put_resource`): a distributed Map's run, by its run id.
MAP_RUN = "map-run"

#: The error of the ``WORK_TOKEN`` item that fails a ``.waitForTaskToken`` task missing its heartbeats.
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"


#: Above every history event id: where a ``reverse`` history read without ``after`` starts.
HISTORY_END = 2**62


def history_page_query(after: int | None, reverse: bool) -> tuple[str, int]:
    """The named SQL query reading a history page in this direction, and its ``after`` bound."""
    if reverse:
        return "history_page_reverse", HISTORY_END if after is None else after
    return "history_page", 0 if after is None else after


def new_id() -> str:
    """A new id: a version 7 UUID (RFC 9562), the millisecond it was made followed by 74 random bits.

    Ids made together sort together, so the index entries of executions, branches and history rows that
    are written in one transaction share B-tree pages instead of touching one random page each: a
    SQLite commit writes every page it changed, and with random (version 4) ids that was about a fifth
    more commit CPU per execution (``bench.inprocess``). 74 random bits keep ids unguessable.
    """
    millis = time.time_ns() // 1_000_000
    rand_a, rand_b = divmod(int.from_bytes(os.urandom(10), "big") >> 6, 1 << 62)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand_a & 0xFFF) << 64 | 0b10 << 62 | rand_b
    text = f"{value:032x}"  # str(uuid.UUID(int=value)), in half the time
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True)
class ServiceRecord:
    service_id: str
    name: str
    address: str
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    settings: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow at one version. ``spec`` is what the user posted; ``definition`` the ASL it runs."""

    workflow_id: str
    name: str
    version: int
    spec: dict[str, Any]
    definition: dict[str, Any]
    services: list[str]
    express: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution (an event), as stored: its workflow version, status, input and outcome."""

    execution_id: str
    workflow_id: str
    workflow_name: str
    workflow_version: int
    name: str
    status: ExecutionStatus
    input: Any
    started_at: float
    output: Any = None
    error: str | None = None
    cause: str | None = None
    finished_at: float | None = None
    callback_url: str | None = None
    express: bool = False
    #: The execution whose ``DISTRIBUTED`` Map started this one (one item of it), else ``None``.
    parent_execution_id: str | None = None
    #: How often the execution was redriven, and when last (epoch seconds).
    redrive_count: int = 0
    redrive_date: float | None = None


@dataclass(frozen=True)
class ApiTokenRecord:
    """An API token as stored: never the token itself, only its SHA-256 (:mod:`machinery.auth`).

    ``access_key_id`` names the token's AWS Signature Version 4 key pair; its secret is derived from the
    server's key, not stored.
    """

    token_id: str
    name: str
    scope: str
    token_hash: str
    access_key_id: str
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> ApiTokenRecord:
        """A stored row or document read by field name (every backend names the fields alike)."""
        return cls(
            token_id=row["token_id"],
            name=row["name"],
            scope=row["scope"],
            token_hash=row["token_hash"],
            access_key_id=row["access_key_id"],
            created_at=float(row["created_at"]),
        )


#: The fields an API token can be found by.
ApiTokenField = Literal["token_id", "name", "token_hash", "access_key_id"]


@dataclass(frozen=True)
class WorkItem:
    """Something due: ``fence`` increases with every claim, so a stale owner cannot commit."""

    execution_id: str
    branch_id: str
    kind: str
    due_at: float
    payload: Any = None
    work_id: int | None = None
    owner: str | None = None
    fence: int = 0


@dataclass(frozen=True)
class StoredEvent:
    event_id: int
    type: str
    timestamp: float
    details: dict[str, Any]


@dataclass(frozen=True)
class JoinSpec:
    """Children a branch starts: stored with them, consulted as they finish."""

    join_id: str
    parent_id: str
    kind: str
    total: int
    max_concurrency: int
    tolerated_failure_count: int
    tolerated_failure_percentage: float

    @property
    def initially_started(self) -> int:
        """How many children start with the join (the rest are admitted one per finished child)."""
        return self.total if self.max_concurrency <= 0 else min(self.total, self.max_concurrency)


@dataclass
class JoinState:
    spec: JoinSpec
    started: int
    succeeded: int = 0
    failed: int = 0
    closed: bool = False


@dataclass(frozen=True)
class JoinDecision:
    """What one finished child means for its join: close it (with an error or not), start more children."""

    close: bool = False
    error: str | None = None
    cause: str | None = None
    start_indexes: tuple[int, ...] = ()


def decide_join(join: JoinState, child_succeeded: bool, error: str | None, cause: str | None) -> JoinDecision:
    """Account for one finished child (mutates ``join``) and say what follows."""
    if join.closed:
        return JoinDecision()
    if child_succeeded:
        join.succeeded += 1
    else:
        join.failed += 1
    spec = join.spec
    if not child_succeeded:
        tolerated = spec.tolerated_failure_count > 0 or spec.tolerated_failure_percentage > 0
        over_count = join.failed > spec.tolerated_failure_count
        over_pct = spec.total == 0 or (join.failed * 100.0 / spec.total) > spec.tolerated_failure_percentage
        if spec.kind != "Map" or not tolerated or (over_count and over_pct):
            join.closed = True
            if tolerated:
                return JoinDecision(
                    close=True,
                    error="States.ExceedToleratedFailureThreshold",
                    cause="The specified tolerated failure threshold was exceeded",
                )
            return JoinDecision(close=True, error=error or "States.BranchFailed", cause=cause or "")
    if join.succeeded + join.failed >= spec.total:
        join.closed = True
        return JoinDecision(close=True)
    if join.started < spec.total:
        index = join.started
        join.started += 1
        return JoinDecision(start_indexes=(index,))
    return JoinDecision()


def admitted_after_limit_change(join: JoinState, max_concurrency: int) -> int:
    """How many children a join has started once its ``max_concurrency`` becomes ``max_concurrency``.

    Children are admitted one per finished child, so the number running stays what it was: raising the
    limit admits the difference at once. Lowering it cannot stop running children; it is not honoured
    until as many of them finished (see :meth:`machinery.storage.base.Storage.update_join_limits`).
    """
    spec = join.spec
    running = join.started - join.succeeded - join.failed
    wanted = spec.total if max_concurrency <= 0 else max_concurrency
    extra = max(0, wanted - running)
    return min(spec.total, join.started + extra)


@dataclass
class RedrivePlan:
    """What reopening a finished execution writes, atomically (see :meth:`Storage.redrive_execution`).

    ``executions`` are the executions to reopen with the status each must still have (the execution
    itself and the child executions of its distributed Maps that rerun); ``branches`` the branches to
    write back, active again, each with its join id; ``joins`` the joins to reopen with their new
    counters; ``work`` what starts them; ``history`` what to append to each execution's history.
    """

    executions: list[tuple[str, str]]
    branches: list[tuple[Branch, str | None]] = field(default_factory=list)
    joins: list[JoinState] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    history: dict[str, list[HistoryEvent]] = field(default_factory=dict)


@dataclass(frozen=True)
class NewExecution:
    """An execution for :meth:`Storage.start_executions` to create: record, root branch, first work."""

    record: ExecutionRecord
    root: Branch
    work: Sequence[WorkItem] = ()


def one_by_one(call: Callable[[_A], _R], items: Iterable[_A]) -> list[_R | Exception]:
    """``call`` on each item, on its own: each one's result, or the :class:`MachineryError` it raised
    (how the default group operations of :class:`Storage` report each part)."""
    results: list[_R | Exception] = []
    for item in items:
        try:
            results.append(call(item))
        except MachineryError as exc:
            results.append(exc)
    return results


@dataclass(frozen=True)
class ClaimedStart:
    """A new execution for :meth:`Storage.commit_group`: stored with its first work claimed by
    ``owner`` until ``lease_until``, as :meth:`Storage.create_execution_claimed` stores it."""

    new: NewExecution
    owner: str
    lease_until: float


@dataclass(frozen=True)
class StartResult:
    """What :meth:`Storage.start_executions` did: the ids it created (the others existed already) and
    the work it inserted claimed by the caller."""

    created: list[str] = field(default_factory=list)
    claimed: list[WorkItem] = field(default_factory=list)


@dataclass
class Commit:
    """One transition of one branch, written atomically.

    ``consumed`` is the claimed work item that led here (deleted under fencing); ``branch`` the branch's
    new state; ``children`` new child branches with their ``join`` (the first ``join.max_concurrency``
    get a start work item); ``child_executions`` the execution records of children that run as child
    executions (a ``DISTRIBUTED`` Map: each such child is the root branch of its own execution, whose id
    is the child's ``execution_id``); ``execution_update`` the execution's final status when the branch
    that owns the execution ended.

    Join accounting is the same for both kinds of children: a queued child is started in its own
    execution, and a closed join's work goes to the join's (the parent's) execution. When an execution
    ends, its running child executions are aborted with it, as are the running child executions of a
    join that fails.
    """

    execution_id: str
    consumed: WorkItem | None
    branch: Branch
    history: list[HistoryEvent] = field(default_factory=list)
    work: list[WorkItem] = field(default_factory=list)
    children: list[Branch] = field(default_factory=list)
    child_executions: list[ExecutionRecord] = field(default_factory=list)
    join: JoinSpec | None = None
    execution_update: dict[str, Any] | None = None
    #: When set, new work due by the commit's ``now`` is inserted already claimed by this owner (leased
    #: until ``lease_until``) and returned in :attr:`CommitResult.claimed`, so the committing worker can go
    #: on with it at once instead of claiming it in another transaction. Backends may ignore it.
    claim_owner: str | None = None
    lease_until: float = 0.0


@dataclass(frozen=True)
class CommitResult:
    """What a commit set in motion that the runtime should know about (to wake itself)."""

    execution_finished: bool = False
    new_work: int = 0
    claimed: list[WorkItem] = field(default_factory=list)


@dataclass(frozen=True)
class WorkCounts:
    """Work items by state at one moment: ``due`` (ready, no live lease), ``scheduled`` (due later, no
    live lease) and ``claimed`` (leased to a worker whose lease has not expired)."""

    due: int = 0
    scheduled: int = 0
    claimed: int = 0


class Storage(abc.ABC):
    """Backend-neutral persistence. Methods raise :class:`machinery.errors.StorageError` on failure."""

    #: Whether calls wait on the network (workers then make them from threads, not their event loop).
    blocking_io: bool = False
    #: Whether :meth:`wait_for_work` blocks until another process adds work (else it returns at once).
    pushes_wake_ups: bool = False

    # lifecycle -------------------------------------------------------------------------------
    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def group_writers(self) -> int:
        """How many group transactions (:meth:`commit_many`, :meth:`commit_group`) a worker of a
        :attr:`blocking_io` storage writes at once (``MACHINERY_STORAGE_WRITERS`` overrides it).

        A group transaction's statements run one after the other, so its time grows with its size: on a
        database close by, one at a time carries the most per ``BEGIN``/``COMMIT``; on a distant one,
        several at once overlap their round trips."""
        return 1

    def wait_for_work(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for work committed by another process; True when woken.

        Backends that can push wake-ups (PostgreSQL ``LISTEN``) override this and set
        :attr:`pushes_wake_ups`; the default returns False at once, leaving the caller to poll.
        """
        return False

    # services --------------------------------------------------------------------------------
    @abc.abstractmethod
    def upsert_service(
        self,
        name: str,
        address: str,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        settings: dict[str, Any],
        now: float,
        ref: str | None = None,
    ) -> tuple[ServiceRecord, bool]:
        """Create or update the service named ``name`` (or the one ``ref`` names); True when created."""

    @abc.abstractmethod
    def get_service(self, ref: str) -> ServiceRecord | None:
        """A service by id or name."""

    @abc.abstractmethod
    def list_services(self) -> list[ServiceRecord]: ...

    @abc.abstractmethod
    def delete_service(self, service_id: str) -> None: ...

    # workflows -------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_workflow(
        self,
        name: str,
        spec: dict[str, Any],
        definition: dict[str, Any],
        services: list[str],
        express: bool,
        now: float,
        ref: str | None = None,
    ) -> tuple[WorkflowRecord, bool]:
        """Store a new version of the workflow ``name`` (or ``ref``); True when the workflow is new."""

    @abc.abstractmethod
    def get_workflow(self, ref: str, version: int | None = None) -> WorkflowRecord | None:
        """The latest (or a given) version of a workflow, by id or name."""

    @abc.abstractmethod
    def list_workflows(self) -> list[WorkflowRecord]: ...

    @abc.abstractmethod
    def list_versions(self, workflow_id: str) -> list[WorkflowRecord]: ...

    @abc.abstractmethod
    def delete_workflow(self, workflow_id: str) -> None: ...

    @abc.abstractmethod
    def workflows_using(self, service_name: str) -> list[str]:
        """Names of workflows whose latest version calls the service."""

    # executions ------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_execution(self, execution: ExecutionRecord, root: Branch, work: Sequence[WorkItem]) -> None:
        """Store a new execution, its root branch and its first work, atomically."""

    def create_execution_claimed(
        self,
        execution: ExecutionRecord,
        root: Branch,
        work: Sequence[WorkItem],
        owner: str,
        lease_until: float,
    ) -> list[WorkItem]:
        """Like :meth:`create_execution`, with the due work claimed by ``owner`` and returned.

        The default claims nothing (the owner then finds the work through :meth:`claim_work`).
        """
        self.create_execution(execution, root, work)
        return []

    @abc.abstractmethod
    def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    @abc.abstractmethod
    def list_executions(
        self,
        workflow_id: str | None,
        status: ExecutionStatus | None,
        limit: int,
        after: str | None,
        parent_id: str | None = None,
    ) -> list[ExecutionRecord]:
        """Newest first; ``after`` is the id of the last execution of the previous page.

        Without ``parent_id`` only top-level executions are listed; with it, the child executions of
        that execution (its ``DISTRIBUTED`` Maps' items).
        """

    @abc.abstractmethod
    def count_executions(self) -> dict[str, dict[str, int]]:
        """How many top-level executions each workflow has, by status: ``{workflow_id: {status: n}}``."""

    @abc.abstractmethod
    def get_history(
        self, execution_id: str, after: int | None = None, limit: int | None = None, reverse: bool = False
    ) -> list[StoredEvent]:
        """An execution's history in event id order, or newest first when ``reverse``.

        ``after`` is the id of the last event of the previous page: the page starts past it in the
        reading order (ids above it, or below it when ``reverse``). ``limit`` caps the page (all when
        None). Backends read a page through the ``(execution_id, event_id)`` index, never the whole history.
        """

    def finished_among(self, execution_ids: Sequence[str]) -> list[str]:
        """Those of ``execution_ids`` that have ended (what a request waiting on another process's
        execution looks for). The default reads them one by one; the SQL backends in one query."""
        return [
            execution_id
            for execution_id in execution_ids
            if (record := self.get_execution(execution_id)) is not None
            and record.status != ExecutionStatus.RUNNING
        ]

    @abc.abstractmethod
    def store_finished_execution(self, execution: ExecutionRecord, history: Sequence[HistoryEvent]) -> None:
        """Store an execution that ran elsewhere (express) in its final state."""

    def store_finished_executions(
        self, finished: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> list[Exception | None]:
        """Store several of them (the express executions that ended in one tick of the express loop);
        for each, None or the error it failed with.

        The default stores them one by one; the SQL backends write them all in one transaction.
        """
        return one_by_one(lambda pair: self.store_finished_execution(*pair), finished)

    @abc.abstractmethod
    def finish_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        now: float,
        error: str | None = None,
        cause: str | None = None,
    ) -> bool:
        """End a running execution from outside (stop, timeout): cancel its branches and work.

        Its running child executions end with it (``ABORTED``), and theirs. False when it had already
        ended.
        """

    # branches and work -----------------------------------------------------------------------
    @abc.abstractmethod
    def get_branch(self, branch_id: str) -> Branch | None: ...

    @abc.abstractmethod
    def child_results(self, join_id: str) -> list[Branch]:
        """The children of a join, in index order."""

    @abc.abstractmethod
    def claim_work(self, owner: str, now: float, limit: int, lease_seconds: float) -> list[WorkItem]:
        """Claim up to ``limit`` due work items whose lease is free or expired."""

    @abc.abstractmethod
    def renew_leases(self, owner: str, work_ids: Sequence[int], until: float) -> None: ...

    @abc.abstractmethod
    def release_leases(self, owner: str | None = None) -> int:
        """Free the leases of ``owner`` (all when None); the number freed."""

    @abc.abstractmethod
    def next_due(self) -> float | None:
        """When the earliest unclaimed work item is due."""

    @abc.abstractmethod
    def count_work(self, now: float) -> WorkCounts:
        """How many work items are due, scheduled for later and claimed (for ``/metrics``)."""

    @abc.abstractmethod
    def count_running(self) -> dict[str, int]:
        """Running executions by workflow name (for ``/metrics``)."""

    @abc.abstractmethod
    def commit(self, commit: Commit, now: float) -> CommitResult:
        """Write one transition atomically; raise :class:`machinery.errors.LeaseLost` if fenced out."""

    def commit_many(self, commits: Sequence[tuple[Commit, float]]) -> list[CommitResult | Exception]:
        """Write several transitions, each ``(commit, now)`` atomically on its own, at once (a worker's
        group commit); each one's result, or the error it failed with (:class:`LeaseLost`, ...).

        The default commits them one by one; the SQL backends write them all in one transaction.
        """
        return one_by_one(lambda pair: self.commit(*pair), commits)

    def commit_group(
        self, starts: Sequence[ClaimedStart], commits: Sequence[tuple[Commit, float]]
    ) -> tuple[list[list[WorkItem] | Exception], list[CommitResult | Exception]]:
        """New executions and transitions at once (a worker's group commit with the executions that
        requests started in the same tick): for each start the work it claimed, for each commit its
        result, or the error each failed with.

        The default stores them one by one; the SQL backends write them all in one transaction.
        """

        def create(start: ClaimedStart) -> list[WorkItem]:
            new = start.new
            return self.create_execution_claimed(
                new.record, new.root, list(new.work), start.owner, start.lease_until
            )

        return one_by_one(create, starts), self.commit_many(commits)

    @abc.abstractmethod
    def add_work(self, work: Sequence[WorkItem]) -> None:
        """Add work outside a transition (callbacks, webhooks)."""

    @abc.abstractmethod
    def complete_work(
        self,
        item: WorkItem,
        reschedule_at: float | None = None,
        payload: Any = None,
        history: Sequence[HistoryEvent] = (),
    ) -> None:
        """Delete (or push back) a claimed work item that needed no transition (webhooks).

        ``payload``, when rescheduling, replaces the item's payload (a webhook's attempt count);
        ``history`` is appended to the item's execution. Both only while the claim holds (fenced).
        """

    @abc.abstractmethod
    def extend_heartbeat(self, execution_id: str, branch_id: str, token: str, due: float) -> bool:
        """Move the unclaimed heartbeat timeout of the task ``token`` of ``branch_id`` to ``due``.

        The heartbeat timeout is the ``WORK_TOKEN`` item whose payload has the error
        ``States.HeartbeatTimeout`` and this token. False when there is none: the task has no
        ``HeartbeatSeconds``, is not parked yet, or its heartbeat timeout is already firing.
        """

    # retention ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def purge_executions(self, finished_before: float, limit: int) -> int:
        """Delete up to ``limit`` top-level executions that finished before ``finished_before``.

        Each goes with everything it owns: its history, branches, joins and work, and its child
        executions (``DISTRIBUTED`` Map items, at any depth) with theirs. Running executions and child
        executions whose top-level execution still runs are never touched. Returns the number of
        top-level executions deleted (fewer than ``limit`` when no more are due).
        """

    # API tokens --------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_api_token(self, token: ApiTokenRecord) -> bool:
        """Store a new token; False (and nothing stored) when its name is taken."""

    @abc.abstractmethod
    def find_api_token(self, by: ApiTokenField, value: str) -> ApiTokenRecord | None:
        """The token whose ``by`` field is ``value``."""

    @abc.abstractmethod
    def list_api_tokens(self) -> list[ApiTokenRecord]:
        """Every token, oldest first."""

    @abc.abstractmethod
    def delete_api_token(self, token_id: str) -> bool:
        """Revoke a token; False when there was none."""

    def has_api_tokens(self) -> bool:
        """Whether any token exists (asked on every request of an open server). A token created or
        revoked by any process must count at once: a backend that caches the answer drops it then."""
        return bool(self.list_api_tokens())

    # lookups by name -------------------------------------------------------------------------
    @abc.abstractmethod
    def find_execution(self, workflow_name: str, name: str) -> ExecutionRecord | None:
        """The newest execution named ``name`` that started on the workflow then named ``workflow_name``.

        An execution ARN names both (``execution:<machine>:<name>``); the workflow's name is the one the
        execution recorded when it started, so a renamed workflow's older executions keep their ARNs.
        """

    # resources -------------------------------------------------------------------------------
    # Small records of the front doors that the engine never reads (the AWS API's published versions,
    # aliases, tags, activities and their queued tasks, map runs): a JSON document under (kind, key).
    # The control layer gives them types (machinery/control/resources.py); backends only store them.

    @abc.abstractmethod
    def put_resource(self, kind: str, key: str, body: dict[str, Any]) -> None:
        """Create or replace the resource ``(kind, key)``."""

    @abc.abstractmethod
    def insert_resource(self, kind: str, key: str, body: dict[str, Any]) -> bool:
        """Create the resource unless ``(kind, key)`` exists; True when created (atomic)."""

    @abc.abstractmethod
    def get_resource(self, kind: str, key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def list_resources(self, kind: str, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
        """The resources of ``kind`` whose key starts with ``prefix``, in key order."""

    @abc.abstractmethod
    def delete_resource(self, kind: str, key: str) -> bool:
        """Delete the resource; True when it existed."""

    @abc.abstractmethod
    def take_resource(self, kind: str, prefix: str) -> tuple[str, dict[str, Any]] | None:
        """Delete and return the first resource (in key order) whose key starts with ``prefix``.

        Atomic: two callers never take the same resource (a queue of activity tasks).
        """

    # redrive ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_join(self, join_id: str) -> JoinState | None:
        """A join's spec and counters."""

    @abc.abstractmethod
    def redrive_execution(self, plan: RedrivePlan, now: float) -> bool:
        """Reopen finished executions as ``plan`` says, in one transaction.

        Each execution of ``plan.executions`` becomes ``RUNNING`` again (its output, error, cause and
        end cleared, ``redrive_count`` one more, ``redrive_date`` = ``now``) if it still has the status
        given with it; otherwise nothing is written and the result is False (redriven concurrently).
        """

    @abc.abstractmethod
    def update_join_limits(
        self, join_id: str, max_concurrency: int, tolerated_count: int, tolerated_pct: float, now: float
    ) -> bool:
        """Change an open join's limits (AWS's UpdateMapRun); False when the join is closed or unknown.

        A higher ``max_concurrency`` (0: no limit) starts queued children at once; a lower one holds
        back as many admissions as children run beyond it.
        """

    # triggers --------------------------------------------------------------------------------
    # Schedules and event sources start executions whose ids derive from the tick or the message, so
    # that a start repeated after a crash or a redelivery creates nothing. A schedule's cursor is one
    # work item under a pseudo execution id (``schedule:<id>``), read and replaced whole.

    @abc.abstractmethod
    def start_executions(
        self,
        starts: Sequence[NewExecution],
        now: float,
        consumed: WorkItem | None = None,
        follow: Sequence[WorkItem] = (),
        claim_owner: str | None = None,
        lease_until: float = 0.0,
    ) -> StartResult:
        """In one transaction: create each execution whose id is not stored yet (with its root branch and
        work), consume the claimed item ``consumed`` under its fence and add the ``follow`` work.

        An execution whose id exists is left as it is, with nothing of its start written again. With
        ``claim_owner``, the created executions' work due by ``now`` is inserted claimed by it (as
        :meth:`create_execution_claimed`); backends may ignore that.

        :raises machinery.errors.LeaseLost: ``consumed`` is no longer this owner's (nothing is written).
        """

    @abc.abstractmethod
    def get_work(self, execution_id: str) -> list[WorkItem]:
        """The pending work items of ``execution_id`` (claimed or not), by due time."""

    @abc.abstractmethod
    def replace_work(self, execution_id: str, work: Sequence[WorkItem]) -> None:
        """Delete every pending work item of ``execution_id`` (claimed or not) and add ``work``, atomically.

        A worker holding one of the deleted items then loses its lease (its commit is fenced out).
        """
