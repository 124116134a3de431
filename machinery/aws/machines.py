"""State machines, their published versions and aliases, and definition validation."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any

from machinery.asl.validation import validate_definition
from machinery.aws import paging
from machinery.aws.arns import MachineRef, resource_key, state_machine_ref
from machinery.aws.errors import (
    AwsError,
    invalid_arn,
    resource_not_found,
    state_machine_does_not_exist,
    validation,
)
from machinery.aws.protocol import Call, action, read_json
from machinery.control import definitions
from machinery.control import statemachines as sm
from machinery.control.names import name_problem
from machinery.errors import Conflict, MachineryError, NotFound
from machinery.status import ExecutionStatus
from machinery.storage.base import WorkflowRecord

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
#: An alias name is a name that is not a version number.
_ALIAS_NAME = re.compile(r"^(?=.*[a-zA-Z_\-.])[a-zA-Z0-9_\-.]{1,80}$")


def default_role(call: Call) -> str:
    return f"arn:aws:iam::{call.scope.account}:role/machinery"


# lookups ---------------------------------------------------------------------------------------------


def machine_named(call: Call, name: str) -> WorkflowRecord | None:
    """The workflow of that name (not one whose id happens to be ``name``)."""
    workflow = call.orchestrator.storage.get_workflow(name)
    return workflow if workflow is not None and workflow.name == name else None


def find_machine(call: Call, arn: object, qualified: bool = True) -> tuple[WorkflowRecord, MachineRef]:
    """The workflow an ARN names (``StateMachineDoesNotExist`` when none), and the ARN's qualifier."""
    ref = state_machine_ref(arn, qualified)
    workflow = machine_named(call, ref.name)
    if workflow is None:
        raise state_machine_does_not_exist(str(arn))
    if _deleting(call, workflow) and _finish_deletion(call, workflow):
        raise state_machine_does_not_exist(str(arn))
    return workflow, ref


def _deleting(call: Call, workflow: WorkflowRecord) -> bool:
    body = call.orchestrator.storage.get_resource(sm.MACHINE, workflow.workflow_id)
    return bool(body and body.get("deleting"))


def _finish_deletion(call: Call, workflow: WorkflowRecord) -> bool:
    """Delete a workflow marked for deletion once its last execution has ended; True when deleted."""
    storage = call.orchestrator.storage
    if storage.list_executions(workflow.workflow_id, ExecutionStatus.RUNNING, 1, None):
        return False
    storage.delete_workflow(workflow.workflow_id)
    sm.forget_machine(storage, workflow.workflow_id)
    return True


def pinned(
    call: Call, workflow: WorkflowRecord, ref: MachineRef, arn: str
) -> tuple[WorkflowRecord, sm.ExecutionOrigin]:
    """The revision an execution started through ``ref`` runs: the latest, a version's or an alias's."""
    storage = call.orchestrator.storage
    number = ref.version
    alias_name = None
    if ref.alias is not None:
        alias = sm.find_alias(storage, workflow.workflow_id, ref.alias)
        if alias is None:
            raise resource_not_found(arn, "State machine alias")
        number, alias_name = sm.route(alias), alias.name
    if number is None:
        return workflow, sm.ExecutionOrigin()
    version = sm.published_version(storage, workflow.workflow_id, number)
    if version is None:
        raise resource_not_found(arn, "State machine version")
    revision = storage.get_workflow(workflow.workflow_id, version.revision)
    if revision is None:
        raise resource_not_found(arn, "State machine version")
    return revision, sm.ExecutionOrigin(version=number, alias=alias_name)


def definition_of(call: Call, workflow: WorkflowRecord) -> str:
    text = sm.definition_text(call.orchestrator.storage, workflow)
    return text if text is not None else json.dumps(workflow.definition, indent=2)


def machine_type(workflow: WorkflowRecord) -> str:
    return "EXPRESS" if workflow.express else "STANDARD"


#: The message of a definition that is not JSON, as AWS words it (``{}``: the reason).
INVALID_JSON_DEFINITION = "Invalid State Machine Definition: 'INVALID_JSON_DESCRIPTION: {}'"


# definitions ------------------------------------------------------------------------------------------


def _parse_definition(text: str) -> dict[str, Any]:
    parsed = read_json(text, "InvalidDefinition", INVALID_JSON_DEFINITION)
    if not isinstance(parsed, dict):
        raise AwsError(
            "InvalidDefinition",
            "Invalid State Machine Definition: "
            "'SCHEMA_VALIDATION_FAILED: The definition must be an object at /'",
        )
    return parsed


def invalid_definition(error: MachineryError) -> AwsError:
    """A rejected definition in AWS's words: ``'CODE: message at /path, ...'``."""
    parts = []
    for issue in error.issues:
        path = issue.field.removeprefix("definition") or "/"
        message = issue.message
        if "is not a registered service" in message:
            message = f"SCHEMA_VALIDATION_FAILED: {message}"
            path = "/"
        parts.append(f"{message} at {path}")
    return AwsError(
        "InvalidDefinition", f"Invalid State Machine Definition: '{', '.join(parts) or error.message}'"
    )


def _register(
    call: Call, name: str, definition: dict[str, Any], express: bool, ref: str | None = None
) -> WorkflowRecord:
    body = {"name": name, "definition": definition, "express": express}
    try:
        workflow, _created = definitions.register_workflow(call.orchestrator.storage, body, ref=ref)
    except (Conflict, NotFound) as error:
        raise invalid_definition(error) from None
    return workflow


def _check_role(role: object) -> str:
    if not isinstance(role, str) or _ROLE_ARN.match(role) is None:
        raise invalid_arn(role, "not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return role


def _check_name(name: str) -> None:
    if name_problem(name) is not None:
        raise AwsError("InvalidName", f"Invalid Name: '{name}'")


# state machines -------------------------------------------------------------------------------------


@action("CreateStateMachine")
def create_state_machine(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateStateMachine`` action."""
    storage = call.orchestrator.storage
    name = params["name"]
    _check_name(name)
    role = _check_role(params["roleArn"])
    kind = params.get("type", "STANDARD")
    definition = _parse_definition(params["definition"])
    express = kind == "EXPRESS"
    existing = storage.get_workflow(name)
    if existing is not None and existing.name == name:
        settings = sm.machine_settings(storage, existing, default_role(call))
        if existing.definition == definition and existing.express == express and settings.role_arn == role:
            return {"stateMachineArn": call.scope.state_machine(name), "creationDate": settings.created_at}
        raise AwsError(
            "StateMachineAlreadyExists", f"State Machine Already Exists: '{call.scope.state_machine(name)}'"
        )
    _check_tags(params.get("tags", []))
    workflow = _register(call, name, definition, express)
    settings = sm.MachineSettings(
        role_arn=role,
        logging=params.get("loggingConfiguration", sm.DEFAULT_LOGGING),
        tracing=params.get("tracingConfiguration", sm.DEFAULT_TRACING),
        created_at=workflow.created_at,
    )
    sm.save_settings(storage, workflow.workflow_id, settings)
    sm.save_definition_text(storage, workflow, params["definition"])
    arn = call.scope.state_machine(name)
    if params.get("tags"):
        sm.tag(storage, resource_key(arn), {t["key"]: t.get("value", "") for t in params["tags"]})
    answer: dict[str, Any] = {"stateMachineArn": arn, "creationDate": workflow.created_at}
    if params.get("publish"):
        version = sm.publish(storage, workflow, params.get("versionDescription", ""))
        answer["stateMachineVersionArn"] = call.scope.version(name, version.number)
    return answer


@action("DescribeStateMachine")
def describe_state_machine(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DescribeStateMachine`` action."""
    arn = params["stateMachineArn"]
    workflow, ref = find_machine(call, arn)
    if ref.alias is not None:
        raise invalid_arn(arn, "Resource type not valid in this context: 'stateMachineAlias'")
    storage = call.orchestrator.storage
    settings = sm.machine_settings(storage, workflow, default_role(call))
    answer = _machine_json(call, workflow, settings)
    answer["status"] = "DELETING" if _deleting(call, workflow) else "ACTIVE"
    answer["creationDate"] = settings.created_at
    if ref.version is not None:
        version = sm.published_version(storage, workflow.workflow_id, ref.version)
        revision = storage.get_workflow(workflow.workflow_id, version.revision) if version else None
        if version is None or revision is None:
            raise state_machine_does_not_exist(arn)
        answer.update(_machine_json(call, revision, settings))
        answer["stateMachineArn"] = arn
        answer["creationDate"] = version.created_at
        if version.description:
            answer["description"] = version.description
    return answer


def _machine_json(call: Call, workflow: WorkflowRecord, settings: sm.MachineSettings) -> dict[str, Any]:
    return {
        "stateMachineArn": call.scope.state_machine(workflow.name),
        "name": workflow.name,
        "definition": definition_of(call, workflow),
        "roleArn": settings.role_arn,
        "type": machine_type(workflow),
        "loggingConfiguration": settings.logging,
        "tracingConfiguration": settings.tracing,
        "revisionId": str(workflow.version),
    }


@action("UpdateStateMachine")
def update_state_machine(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``UpdateStateMachine`` action."""
    storage = call.orchestrator.storage
    arn = params["stateMachineArn"]
    workflow, _ref = find_machine(call, arn, qualified=False)
    changes = (
        "definition",
        "roleArn",
        "loggingConfiguration",
        "tracingConfiguration",
        "encryptionConfiguration",
    )
    if not any(key in params for key in changes):
        raise AwsError(
            "MissingRequiredParameter",
            "Either the definition, the role ARN, the LoggingConfiguration, the EncryptionConfiguration "
            "or the TracingConfiguration must be specified",
        )
    if _deleting(call, workflow):
        raise AwsError("StateMachineDeleting", f"State Machine is being deleted: '{arn}'")
    settings = sm.machine_settings(storage, workflow, default_role(call))
    if "roleArn" in params:
        settings = replace(settings, role_arn=_check_role(params["roleArn"]))
    if "loggingConfiguration" in params:
        settings = replace(settings, logging=params["loggingConfiguration"])
    if "tracingConfiguration" in params:
        settings = replace(settings, tracing=params["tracingConfiguration"])
    text = params.get("definition")
    definition = _parse_definition(text) if text is not None else workflow.definition
    updated = _register(call, workflow.name, definition, workflow.express, ref=workflow.workflow_id)
    sm.save_settings(storage, workflow.workflow_id, settings)
    sm.save_definition_text(storage, updated, text if text is not None else definition_of(call, workflow))
    answer: dict[str, Any] = {"updateDate": updated.updated_at, "revisionId": str(updated.version)}
    if params.get("publish"):
        version = sm.publish(storage, updated, params.get("versionDescription", ""))
        answer["stateMachineVersionArn"] = call.scope.version(updated.name, version.number)
    return answer


@action("DeleteStateMachine")
def delete_state_machine(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DeleteStateMachine`` action."""
    arn = params["stateMachineArn"]
    ref = state_machine_ref(arn)
    if ref.version is not None or ref.alias is not None:
        raise validation(
            "Deleting a version or an alias is DeleteStateMachineVersion or DeleteStateMachineAlias",
            "API_DOES_NOT_SUPPORT_LABELED_ARNS",
        )
    storage = call.orchestrator.storage
    workflow = machine_named(call, ref.name)
    if workflow is None:
        return {}  # as AWS: deleting what does not exist succeeds
    if not _finish_deletion(call, workflow):
        body = storage.get_resource(sm.MACHINE, workflow.workflow_id)
        if body is None:
            sm.save_settings(
                storage, workflow.workflow_id, sm.machine_settings(storage, workflow, default_role(call))
            )
            body = storage.get_resource(sm.MACHINE, workflow.workflow_id) or {}
        storage.put_resource(sm.MACHINE, workflow.workflow_id, {**body, "deleting": True})
    storage.delete_resource(sm.TAGS, resource_key(call.scope.state_machine(ref.name)))
    return {}


@action("ListStateMachines")
def list_state_machines(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``ListStateMachines`` action."""
    storage = call.orchestrator.storage
    workflows = sorted(storage.list_workflows(), key=lambda w: w.name)
    chosen, token = paging.page("ListStateMachines", workflows, [w.name for w in workflows], params)
    items = []
    for workflow in chosen:
        settings = sm.machine_settings(storage, workflow, default_role(call))
        items.append(
            {
                "stateMachineArn": call.scope.state_machine(workflow.name),
                "name": workflow.name,
                "type": machine_type(workflow),
                "creationDate": settings.created_at,
            }
        )
    return _with_token({"stateMachines": items}, token)


def _with_token(answer: dict[str, Any], token: str | None) -> dict[str, Any]:
    if token is not None:
        answer["nextToken"] = token
    return answer


@action("ValidateStateMachineDefinition")
def validate_state_machine_definition(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    kind = params.get("type", "STANDARD")
    issues = validate_definition(params["definition"], state_machine_type=kind)
    diagnostics = [
        {"severity": "ERROR", "code": issue.code, "message": issue.message, "location": issue.path}
        for issue in issues
    ]
    if params.get("severity") == "WARNING":
        pass  # machinery reports no warnings: every diagnostic is an error
    limit = int(params.get("maxResults") or 100)
    return {
        "result": "FAIL" if diagnostics else "OK",
        "diagnostics": diagnostics[:limit],
        "truncated": len(diagnostics) > limit,
    }


# versions ---------------------------------------------------------------------------------------------


@action("PublishStateMachineVersion")
def publish_state_machine_version(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``PublishStateMachineVersion`` action."""
    arn = params["stateMachineArn"]
    workflow, _ref = find_machine(call, arn, qualified=False)
    if _deleting(call, workflow):
        raise AwsError("StateMachineDeleting", f"State Machine is being deleted: '{arn}'")
    revision = params.get("revisionId")
    expected = int(revision) if isinstance(revision, str) and revision.isdigit() else None
    if revision is not None and expected is None:
        raise AwsError("ConflictException", f"revisionId '{revision}' is not a revision of '{arn}'")
    try:
        version = sm.publish(call.orchestrator.storage, workflow, params.get("description", ""), expected)
    except Conflict as error:
        raise AwsError("ConflictException", error.message) from None
    return {
        "creationDate": version.created_at,
        "stateMachineVersionArn": call.scope.version(workflow.name, version.number),
    }


@action("ListStateMachineVersions")
def list_state_machine_versions(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    workflow, _ref = find_machine(call, params["stateMachineArn"], qualified=False)
    versions = sm.published_versions(call.orchestrator.storage, workflow.workflow_id)
    keys = [f"{10**10 - v.number:010d}" for v in versions]
    chosen, token = paging.page("ListStateMachineVersions", versions, keys, params)
    items = [
        {"stateMachineVersionArn": call.scope.version(workflow.name, v.number), "creationDate": v.created_at}
        for v in chosen
    ]
    return _with_token({"stateMachineVersions": items}, token)


@action("DeleteStateMachineVersion")
def delete_state_machine_version(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DeleteStateMachineVersion`` action."""
    arn = params["stateMachineVersionArn"]
    ref = state_machine_ref(arn)
    if ref.version is None:
        raise invalid_arn(arn, "not a state machine version ARN")
    storage = call.orchestrator.storage
    workflow = machine_named(call, ref.name)
    if workflow is None:
        return {}
    try:
        sm.delete_version(storage, workflow.workflow_id, ref.version)
    except Conflict as error:
        raise AwsError("ConflictException", error.message) from None
    return {}


# aliases ----------------------------------------------------------------------------------------------


def _routes(call: Call, workflow: WorkflowRecord, params: dict[str, Any]) -> tuple[sm.Route, ...]:
    routes = []
    for entry in params["routingConfiguration"]:
        ref = state_machine_ref(entry["stateMachineVersionArn"])
        if ref.version is None or ref.name != workflow.name:
            raise validation(
                f"Routing configuration names '{entry['stateMachineVersionArn']}', not a version of "
                f"'{workflow.name}'",
                "INVALID_ROUTING_CONFIGURATION",
            )
        routes.append(sm.Route(ref.version, int(entry["weight"])))
    try:
        sm.check_routes(call.orchestrator.storage, workflow.workflow_id, tuple(routes))
    except NotFound as error:
        raise resource_not_found(
            params["routingConfiguration"][0]["stateMachineVersionArn"], error.message
        ) from None
    except Conflict as error:
        raise validation(error.message, "INVALID_ROUTING_CONFIGURATION") from None
    return tuple(routes)


def _alias_machine(call: Call, arn: object) -> tuple[WorkflowRecord, str]:
    ref = state_machine_ref(arn)
    if ref.alias is None:
        raise invalid_arn(arn, "not a state machine alias ARN")
    workflow = machine_named(call, ref.name)
    if workflow is None:
        raise resource_not_found(str(arn), "State machine alias")
    return workflow, ref.alias


def _route_json(call: Call, workflow: WorkflowRecord, alias: sm.Alias) -> list[dict[str, Any]]:
    return [
        {"stateMachineVersionArn": call.scope.version(workflow.name, r.version), "weight": r.weight}
        for r in alias.routes
    ]


@action("CreateStateMachineAlias")
def create_state_machine_alias(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``CreateStateMachineAlias`` action."""
    name = params["name"]
    if _ALIAS_NAME.match(name) is None:
        raise AwsError("InvalidName", f"Invalid Name: '{name}'")
    first = (
        params["routingConfiguration"][0]["stateMachineVersionArn"]
        if params["routingConfiguration"]
        else None
    )
    if first is None:
        raise validation(
            "The routing configuration must name one or two versions", "INVALID_ROUTING_CONFIGURATION"
        )
    workflow, _ref = find_machine(
        call, state_machine_ref(first).name and call.scope.state_machine(state_machine_ref(first).name)
    )
    if _deleting(call, workflow):
        raise AwsError(
            "StateMachineDeleting",
            f"State Machine is being deleted: '{call.scope.state_machine(workflow.name)}'",
        )
    routes = _routes(call, workflow, params)
    now = time.time()
    alias = sm.Alias(name, params.get("description", ""), routes, now, now)
    try:
        saved = sm.save_alias(call.orchestrator.storage, workflow.workflow_id, alias, create=True)
    except Conflict as error:
        raise AwsError("ConflictException", error.message) from None
    return {"stateMachineAliasArn": call.scope.alias(workflow.name, name), "creationDate": saved.created_at}


@action("DescribeStateMachineAlias")
def describe_state_machine_alias(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``DescribeStateMachineAlias`` action."""
    arn = params["stateMachineAliasArn"]
    workflow, name = _alias_machine(call, arn)
    alias = sm.find_alias(call.orchestrator.storage, workflow.workflow_id, name)
    if alias is None:
        raise resource_not_found(arn, "State machine alias")
    answer: dict[str, Any] = {
        "stateMachineAliasArn": call.scope.alias(workflow.name, alias.name),
        "name": alias.name,
        "routingConfiguration": _route_json(call, workflow, alias),
        "creationDate": alias.created_at,
        "updateDate": alias.updated_at,
    }
    if alias.description:
        answer["description"] = alias.description
    return answer


@action("UpdateStateMachineAlias")
def update_state_machine_alias(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """The ``UpdateStateMachineAlias`` action."""
    arn = params["stateMachineAliasArn"]
    workflow, name = _alias_machine(call, arn)
    storage = call.orchestrator.storage
    alias = sm.find_alias(storage, workflow.workflow_id, name)
    if alias is None:
        raise resource_not_found(arn, "State machine alias")
    if "description" not in params and "routingConfiguration" not in params:
        raise validation(
            "Either the description or the routing configuration must be given", "MISSING_REQUIRED_PARAMETER"
        )
    routes = _routes(call, workflow, params) if "routingConfiguration" in params else alias.routes
    updated = replace(
        alias, description=params.get("description", alias.description), routes=routes, updated_at=time.time()
    )
    sm.save_alias(storage, workflow.workflow_id, updated, create=False)
    return {"updateDate": updated.updated_at}


@action("DeleteStateMachineAlias")
def delete_state_machine_alias(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    arn = params["stateMachineAliasArn"]
    workflow, name = _alias_machine(call, arn)
    if not sm.delete_alias(call.orchestrator.storage, workflow.workflow_id, name):
        raise resource_not_found(arn, "State machine alias")
    return {}


@action("ListStateMachineAliases")
def list_state_machine_aliases(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    workflow, _ref = find_machine(call, params["stateMachineArn"], qualified=False)
    found = sm.aliases(call.orchestrator.storage, workflow.workflow_id)
    chosen, token = paging.page("ListStateMachineAliases", found, [a.name for a in found], params)
    items = [
        {"stateMachineAliasArn": call.scope.alias(workflow.name, a.name), "creationDate": a.created_at}
        for a in chosen
    ]
    return _with_token({"stateMachineAliases": items}, token)


def _check_tags(tags: list[dict[str, str]]) -> None:
    if len(tags) > sm.MAX_TAGS:
        raise AwsError("TooManyTags", f"a resource can have at most {sm.MAX_TAGS} tags")
