"""``/w``: workflows and their immutable versions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery import shapes
from machinery.api import orchestrator_of
from machinery.api.requests import input_limits
from machinery.api.spec import Body, Link, Param, Reply, operation
from machinery.control import definitions, schemas

blueprint = Blueprint("workflows", __name__, url_prefix="/w")

_REF = {"ref": "the workflow's id or name"}
_WORKFLOW_BODY = Body(
    schemas.WORKFLOW,
    "the workflow in either form (409 names every field that breaks the schema or the definition's rules)",
    invalid=None,  # definitions.register_workflow validates with the same schema, and more
    examples={
        "asl": {
            "name": "hello",
            "definition": {"StartAt": "Greet", "States": {"Greet": {"Type": "Pass", "End": True}}},
        },
        "simple": {
            "name": "shout",
            "services": ["upper"],
            "inputs": [{"name": "message", "type": "string"}],
            "outputs": [{"name": "message", "type": "string"}],
        },
    },
)
_LINKS = {
    "StartEvent": Link("createEvent", {"ref": "$response.body#/workflow_id"}, "start an event"),
    "GetWorkflow": Link("getWorkflow", {"ref": "$response.body#/workflow_id"}, "read it back"),
    "ListVersions": Link("listVersions", {"ref": "$response.body#/workflow_id"}, "its versions"),
    "ReplaceWorkflow": Link("replaceWorkflow", {"ref": "$response.body#/workflow_id"}, "change it"),
    "DeleteWorkflow": Link("deleteWorkflow", {"ref": "$response.body#/workflow_id"}, "delete it"),
}


@blueprint.post("")
@operation(
    "Define a workflow",
    tag="workflows",
    description="Creates the workflow, or a new version of the one with that name. Definitions beyond "
    "`MACHINERY_MAX_DEFINITION_BYTES` (AWS's 1 MiB) or `MACHINERY_MAX_STATES` are refused (409).",
    body=_WORKFLOW_BODY,
    replies=(Reply(201, "the workflow at its new version", shapes.WORKFLOW, links=_LINKS),),
    problems=(409,),
)
def create_workflow(body: Any) -> tuple[Response, int]:
    """Define a workflow, or a new version of the one with that name."""
    orchestrator = orchestrator_of(current_app)
    workflow, _created = definitions.register_workflow(
        orchestrator.storage, body, policy=orchestrator.settings.outbound, limits=input_limits(current_app)
    )
    return jsonify(shapes.workflow_json(workflow)), 201


@blueprint.get("")
@operation("List workflows", tag="workflows", replies=(Reply(200, "every workflow", shapes.WORKFLOW_LIST),))
def list_workflows() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"workflows": [shapes.workflow_json(w, False) for w in storage.list_workflows()]})


@blueprint.get("/<ref>")
@operation(
    "Read a workflow",
    tag="workflows",
    path={"ref": Param(_REF["ref"], example="process-text")},
    query=schemas.GET_WORKFLOW_QUERY,
    replies=(Reply(200, "the workflow at its latest version (or `version`)", shapes.WORKFLOW),),
)
def get_workflow(ref: str, query: dict[str, Any]) -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify(shapes.workflow_json(definitions.find_workflow(storage, ref, query["version"])))


@blueprint.put("/<ref>")
@operation(
    "Replace a workflow",
    tag="workflows",
    description="The whole workflow, as for defining it; creates a new version.",
    path=_REF,
    body=_WORKFLOW_BODY,
    replies=(Reply(200, "the workflow at its new version", shapes.WORKFLOW),),
    problems=(409,),
)
def replace_workflow(ref: str, body: Any) -> Response:
    """Replace a workflow: a new version."""
    orchestrator = orchestrator_of(current_app)
    definitions.find_workflow(orchestrator.storage, ref)
    workflow, _created = definitions.register_workflow(
        orchestrator.storage,
        body,
        ref=ref,
        policy=orchestrator.settings.outbound,
        limits=input_limits(current_app),
    )
    return jsonify(shapes.workflow_json(workflow))


@blueprint.delete("/<ref>")
@operation(
    "Delete a workflow",
    tag="workflows",
    description="Refused (409) while events of it are running; its versions stay for the record.",
    path=_REF,
    replies=(Reply(204, "deleted"),),
    problems=(409,),
)
def delete_workflow(ref: str) -> Response:
    definitions.delete_workflow(orchestrator_of(current_app).storage, ref)
    return Response(status=204)


@blueprint.get("/<ref>/versions")
@operation(
    "List a workflow's versions",
    tag="workflows",
    path={"ref": Param(_REF["ref"], example="process-text")},
    replies=(Reply(200, "every version, oldest first", shapes.VERSION_LIST),),
)
def list_versions(ref: str) -> Response:
    storage = orchestrator_of(current_app).storage
    workflow = definitions.find_workflow(storage, ref)
    versions = storage.list_versions(workflow.workflow_id)
    return jsonify(
        {"workflow_id": workflow.workflow_id, "versions": [shapes.workflow_json(v) for v in versions]}
    )
