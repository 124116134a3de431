"""``/s``: registered services."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from machinery.api import orchestrator_of
from machinery.api.bodies import json_body
from machinery.control import definitions

blueprint = Blueprint("services", __name__, url_prefix="/s")


@blueprint.post("")
def create_service() -> tuple[Response, int]:
    orchestrator = orchestrator_of(current_app)
    service, _created = definitions.register_service(
        orchestrator.storage, json_body(), policy=orchestrator.settings.outbound
    )
    # The seed answers 201 for a registration whether the name was new or updated.
    return jsonify(definitions.service_json(service)), 201


@blueprint.get("")
def list_services() -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify({"services": [definitions.service_json(s) for s in storage.list_services()]})


@blueprint.get("/<ref>")
def get_service(ref: str) -> Response:
    storage = orchestrator_of(current_app).storage
    return jsonify(definitions.service_json(definitions.find_service(storage, ref)))


@blueprint.put("/<ref>")
def replace_service(ref: str) -> Response:
    orchestrator = orchestrator_of(current_app)
    definitions.find_service(orchestrator.storage, ref)
    service, _created = definitions.register_service(
        orchestrator.storage, json_body(), ref=ref, policy=orchestrator.settings.outbound
    )
    return jsonify(definitions.service_json(service))


@blueprint.delete("/<ref>")
def delete_service(ref: str) -> Response:
    definitions.delete_service(orchestrator_of(current_app).storage, ref)
    return Response(status=204)
