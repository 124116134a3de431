"""What the AWS API adds to a workflow: its settings, published versions, aliases and tags.

A state machine *is* a workflow. Every change of a workflow already makes a new immutable machinery
version (a *revision*, 1, 2, 3 ...); an AWS **version** is a revision that was *published* explicitly
(``publish=true`` or ``PublishStateMachineVersion``) and gets its own number (1, 2, 3 ... per state
machine, never reused after a deletion). So version 2 of a state machine may run revision 5: the record
of a published version names the revision it froze. An **alias** routes executions to one or two
published versions by weight. These records live in the storage's resource store; the engine never reads
them (an execution pins a revision, as any execution does).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from machinery.errors import Conflict, NotFound
from machinery.storage.base import Storage, WorkflowRecord

MACHINE = "state-machine"
VERSION = "version"
ALIAS = "alias"
TAGS = "tags"
EXECUTION = "execution"
DEFINITION_TEXT = "definition-text"

DEFAULT_LOGGING: dict[str, Any] = {"level": "OFF", "includeExecutionData": False}
DEFAULT_TRACING: dict[str, Any] = {"enabled": False}


@dataclass(frozen=True)
class MachineSettings:
    """What CreateStateMachine takes beyond a workflow's name, definition and type."""

    role_arn: str
    logging: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_LOGGING))
    tracing: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRACING))
    created_at: float = 0.0


@dataclass(frozen=True)
class PublishedVersion:
    number: int
    revision: int
    description: str
    created_at: float
    deleted: bool = False


@dataclass(frozen=True)
class Route:
    version: int
    weight: int


@dataclass(frozen=True)
class Alias:
    """A state machine alias: its name and the versions it routes executions to, by weight."""

    name: str
    description: str
    routes: tuple[Route, ...]
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["routes"] = [asdict(route) for route in self.routes]
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Alias:
        routes = tuple(Route(int(r["version"]), int(r["weight"])) for r in body["routes"])
        return cls(body["name"], body["description"], routes, body["created_at"], body["updated_at"])


@dataclass(frozen=True)
class ExecutionOrigin:
    """Which published version (and through which alias) an execution was started on, if any."""

    version: int | None = None
    alias: str | None = None


# settings ------------------------------------------------------------------------------------------


def machine_settings(storage: Storage, workflow: WorkflowRecord, default_role: str) -> MachineSettings:
    """The workflow's AWS settings; a workflow made by the native API gets the defaults."""
    body = storage.get_resource(MACHINE, workflow.workflow_id)
    if body is None:
        first = storage.get_workflow(workflow.workflow_id, 1)
        created = first.created_at if first is not None else workflow.created_at
        return MachineSettings(role_arn=default_role, created_at=created)
    return MachineSettings(body["role_arn"], body["logging"], body["tracing"], body["created_at"])


def save_settings(storage: Storage, workflow_id: str, settings: MachineSettings) -> None:
    storage.put_resource(MACHINE, workflow_id, asdict(settings))


def definition_text(storage: Storage, workflow: WorkflowRecord) -> str | None:
    """The definition exactly as it was sent to the AWS API for this revision (None: not sent so)."""
    body = storage.get_resource(DEFINITION_TEXT, _revision_key(workflow.workflow_id, workflow.version))
    return None if body is None else str(body["text"])


def save_definition_text(storage: Storage, workflow: WorkflowRecord, text: str) -> None:
    storage.put_resource(
        DEFINITION_TEXT, _revision_key(workflow.workflow_id, workflow.version), {"text": text}
    )


def forget_machine(storage: Storage, workflow_id: str) -> None:
    """Drop what the AWS API kept of a deleted workflow (its revisions' texts stay with the revisions)."""
    storage.delete_resource(MACHINE, workflow_id)
    for key, _ in storage.list_resources(VERSION, f"{workflow_id}/"):
        storage.delete_resource(VERSION, key)
    for key, _ in storage.list_resources(ALIAS, f"{workflow_id}/"):
        storage.delete_resource(ALIAS, key)


def _revision_key(workflow_id: str, revision: int) -> str:
    return f"{workflow_id}/{revision:010d}"


# published versions ----------------------------------------------------------------------------------


def _version(body: dict[str, Any]) -> PublishedVersion:
    return PublishedVersion(
        int(body["number"]), int(body["revision"]), str(body["description"]), float(body["created_at"]),
        bool(body.get("deleted", False)),
    )  # fmt: skip


def published_versions(
    storage: Storage, workflow_id: str, include_deleted: bool = False
) -> list[PublishedVersion]:
    """Newest first."""
    found = [_version(body) for _, body in storage.list_resources(VERSION, f"{workflow_id}/")]
    return [v for v in reversed(found) if include_deleted or not v.deleted]


def published_version(storage: Storage, workflow_id: str, number: int) -> PublishedVersion | None:
    body = storage.get_resource(VERSION, _revision_key(workflow_id, number))
    found = None if body is None else _version(body)
    return None if found is None or found.deleted else found


def publish(
    storage: Storage, workflow: WorkflowRecord, description: str = "", expected_revision: int | None = None
) -> PublishedVersion:
    """Publish the workflow's current revision, or give back its version when it is already published.

    :raises Conflict: ``expected_revision`` is not the current revision, or the revision was published
        with another description.
    """
    if expected_revision is not None and expected_revision != workflow.version:
        raise Conflict(
            f"revision {expected_revision} is not the current revision ({workflow.version}) "
            f"of '{workflow.name}'"
        )
    every = published_versions(storage, workflow.workflow_id, include_deleted=True)
    latest = next((v for v in every if not v.deleted), None)
    if latest is not None and latest.revision == workflow.version:
        if description and description != latest.description:
            raise Conflict(
                f"revision {workflow.version} is already published as version {latest.number} "
                "with another description"
            )
        return latest
    number = (every[0].number if every else 0) + 1
    while True:
        version = PublishedVersion(number, workflow.version, description, time.time())
        if storage.insert_resource(VERSION, _revision_key(workflow.workflow_id, number), asdict(version)):
            return version
        number += 1  # published concurrently


def delete_version(storage: Storage, workflow_id: str, number: int) -> None:
    """Delete a published version (kept as a tombstone: its number is never given again).

    :raises Conflict: an alias routes to it.
    """
    version = published_version(storage, workflow_id, number)
    if version is None:
        return
    for alias in aliases(storage, workflow_id):
        if any(route.version == number for route in alias.routes):
            raise Conflict(f"version {number} is used by the alias '{alias.name}'")
    storage.put_resource(VERSION, _revision_key(workflow_id, number), {**asdict(version), "deleted": True})


# aliases --------------------------------------------------------------------------------------------


def aliases(storage: Storage, workflow_id: str) -> list[Alias]:
    return [Alias.from_json(body) for _, body in storage.list_resources(ALIAS, f"{workflow_id}/")]


def find_alias(storage: Storage, workflow_id: str, name: str) -> Alias | None:
    body = storage.get_resource(ALIAS, f"{workflow_id}/{name}")
    return None if body is None else Alias.from_json(body)


def check_routes(storage: Storage, workflow_id: str, routes: tuple[Route, ...]) -> None:
    """One or two distinct published versions whose weights add up to 100.

    :raises NotFound: a version that is not published.
    :raises Conflict: (``INVALID_ROUTING_CONFIGURATION``) anything else.
    """
    if not 1 <= len(routes) <= 2 or len({r.version for r in routes}) != len(routes):
        raise Conflict("the routing configuration must name one or two different versions")
    if sum(r.weight for r in routes) != 100 or any(not 0 <= r.weight <= 100 for r in routes):
        raise Conflict("the weights of the routing configuration must add up to 100")
    for route in routes:  # pylint: disable=redefined-outer-name
        if published_version(storage, workflow_id, route.version) is None:
            raise NotFound(f"version {route.version} is not published")


def save_alias(storage: Storage, workflow_id: str, alias: Alias, create: bool) -> Alias:
    """Create (or, with ``create`` False, replace) an alias; an identical create is not an error.

    :raises Conflict: an alias of that name exists with another routing or description.
    """
    key = f"{workflow_id}/{alias.name}"
    if create:
        existing = find_alias(storage, workflow_id, alias.name)
        if existing is not None:
            if existing.routes == alias.routes and existing.description == alias.description:
                return existing
            raise Conflict(f"an alias named '{alias.name}' already exists")
        if not storage.insert_resource(ALIAS, key, alias.to_json()):
            raise Conflict(f"an alias named '{alias.name}' already exists")
        return alias
    storage.put_resource(ALIAS, key, alias.to_json())
    return alias


def delete_alias(storage: Storage, workflow_id: str, name: str) -> bool:
    return storage.delete_resource(ALIAS, f"{workflow_id}/{name}")


def route(alias: Alias, draw: float | None = None) -> int:
    """The version an execution started through ``alias`` runs, drawn by the routes' weights."""
    point = (random.random() if draw is None else draw) * 100
    for entry in alias.routes:
        if point < entry.weight:
            return entry.version
        point -= entry.weight
    return alias.routes[-1].version


# executions -----------------------------------------------------------------------------------------


def execution_origin(storage: Storage, execution_id: str) -> ExecutionOrigin:
    body = storage.get_resource(EXECUTION, execution_id)
    if body is None:
        return ExecutionOrigin()
    return ExecutionOrigin(body.get("version"), body.get("alias"))


def save_execution_origin(storage: Storage, execution_id: str, origin: ExecutionOrigin) -> bool:
    """Record the version or alias an execution was started through, unless one is recorded for that
    id already (a repeated named start keeps the original's): True when this call stored one."""
    if origin.version is not None or origin.alias is not None:
        return storage.insert_resource(EXECUTION, execution_id, asdict(origin))
    return False


# tags -----------------------------------------------------------------------------------------------

MAX_TAGS = 50


def tags(storage: Storage, resource: str) -> dict[str, str]:
    body = storage.get_resource(TAGS, resource)
    return {} if body is None else {str(k): str(v) for k, v in body.items()}


def tag(storage: Storage, resource: str, new: dict[str, str]) -> None:
    """Add or replace tags.

    :raises Conflict: the resource would have more than :data:`MAX_TAGS` tags.
    """
    merged = {**tags(storage, resource), **new}
    if len(merged) > MAX_TAGS:
        raise Conflict(f"a resource can have at most {MAX_TAGS} tags")
    storage.put_resource(TAGS, resource, merged)


def untag(storage: Storage, resource: str, keys: list[str]) -> None:
    kept = {k: v for k, v in tags(storage, resource).items() if k not in keys}
    if kept:
        storage.put_resource(TAGS, resource, kept)
    else:
        storage.delete_resource(TAGS, resource)
