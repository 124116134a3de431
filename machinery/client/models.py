"""What the client returns: one frozen dataclass per shape of the API, read from its JSON.

Each keeps the JSON it was read from in ``raw`` (left out of ``repr`` and comparisons), so that a member a
newer server adds is not lost and ``machinery ... --json`` prints exactly what the server answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from machinery.status import ExecutionStatus

#: History event types that mark a state's start and end (``TaskStateEntered``, ``ChoiceStateExited``...).
STATE_ENTERED_SUFFIX = "StateEntered"
STATE_EXITED_SUFFIX = "StateExited"


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp of the API (``2026-12-01T08:41:57.966Z``) as an aware datetime."""
    if value is None:
        return None
    return datetime.fromisoformat(str(value))


def _required_time(value: Any) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError("a timestamp is missing")
    return parsed


@dataclass(frozen=True)
class DeclaredField:
    """One declared input or output of a service or a simple workflow (the seed's ``{name, type,
    description}``)."""

    name: str
    type: str
    description: str = ""
    required: bool | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DeclaredField:
        return cls(
            name=str(body["name"]),
            type=str(body.get("type", "any")),
            description=str(body.get("description", "")),
            required=body.get("required"),
        )


def _fields(items: Sequence[Mapping[str, Any]] | None) -> tuple[DeclaredField, ...]:
    return tuple(DeclaredField.from_json(item) for item in items or ())


@dataclass(frozen=True)
class Service:
    """A registered HTTP service (``/s``)."""

    service_id: str
    name: str
    address: str
    inputs: tuple[DeclaredField, ...]
    outputs: tuple[DeclaredField, ...]
    created_at: datetime
    updated_at: datetime
    method: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Service:
        return cls(
            service_id=str(body["service_id"]),
            name=str(body["name"]),
            address=str(body["address"]),
            inputs=_fields(body.get("inputs")),
            outputs=_fields(body.get("outputs")),
            created_at=_required_time(body["created_at"]),
            updated_at=_required_time(body["updated_at"]),
            method=body.get("method"),
            headers=dict(body.get("headers") or {}),
            timeout_seconds=body.get("timeout_seconds"),
            description=body.get("description"),
            raw=body,
        )


@dataclass(frozen=True)
class Workflow:
    """One version of a workflow (``/w``). ``definition`` (the ASL it runs) is ``None`` in listings."""

    workflow_id: str
    name: str
    version: int
    form: str
    express: bool
    services: tuple[str, ...]
    inputs: tuple[DeclaredField, ...]
    outputs: tuple[DeclaredField, ...]
    created_at: datetime
    updated_at: datetime
    operations: tuple[Mapping[str, Any], ...] = ()
    definition: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Workflow:
        return cls(
            workflow_id=str(body["workflow_id"]),
            name=str(body["name"]),
            version=int(body["version"]),
            form=str(body.get("form", "asl")),
            express=bool(body.get("express", False)),
            services=tuple(body.get("services") or ()),
            inputs=_fields(body.get("inputs")),
            outputs=_fields(body.get("outputs")),
            created_at=_required_time(body["created_at"]),
            updated_at=_required_time(body["updated_at"]),
            operations=tuple(body.get("operations") or ()),
            definition=body.get("definition"),
            raw=body,
        )


@dataclass(frozen=True)
class Event:
    """An event: one execution of a workflow version (``/e``).

    ``output`` is set when it succeeded; ``error`` and ``cause`` when it failed, timed out or was stopped.
    """

    event_id: str
    workflow_id: str
    workflow_name: str
    workflow_version: int
    name: str
    status: ExecutionStatus
    express: bool
    acknowledged_at: datetime
    finished_at: datetime | None = None
    parent_event_id: str | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    redrive_count: int = 0
    redriven_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def running(self) -> bool:
        return self.status is ExecutionStatus.RUNNING

    @property
    def succeeded(self) -> bool:
        return self.status is ExecutionStatus.SUCCEEDED

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Event:
        return cls(
            event_id=str(body["event_id"]),
            workflow_id=str(body["workflow_id"]),
            workflow_name=str(body["workflow_name"]),
            workflow_version=int(body["workflow_version"]),
            name=str(body.get("name") or body["event_id"]),
            status=ExecutionStatus(body["status"]),
            express=bool(body.get("express", False)),
            acknowledged_at=_required_time(body["acknowledged_at"]),
            finished_at=parse_time(body.get("finished_at")),
            parent_event_id=body.get("parent_event_id"),
            output=body.get("output"),
            error=body.get("error"),
            cause=body.get("cause"),
            redrive_count=int(body.get("redrive_count") or 0),
            redriven_at=parse_time(body.get("redriven_at")),
            raw=body,
        )


@dataclass(frozen=True)
class EventPage:
    """One page of ``GET /e``: newest first; ``next_cursor`` reads the next page, ``None`` on the last."""

    events: tuple[Event, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryEvent:
    """One entry of an execution's history, in Step Functions' vocabulary (``TaskStateEntered``...).

    ``details`` is the ``<type>EventDetails`` member (``stateEnteredEventDetails`` for every
    ``*StateEntered``), ``{}`` when the event has none.
    """

    id: int
    previous_event_id: int
    timestamp: datetime
    type: str
    details: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def state_entered(self) -> bool:
        return self.type.endswith(STATE_ENTERED_SUFFIX)

    @property
    def state_exited(self) -> bool:
        return self.type.endswith(STATE_EXITED_SUFFIX)

    @property
    def state_name(self) -> str | None:
        """The state this event enters or exits, else ``None``."""
        name = self.details.get("name") if self.state_entered or self.state_exited else None
        return None if name is None else str(name)

    @property
    def state_type(self) -> str | None:
        """``Task`` for ``TaskStateEntered``/``TaskStateExited``, else ``None``."""
        for suffix in (STATE_ENTERED_SUFFIX, STATE_EXITED_SUFFIX):
            if self.type.endswith(suffix):
                return self.type.removesuffix(suffix)
        return None

    def detail_json(self, key: str) -> Any:
        """A detail that the history holds as JSON text (``input``, ``output``), decoded; ``None`` when
        absent or not JSON."""
        text = self.details.get(key)
        if not isinstance(text, str):
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> HistoryEvent:
        event_type = str(body["type"])
        details = next(
            (
                value
                for key, value in body.items()
                if key.endswith("EventDetails") and isinstance(value, dict)
            ),
            {},
        )
        return cls(
            id=int(body["id"]),
            previous_event_id=int(body.get("previousEventId", 0)),
            timestamp=_required_time(body["timestamp"]),
            type=event_type,
            details=details,
            raw=body,
        )


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``GET /e/<id>/history``; pass ``next_cursor`` as ``after`` for the next page."""

    event_id: str
    events: tuple[HistoryEvent, ...]
    next_cursor: int | None


@dataclass(frozen=True)
class Schedule:
    """A schedule (``/schedules``): when it ticks, what it starts, its state and its next run times."""

    name: str
    schedule_id: str
    workflow: str
    expression: str
    kind: str
    timezone: str
    overlap: str
    catch_up: int
    paused: bool
    next_runs: tuple[datetime, ...]
    state: Mapping[str, Any]
    input: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Schedule:
        return cls(
            name=str(body["name"]),
            schedule_id=str(body["schedule_id"]),
            workflow=str(body["workflow"]),
            expression=str(body["expression"]),
            kind=str(body.get("kind", "cron")),
            timezone=str(body.get("timezone", "UTC")),
            overlap=str(body.get("overlap", "skip")),
            catch_up=int(body.get("catch_up", 0)),
            paused=bool(body.get("paused", False)),
            next_runs=tuple(_required_time(run) for run in body.get("next_runs") or ()),
            state=dict(body.get("state") or {}),
            input=body.get("input"),
            raw=body,
        )


@dataclass(frozen=True)
class Source:
    """An event source (``/sources``): a broker subscription that starts executions, and its state."""

    name: str
    source_id: str
    workflow: str
    type: str
    url: str
    enabled: bool
    state: Mapping[str, Any]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Source:
        return cls(
            name=str(body["name"]),
            source_id=str(body["source_id"]),
            workflow=str(body["workflow"]),
            type=str(body["type"]),
            url=str(body["url"]),
            enabled=bool(body.get("enabled", True)),
            state=dict(body.get("state") or {}),
            raw=body,
        )
