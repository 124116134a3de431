"""``/tokens``: API tokens (scope ``admin``); ``machinery tokens`` does the same against the database."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from machinery import shapes
from machinery.api.spec import Body, Reply, operation
from machinery.auth import gate_of
from machinery.auth.tokens import create_token, issued_json, revoke_token, token_json
from machinery.control import schemas
from machinery.errors import Conflict

blueprint = Blueprint("tokens", __name__, url_prefix="/tokens")


@blueprint.get("")
@operation(
    "List API tokens", tag="tokens", replies=(Reply(200, "every token (never a secret)", shapes.TOKEN_LIST),)
)
def list_tokens() -> Response:
    storage = gate_of(current_app).storage
    return jsonify({"tokens": [token_json(record) for record in storage.list_api_tokens()]})


@blueprint.post("")
@operation(
    "Create an API token",
    operation_id="createToken",
    tag="tokens",
    description="The answer holds the token and its SigV4 secret: they are shown this once.",
    body=Body(schemas.TOKEN, "its name and scope (default read)", invalid=Conflict),
    replies=(Reply(201, "the token with its secrets", shapes.ISSUED_TOKEN),),
    problems=(409,),
)
def create(body: dict[str, Any]) -> tuple[Response, int]:
    """Create an API token; its secrets are answered this once."""
    gate = gate_of(current_app)
    issued = create_token(gate.storage, gate.keys, body["name"], body.get("scope", "read"), time.time())
    gate.tokens_changed()
    return jsonify(issued_json(issued)), 201


@blueprint.delete("/<ref>")
@operation(
    "Revoke an API token",
    operation_id="revokeToken",
    tag="tokens",
    description="Its bearer value, sessions and SigV4 keys stop working at once.",
    path={"ref": "the token's id or name"},
    replies=(Reply(204, "revoked"),),
)
def revoke(ref: str) -> Response:
    """Revoke an API token by id or name."""
    gate = gate_of(current_app)
    revoke_token(gate.storage, ref)
    gate.tokens_changed()
    return Response(status=204)
