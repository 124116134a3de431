"""``/s``: registered services."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery import shapes
from machinery.api import orchestrator_of
from machinery.api.spec import Body, Link, Param, Reply, operation
from machinery.control import definitions, schemas

blueprint = Blueprint("services", __name__, url_prefix="/s")

_REF = {"ref": "the service's id or name"}
_SERVICE_BODY = Body(
    schemas.SERVICE,
    "the service (409 names every field that breaks the schema)",
    invalid=None,  # definitions.register_service validates with the same schema, and more
    examples={
        "upper": {
            "name": "upper",
            "address": "http://localhost:5001/event",
            "inputs": [{"name": "message", "type": "string"}],
            "outputs": [{"name": "message", "type": "string"}],
        }
    },
)
_LINKS = {
    "GetService": Link("getService", {"ref": "$response.body#/service_id"}, "read it back"),
    "ReplaceService": Link("replaceService", {"ref": "$response.body#/service_id"}, "change it"),
    "DeleteService": Link("deleteService", {"ref": "$response.body#/service_id"}, "delete it"),
    "DefineWorkflow": Link(
        "createWorkflow",
        description="define a workflow whose one Task calls it",
        request_body={
            "name": "calls-a-service",
            "definition": {
                "StartAt": "Call",
                "States": {"Call": {"Type": "Task", "Resource": "$response.body#/name", "End": True}},
            },
        },
    ),
}


@blueprint.post("")
@operation(
    "Register a service",
    tag="services",
    description="Registering a name that exists updates that service and keeps its id (still 201, as in "
    "the seed).",
    body=_SERVICE_BODY,
    replies=(Reply(201, "the service as stored", shapes.SERVICE, links=_LINKS),),
    problems=(409,),
)
def create_service(body: Any) -> tuple[Response, int]:
    """Register a service, or update the one with that name."""
    orchestrator = orchestrator_of(current_app)
    service, _created = definitions.register_service(
        orchestrator.storage, body, policy=orchestrator.settings.outbound
    )
    return jsonify(shapes.service_json(service)), 201


@blueprint.get("")
@operation(
    "List services",
    tag="services",
    replies=(Reply(200, "every service", shapes.SERVICE_LIST),),
)
def list_services() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"services": [shapes.service_json(s) for s in storage.list_services()]})


@blueprint.get("/<ref>")
@operation(
    "Read a service",
    tag="services",
    path={"ref": Param(_REF["ref"], example="upper")},
    replies=(Reply(200, "the service", shapes.SERVICE),),
)
def get_service(ref: str) -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify(shapes.service_json(definitions.find_service(storage, ref)))


@blueprint.put("/<ref>")
@operation(
    "Replace a service",
    tag="services",
    description="The whole service, as for registering; renaming is refused while workflows use it.",
    path=_REF,
    body=_SERVICE_BODY,
    replies=(Reply(200, "the service as stored", shapes.SERVICE),),
    problems=(409,),
)
def replace_service(ref: str, body: Any) -> Response:
    """Replace a service (renaming is refused while workflows use it)."""
    orchestrator = orchestrator_of(current_app)
    definitions.find_service(orchestrator.storage, ref)
    service, _created = definitions.register_service(
        orchestrator.storage, body, ref=ref, policy=orchestrator.settings.outbound
    )
    return jsonify(shapes.service_json(service))


@blueprint.delete("/<ref>")
@operation(
    "Delete a service",
    tag="services",
    description="Refused (409) while a workflow uses the service.",
    path=_REF,
    replies=(Reply(204, "deleted"),),
    problems=(409,),
)
def delete_service(ref: str) -> Response:
    definitions.delete_service(orchestrator_of(current_app).storage, ref)
    return Response(status=204)
