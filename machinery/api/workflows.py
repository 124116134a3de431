"""``/w``: workflows and their immutable versions."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.bodies import int_arg, json_body
from machinery.control import definitions

blueprint = Blueprint("workflows", __name__, url_prefix="/w")


@blueprint.post("")
def create_workflow() -> tuple[Response, int]:
    orchestrator = orchestrator_of(current_app)
    workflow, _created = definitions.register_workflow(
        orchestrator.storage, json_body(), policy=orchestrator.settings.outbound
    )
    return jsonify(definitions.workflow_json(workflow)), 201


@blueprint.get("")
def list_workflows() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"workflows": [definitions.workflow_json(w, False) for w in storage.list_workflows()]})


@blueprint.get("/<ref>")
def get_workflow(ref: str) -> Response:
    storage = orchestrator_of(current_app).storage
    version = int_arg("version", None, minimum=1)
    return jsonify(definitions.workflow_json(definitions.find_workflow(storage, ref, version)))


@blueprint.put("/<ref>")
def replace_workflow(ref: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    definitions.find_workflow(orchestrator.storage, ref)
    workflow, _created = definitions.register_workflow(
        orchestrator.storage, json_body(), ref=ref, policy=orchestrator.settings.outbound
    )
    return jsonify(definitions.workflow_json(workflow))


@blueprint.delete("/<ref>")
def delete_workflow(ref: str) -> Response:
    definitions.delete_workflow(orchestrator_of(current_app).storage, ref)
    return Response(status=204)


@blueprint.get("/<ref>/versions")
def list_versions(ref: str) -> Response:
    storage = orchestrator_of(current_app).storage
    workflow = definitions.find_workflow(storage, ref)
    versions = storage.list_versions(workflow.workflow_id)
    return jsonify(
        {"workflow_id": workflow.workflow_id, "versions": [definitions.workflow_json(v) for v in versions]}
    )
