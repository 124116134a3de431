"""``/tokens``: API tokens (scope ``admin``); ``machinery tokens`` does the same against the database."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify

from machinery.api.bodies import json_body
from machinery.auth import gate_of
from machinery.auth.tokens import create_token, issued_json, revoke_token, token_json
from machinery.errors import Conflict, FieldIssue

blueprint = Blueprint("tokens", __name__, url_prefix="/tokens")


@blueprint.get("")
def list_tokens() -> Response:
    storage = gate_of(current_app).storage
    return jsonify({"tokens": [token_json(record) for record in storage.list_api_tokens()]})


@blueprint.post("")
def create() -> tuple[Response, int]:
    """``POST /tokens``: create an API token (``name``, ``scope``); the secret is answered once."""
    body = json_body()
    if not isinstance(body, dict):
        raise Conflict("the body must be an object", issues=[FieldIssue("(body)", "expected an object")])
    unknown = sorted(set(body) - {"name", "scope"})
    if unknown:
        raise Conflict(
            "unknown fields", issues=[FieldIssue(name, "is not a token field") for name in unknown]
        )
    gate = gate_of(current_app)
    issued = create_token(gate.storage, gate.keys, body.get("name"), body.get("scope", "read"), time.time())
    gate.tokens_changed()
    return jsonify(issued_json(issued)), 201


@blueprint.delete("/<ref>")
def revoke(ref: str) -> Response:
    gate = gate_of(current_app)
    revoke_token(gate.storage, ref)
    gate.tokens_changed()
    return Response(status=204)
