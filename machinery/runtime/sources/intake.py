"""From messages to executions: parse, check, start exactly once, and say how to settle each message.

A batch of messages costs one transaction (:meth:`~machinery.storage.base.Storage.start_executions`).
Each execution's id derives from the source and the message's dedup key (:func:`message_execution_id`),
so a message delivered again after a crash or a lost acknowledgement finds its execution and starts
nothing: it is a *duplicate*, acknowledged like a start. A message that is not JSON or does not match
the workflow's declared inputs is *rejected*: recorded with the reason (``source-rejection/<id>/<digest>``)
and then acknowledged, or dead-lettered where the broker has that. When the batch cannot be stored
(storage down, the workflow gone) its messages are to be *retried*: not acknowledged, delivered again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from machinery.errors import InvalidEventData, StorageError
from machinery.runtime.sources import REJECTION_KIND, STATUS_KIND, Source, SourceStatus, status_key
from machinery.runtime.starts import check_event_data, derived_id, new_execution
from machinery.storage.base import NewExecution, StartResult, Storage, WorkflowRecord, WorkItem
from machinery.telemetry import metrics

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
Settlement = Literal["started", "duplicate", "rejected", "retry"]
#: AWS's naming rule for executions (machinery.control.names): at most 80 characters, none of these.
MAX_NAME_LENGTH = 80
_NOT_IN_NAMES = re.compile(r'[\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]')


class Host(Protocol):
    """What the intake needs of the worker it runs in."""

    storage: Storage
    owner: str

    def clock(self) -> float: ...

    def has_room(self) -> bool: ...

    def submit(self, items: list[WorkItem]) -> None: ...

    def blocking(self, call: Callable[..., _T], *args: Any) -> Awaitable[_T]: ...


@dataclass(frozen=True)
class Incoming:
    """A message as a consumer received it: its dedup key and its body."""

    key: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """How to settle one message (``reason``: why it was rejected or is retried)."""

    settlement: Settlement
    reason: str | None = None
    execution_id: str | None = None


def message_execution_id(source: Source, key: str) -> str:
    """The execution id of a message: its dedup key within the source."""
    return derived_id("source", source.source_id, key)


def message_execution_name(source: Source, key: str) -> str:
    """``<source>-<message key>``, made to fit the naming rule (a digest when the key does not fit)."""
    cleaned = _NOT_IN_NAMES.sub("_", key)
    name = f"{source.name}-{cleaned}"
    if len(name) > MAX_NAME_LENGTH:
        name = f"{source.name}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"
    return name


def decode(body: bytes, limit: int) -> Any:
    """The JSON a message carries. :raises ValueError: with the reason it is not usable JSON."""
    if len(body) > limit:
        raise ValueError(
            f"the message has {len(body)} bytes, over the limit of {limit} (MACHINERY_DATA_LIMIT)"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the message is not UTF-8 text: {exc}") from None

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:
        raise ValueError(f"the message is not JSON: {exc}") from None


class Intake:
    """Starts the executions of one source's messages in the worker ``host``."""

    def __init__(
        self,
        host: Host,
        source: Source,
        status: SourceStatus,
        data_limit: int,
        time_scale: float = 1.0,
        lease_seconds: float = 30.0,
    ) -> None:
        self.host = host
        self.source = source
        self.status = status
        self.data_limit = data_limit
        self.time_scale = time_scale
        #: How long the first work of the executions it starts is leased to its worker.
        self.lease_seconds = lease_seconds

    def saturated(self) -> bool:
        return not self.host.has_room()

    async def process(self, batch: Sequence[Incoming]) -> list[Outcome]:
        """Start the batch's executions in one transaction; how to settle each message, in order."""
        if not batch:
            return []
        storage = self.host.storage
        try:
            workflow = await self.host.blocking(storage.get_workflow, self.source.workflow)
        except StorageError as exc:
            return self._retry(batch, f"storage: {exc.message}")
        if workflow is None or workflow.express:
            problem = (
                "does not exist" if workflow is None else "is express (sources start standard workflows)"
            )
            return self._retry(batch, f"workflow {self.source.workflow!r} {problem}")
        now = self.host.clock()
        outcomes: list[Outcome | None] = []
        starts: list[NewExecution] = []
        rejections: list[tuple[Incoming, str, list[dict[str, str]]]] = []
        for message in batch:
            new, reason, issues = self._execution(workflow, message, now)
            if new is None:
                assert reason is not None
                rejections.append((message, reason, issues))
                outcomes.append(Outcome("rejected", reason))
            else:
                starts.append(new)
                outcomes.append(None)
        owner = self.host.owner if self.host.has_room() else None
        try:
            # In a thread even on SQLite: the worker's loop goes on running executions while a batch commits.
            result: StartResult = await asyncio.to_thread(
                storage.start_executions, starts, now, None, (), owner, now + self.lease_seconds
            )
            if rejections:
                # Counted first, so that no status report written meanwhile has the count without them.
                self.status.rejected += len(rejections)
                try:
                    await self.host.blocking(self._record_rejections, rejections, now)
                except StorageError:
                    self.status.rejected -= len(rejections)  # delivered again, counted then
                    raise
        except StorageError as exc:
            return self._retry(batch, f"storage: {exc.message}")
        if result.claimed:
            self.host.submit(result.claimed)
        created = set(result.created)
        pending = iter(starts)
        settled: list[Outcome] = []
        for outcome in outcomes:
            if outcome is not None:
                settled.append(outcome)
                continue
            execution_id = next(pending).record.execution_id
            settled.append(Outcome("started" if execution_id in created else "duplicate", None, execution_id))
        self.status.started += len(created)
        self.status.duplicates += len(starts) - len(created)
        if created:
            metrics.execution_started(workflow.name, len(created))
        for outcome in settled:
            metrics.event_source_message(self.source.name, outcome.settlement)
        return settled

    def _execution(
        self, workflow: WorkflowRecord, message: Incoming, now: float
    ) -> tuple[NewExecution | None, str | None, list[dict[str, str]]]:
        try:
            data = decode(message.body, self.data_limit)
        except ValueError as exc:
            return None, str(exc), []
        try:
            check_event_data(workflow, data)
        except InvalidEventData as exc:
            return None, exc.message, [issue.to_json() for issue in exc.issues]
        new = new_execution(
            workflow,
            data,
            now,
            time_scale=self.time_scale,
            execution_id=message_execution_id(self.source, message.key),
            name=message_execution_name(self.source, message.key),
            callback_url=self.source.callback_url,
        )
        return new, None, []

    def _record_rejections(
        self, rejections: Sequence[tuple[Incoming, str, list[dict[str, str]]]], now: float
    ) -> None:
        for message, reason, issues in rejections:
            digest = hashlib.sha256(message.key.encode()).hexdigest()[:32]
            preview = message.body[:512].decode("utf-8", errors="replace")
            body = {
                "message_id": message.key,
                "reason": reason,
                "errors": issues,
                "body": preview,
                "bytes": len(message.body),
                "rejected_at": now,
                "owner": self.host.owner,
            }
            self.host.storage.put_resource(REJECTION_KIND, f"{self.source.source_id}/{digest}", body)
            logger.info(
                "source %s rejected message %s: %s", self.source.name, message.key, reason,
                extra={"source": self.source.name},
            )  # fmt: skip
        # This process's count of them is written now too, before the messages are settled: a process
        # killed before its next report would otherwise lose rejections that will not come again.
        status = {**self.status.to_json(), "updated_at": now}  # its rejected count has them already
        self.host.storage.put_resource(
            STATUS_KIND, status_key(self.source.source_id, self.host.owner), status
        )

    def _retry(self, batch: Sequence[Incoming], reason: str) -> list[Outcome]:
        self.status.retried += len(batch)
        for _message in batch:
            metrics.event_source_message(self.source.name, "retry")
        self.status.last_error = reason
        logger.warning("source %s: %s; its messages will be delivered again", self.source.name, reason)
        return [Outcome("retry", reason) for _ in batch]
