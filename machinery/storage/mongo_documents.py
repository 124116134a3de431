"""How the MongoDB backend lays out its documents, and the join arithmetic on their counters.

User data (inputs, outputs, definitions, payloads, branch bodies) is stored as JSON text, as in SQLite:
JSON keys may contain ``.`` or start with ``$``, which MongoDB field names may not, and JSON numbers
keep their exact form. Fields the backend queries on (ids, status, due times, counters) are native.
"""

from __future__ import annotations

from typing import Any

from machinery.engine.types import CANCELLED, Branch
from machinery.jsontext import dumps_compact
from machinery.jsontext import loads as json_loads
from machinery.status import ExecutionStatus
from machinery.storage.base import (
    WORK_START,
    WORK_WEBHOOK,
    ExecutionRecord,
    JoinDecision,
    JoinSpec,
    JoinState,
    ServiceRecord,
    WorkflowRecord,
    WorkItem,
    decide_join,
)

Doc = dict[str, Any]


def dumps(value: Any) -> str:
    return dumps_compact(value)


def loads(text: str | None) -> Any:
    return None if text is None else json_loads(text)


def by_ref(ref: str) -> Doc:
    """A service or workflow by id or by name."""
    return {"$or": [{"_id": ref}, {"name": ref}]}


# records ---------------------------------------------------------------------------------------------


def service_record(doc: Doc) -> ServiceRecord:
    return ServiceRecord(
        service_id=doc["_id"],
        name=doc["name"],
        address=doc["address"],
        inputs=loads(doc["inputs"]),
        outputs=loads(doc["outputs"]),
        settings=loads(doc["settings"]),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def workflow_record(head: Doc, version: Doc) -> WorkflowRecord:
    return WorkflowRecord(
        workflow_id=head["_id"],
        name=head["name"],
        version=version["version"],
        spec=loads(version["spec"]),
        definition=loads(version["definition"]),
        services=loads(version["services"]),
        express=version["express"],
        created_at=version["created_at"],
        updated_at=head["updated_at"],
    )


def execution_record(doc: Doc) -> ExecutionRecord:
    return ExecutionRecord(
        execution_id=doc["_id"],
        workflow_id=doc["workflow_id"],
        workflow_name=doc["workflow_name"],
        workflow_version=doc["workflow_version"],
        name=doc["name"],
        status=ExecutionStatus(doc["status"]),
        input=loads(doc["input"]),
        output=loads(doc["output"]),
        error=doc["error"],
        cause=doc["cause"],
        started_at=doc["started_at"],
        finished_at=doc["finished_at"],
        callback_url=doc["callback_url"],
        express=doc["express"],
        parent_execution_id=doc.get("parent_execution_id"),
        redrive_count=doc.get("redrive_count", 0),
        redrive_date=doc.get("redrive_date"),
    )


def execution_doc(execution: ExecutionRecord, seq: int, last_event_id: int) -> Doc:
    """``seq`` orders executions newest first; ``last_event_id`` is the history id counter."""
    return {
        "_id": execution.execution_id,
        "seq": seq,
        "workflow_id": execution.workflow_id,
        "workflow_name": execution.workflow_name,
        "workflow_version": execution.workflow_version,
        "name": execution.name,
        "status": execution.status,
        "input": dumps(execution.input),
        "output": None if execution.output is None else dumps(execution.output),
        "error": execution.error,
        "cause": execution.cause,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "callback_url": execution.callback_url,
        "express": execution.express,
        "last_event_id": last_event_id,
        "parent_execution_id": execution.parent_execution_id,
    }


def branch_from_doc(doc: Doc) -> Branch:
    # Cancelling sets only the status field (one update for a whole join or execution): it wins.
    branch = Branch.from_json(loads(doc["body"]))
    if doc["status"] == CANCELLED:
        branch.status = CANCELLED
    return branch


def join_of(branch: Branch) -> str | None:
    """Child branch ids are ``<join id>/<index>``; the root branch has none."""
    if branch.parent_id is None:
        return None
    return branch.branch_id.rsplit("/", 1)[0]


# work --------------------------------------------------------------------------------------------------


def work_item(doc: Doc) -> WorkItem:
    """A stored work item document as the runtime sees it."""
    return WorkItem(
        execution_id=doc["execution_id"],
        branch_id=doc["branch_id"],
        kind=doc["kind"],
        due_at=doc["due_at"],
        payload=loads(doc["payload"]),
        work_id=doc["_id"],
        owner=doc["owner"],
        fence=doc["fence"],
    )


def work_doc(item: WorkItem) -> Doc:
    """The fields of a new work item that an intent carries (lease fields are added on insert)."""
    return {
        "execution_id": item.execution_id,
        "branch_id": item.branch_id,
        "kind": item.kind,
        "due_at": item.due_at,
        "payload": None if item.payload is None else dumps(item.payload),
    }


def start_doc(branch: Branch, now: float) -> Doc:
    return work_doc(WorkItem(branch.execution_id, branch.branch_id, WORK_START, now))


def webhook_doc(execution_id: str, now: float) -> Doc:
    return work_doc(WorkItem(execution_id, execution_id, WORK_WEBHOOK, now, {"attempt": 0}))


# joins -------------------------------------------------------------------------------------------------


def join_doc(spec: JoinSpec, execution_id: str, started: int) -> Doc:
    """``counted`` logs ``{"i": index, "ok": succeeded}`` per child in counting order (exactly once)."""
    return {
        "_id": spec.join_id,
        "execution_id": execution_id,
        "parent_id": spec.parent_id,
        "kind": spec.kind,
        "total": spec.total,
        "max_concurrency": spec.max_concurrency,
        "tolerated_count": spec.tolerated_failure_count,
        "tolerated_pct": spec.tolerated_failure_percentage,
        "initially_started": started,
        "started": started,
        "succeeded": 0,
        "failed": 0,
        "closed": False,
        "counted": [],
    }


def join_spec(doc: Doc) -> JoinSpec:
    return JoinSpec(
        join_id=doc["_id"],
        parent_id=doc["parent_id"],
        kind=doc["kind"],
        total=doc["total"],
        max_concurrency=doc["max_concurrency"],
        tolerated_failure_count=doc["tolerated_count"],
        tolerated_failure_percentage=doc["tolerated_pct"],
    )


def join_decision(
    spec: JoinSpec,
    started_with: int,
    after_succeeded: int,
    after_failed: int,
    succeeded: bool,
    error: str | None,
    cause: str | None,
) -> JoinDecision:
    """What :func:`decide_join` says for the child whose count left the join at these counters.

    Counting is one atomic ``$inc`` per child, so each child sees distinct counters; with its own
    count removed they give the state a serial backend held before it: every child counted earlier
    either left the join open (admitting one queued child while any were left) or closed it by
    failing, which the failure count alone tells because the failure rule is monotonic. Children
    counted after a close (racing commits) therefore decide nothing, as in SQLite.

    :param started_with: the join's ``JoinSpec.initially_started``.
    """
    failed_before = after_failed - (0 if succeeded else 1)
    succeeded_before = after_succeeded - (1 if succeeded else 0)
    if closed_by_failures(spec, failed_before):
        return JoinDecision()
    state = JoinState(
        spec=spec,
        started=min(spec.total, started_with + succeeded_before + failed_before),
        succeeded=succeeded_before,
        failed=failed_before,
    )
    return decide_join(state, succeeded, error, cause)


def closed_by_failures(spec: JoinSpec, failed: int) -> bool:
    """Whether ``failed`` failures close the join: :func:`decide_join`'s rule, monotonic in ``failed``."""
    if failed <= 0:
        return False
    tolerated = spec.tolerated_failure_count > 0 or spec.tolerated_failure_percentage > 0
    over_count = failed > spec.tolerated_failure_count
    over_pct = spec.total == 0 or (failed * 100.0 / spec.total) > spec.tolerated_failure_percentage
    return spec.kind != "Map" or not tolerated or (over_count and over_pct)
