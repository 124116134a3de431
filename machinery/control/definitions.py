"""Registering services and workflows: validation rules and versioning."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from machinery.asl.simple import ServiceSignature, canonical_type, check_simple_workflow, compile_simple
from machinery.asl.validation import validate_definition
from machinery.control import schemas
from machinery.control.schemas import check_body
from machinery.control.targets import definition_issues, service_issues
from machinery.engine.dataflow import to_json_text
from machinery.errors import Conflict, FieldIssue, InvalidDefinition, NotFound
from machinery.limits import InputLimits, limit_data
from machinery.runtime.outbound import OutboundPolicy
from machinery.status import ExecutionStatus
from machinery.storage.base import ServiceRecord, Storage, WorkflowRecord

_SERVICE_SETTINGS = ("method", "headers", "timeout_seconds", "description")


def register_service(
    storage: Storage, body: Any, ref: str | None = None, policy: OutboundPolicy | None = None
) -> tuple[ServiceRecord, bool]:
    """Create or update a service; ``ref`` (id or name) for updates through ``PUT``.

    :param policy: the outbound policy its address must pass (default: the default lists).
    """
    issues = check_body(schemas.SERVICE, body)
    if not issues:
        issues = service_issues(body, policy or OutboundPolicy())
    if issues:
        raise Conflict("invalid service definition", issues=issues)
    if ref is not None:
        existing = storage.get_service(ref)
        if existing is None:
            raise NotFound(f"no service '{ref}'")
        other = storage.get_service(body["name"])
        if other is not None and other.service_id != existing.service_id:
            raise Conflict(
                f"another service is already named '{body['name']}'",
                issues=[FieldIssue("name", "is already taken")],
            )
        if existing.name != body["name"] and storage.workflows_using(existing.name):
            raise Conflict(
                f"service '{existing.name}' is used by workflows and cannot be renamed",
                issues=[FieldIssue("name", "cannot change while workflows use the service")],
            )
        ref = existing.service_id
    settings = {key: body[key] for key in _SERVICE_SETTINGS if key in body}
    return storage.upsert_service(
        body["name"],
        body["address"],
        body.get("inputs", []),
        body.get("outputs", []),
        settings,
        time.time(),
        ref=ref,
    )


def find_service(storage: Storage, ref: str) -> ServiceRecord:
    service = storage.get_service(ref)
    if service is None:
        raise NotFound(f"no service '{ref}'", service=ref)
    return service


def delete_service(storage: Storage, ref: str) -> None:
    service = find_service(storage, ref)
    users = storage.workflows_using(service.name)
    if users:
        raise Conflict(
            f"service '{service.name}' is used by workflows: {', '.join(sorted(users))}",
            workflows=sorted(users),
        )
    storage.delete_service(service.service_id)


def delete_workflow(storage: Storage, ref: str) -> None:
    """Delete a workflow (its versions stay for the record) unless events of it are still running."""
    workflow = find_workflow(storage, ref)
    if storage.list_executions(workflow.workflow_id, ExecutionStatus.RUNNING, 1, None):
        # A running execution loads its pinned version through the workflow, which must stay.
        raise Conflict(
            f"workflow '{workflow.name}' has running events; stop them or let them finish first",
            workflow=workflow.name,
        )
    storage.delete_workflow(workflow.workflow_id)


def find_workflow(storage: Storage, ref: str, version: int | None = None) -> WorkflowRecord:
    workflow = storage.get_workflow(ref, version)
    if workflow is None:
        suffix = f" at version {version}" if version is not None else ""
        raise NotFound(f"no workflow '{ref}'{suffix}", workflow=ref)
    return workflow


def register_workflow(
    storage: Storage,
    body: Any,
    ref: str | None = None,
    policy: OutboundPolicy | None = None,
    limits: InputLimits | None = None,
) -> tuple[WorkflowRecord, bool]:
    """Validate a workflow in either form and store it as a new version.

    :param policy: the outbound policy the targets it writes out must pass (default: the default lists).
    :param limits: the definition's size and state-count limits (AWS's, by default).
    """
    issues = check_body(schemas.WORKFLOW, body)
    if issues:
        raise Conflict("invalid workflow", issues=issues)
    if ref is not None:
        existing = find_workflow(storage, ref)
        other = storage.get_workflow(body["name"])
        if other is not None and other.workflow_id != existing.workflow_id:
            raise Conflict(
                f"another workflow is already named '{body['name']}'",
                issues=[FieldIssue("name", "is already taken")],
            )
        ref = existing.workflow_id
    limits = limits or InputLimits()
    if "services" in body:
        definition, services = _simple_definition(storage, body)
        check_definition_limits(definition, limits)
    else:
        # Before validation, which costs time in proportion to the definition.
        check_definition_limits(body["definition"], limits)
        definition, services = _asl_definition(storage, body["definition"], bool(body.get("express")))
        refused = definition_issues(definition, policy or OutboundPolicy())
        if refused:
            raise InvalidDefinition(
                "the definition calls targets or sends headers it may not", issues=refused
            )
    return storage.save_workflow(
        body["name"], body, definition, services, bool(body.get("express", False)), time.time(), ref=ref
    )


def check_definition_limits(definition: dict[str, Any], limits: InputLimits) -> None:
    """A definition must stay within AWS's 1 MiB (compact UTF-8 JSON) and the state-count limit.

    :raises InvalidDefinition: naming the limit and its setting.
    """
    size = len(to_json_text(definition).encode())
    if size > limits.max_definition_bytes:
        raise InvalidDefinition(
            f"the definition has {size} bytes, more than the limit of {limits.max_definition_bytes} "
            "(MACHINERY_MAX_DEFINITION_BYTES)",
            issues=[FieldIssue("definition", f"has {size} bytes (limit {limits.max_definition_bytes})")],
            **limit_data("max_definition_bytes", limits.max_definition_bytes),
        )
    count = count_states(definition)
    if count > limits.max_states:
        raise InvalidDefinition(
            f"the definition has {count} states, more than the limit of {limits.max_states} "
            "(MACHINERY_MAX_STATES)",
            issues=[FieldIssue("definition", f"has {count} states (limit {limits.max_states})")],
            **limit_data("max_states", limits.max_states),
        )


def count_states(container: Any) -> int:
    """The states of a definition, those inside Parallel branches and Map processors included."""
    return sum(1 for _ in _states(container))


def service_signature(service: ServiceRecord) -> ServiceSignature:
    """What a registered service declares, with canonical type names (for the simple form's checks)."""
    return ServiceSignature(
        name=service.name,
        inputs={f["name"]: canonical_type(f["type"]) or "any" for f in service.inputs},
        outputs={f["name"]: canonical_type(f["type"]) or "any" for f in service.outputs},
    )


def _simple_definition(storage: Storage, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    names: list[str] = body["services"]
    signatures: dict[str, ServiceSignature] = {}
    missing = []
    for index, name in enumerate(names):
        service = storage.get_service(name)
        if service is None:
            missing.append((index, name))
            continue
        signatures[name] = service_signature(service)
    if missing:
        unknown = sorted({name for _, name in missing})
        raise Conflict(
            f"unknown services: {', '.join(unknown)}",
            issues=[
                FieldIssue(f"services/{index}", f"service '{name}' is not registered")
                for index, name in missing
            ],
            unknown_services=unknown,
        )
    for index, operation in enumerate(body.get("operations", [])):
        anchor = operation.get("before") or operation.get("after")
        if anchor and anchor not in names:
            raise Conflict(
                "an operation refers to a service the workflow does not call",
                issues=[FieldIssue(f"operations/{index}", f"'{anchor}' is not in 'services'")],
            )
    issues = check_simple_workflow(body, signatures)
    if issues:
        raise InvalidDefinition("services' inputs are not all provided", issues=issues)
    return compile_simple(body), list(dict.fromkeys(names))


def _asl_definition(
    storage: Storage, definition: dict[str, Any], express: bool = False
) -> tuple[dict[str, Any], list[str]]:
    # Express machines are validated as AWS validates them (no .sync, no .waitForTaskToken).
    problems = validate_definition(definition, state_machine_type="EXPRESS" if express else "STANDARD")
    if problems:
        raise InvalidDefinition(
            "invalid state machine definition",
            issues=[FieldIssue(f"definition{p.path}", f"{p.code}: {p.message}") for p in problems],
        )
    services: list[str] = []
    for resource in _resources(definition):
        base = resource.removesuffix(".waitForTaskToken").removesuffix(".sync")
        if base.startswith(("arn:", "http://", "https://")):
            continue
        if storage.get_service(base) is None:
            raise Conflict(
                f"unknown services: {base}",
                issues=[FieldIssue("definition", f"Task resource '{base}' is not a registered service")],
                unknown_services=[base],
            )
        services.append(base)
    return definition, list(dict.fromkeys(services))


def _resources(container: Any) -> list[str]:
    return [
        state["Resource"]
        for state in _states(container)
        if state.get("Type") == "Task" and isinstance(state.get("Resource"), str)
    ]


def _states(container: Any) -> Iterator[dict[str, Any]]:
    """Every state object of a definition in document order (each state, then the states nested in
    it), without recursion."""
    pending: list[Iterator[Any]] = [_state_objects(container)]
    while pending:
        state = next(pending[-1], None)
        if state is None:
            pending.pop()
            continue
        yield state
        branches = state.get("Branches")
        nested = [
            *(branches if isinstance(branches, list) else ()),
            state.get("ItemProcessor") or state.get("Iterator"),
        ]
        pending.append(inner for part in nested for inner in _state_objects(part))


def _state_objects(container: Any) -> Iterator[dict[str, Any]]:
    states = container.get("States") if isinstance(container, dict) else None
    for state in states.values() if isinstance(states, dict) else ():
        if isinstance(state, dict):
            yield state
