"""``GET /healthcheck``: 204 when the server and its storage answer."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from machinery.api import orchestrator_of
from machinery.api.spec import Reply, operation

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthcheck")
@operation("Check health", tag="health", replies=(Reply(204, "the server and its storage answer"),))
def healthcheck() -> Response:
    orchestrator_of(current_app).storage.next_due()
    return Response(status=204)
