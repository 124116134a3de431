"""The AWS JSON 1.0 protocol on ``POST /``: reading an action, answering it or its error.

``X-Amz-Target: AWSStepFunctions.<Action>`` names the action, the body is its input (JSON), the answer
is its output with ``Content-Type: application/x-amz-json-1.0`` and timestamps as epoch seconds. Errors
are HTTP 400 with ``{"__type": "<Name>", "message": ...}`` (an action that is not supported:
``UnknownOperationException``), so SDKs do not retry them; only a storage outage answers 5xx, which is
worth retrying.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from machinery.api.requests import input_limits
from machinery.api.spec import undocumented
from machinery.aws.arns import Scope
from machinery.aws.errors import AwsError, unknown_operation
from machinery.aws.model import check_input, operation
from machinery.aws.sigv4 import caller
from machinery.control.events import Orchestrator
from machinery.errors import MachineryError, StorageError
from machinery.limits import JsonRefused, load_json

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "AWSStepFunctions."

blueprint = Blueprint("aws", __name__)


@dataclass(frozen=True)
class Call:
    """One request of the AWS API: where it comes from and what serves it."""

    scope: Scope
    orchestrator: Orchestrator
    config: dict[str, Any]


Handler = Callable[[Call, dict[str, Any]], dict[str, Any]]

#: Every supported action and its handler, filled by the action modules with :func:`action`.
ACTIONS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    """Register the handler of an action (its name as in the service model)."""

    def register(handler: Handler) -> Handler:
        assert operation(name) is not None, f"{name} is not a Step Functions action"
        ACTIONS[name] = handler
        return handler

    return register


@blueprint.post("/")
@undocumented(
    "the AWS Step Functions JSON 1.0 protocol (X-Amz-Target actions): AWS's API reference and docs/aws-api.md"
)
def dispatch() -> Response:
    try:
        return answer(handle(request.headers.get("X-Amz-Target", ""), request.get_data(cache=True)), 200)
    except AwsError as error:
        return answer(error.to_json(), error.status)
    except StorageError as error:
        return storage_unavailable(error)


def answer(body: dict[str, Any], status: int) -> Response:
    response = Response(json.dumps(body, separators=(",", ":")), status=status, content_type=CONTENT_TYPE)
    response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
    if status != 200:
        response.headers["x-amzn-ErrorType"] = str(body["__type"])
    return response


def storage_unavailable(error: StorageError) -> Response:
    logger.warning("AWS API: storage error: %s", error)
    return answer({"__type": "ServiceUnavailable", "message": "storage is unavailable; try again"}, 503)


#: The AWS names of machinery's errors that reach the AWS door before an action runs (the auth check,
#: request limits), by HTTP status when the error has no ``aws_type`` of its own.
_BY_STATUS = {401: "UnrecognizedClientException", 403: "AccessDeniedException", 413: "ValidationException"}


@blueprint.errorhandler(MachineryError)
def machinery_error(error: MachineryError) -> Response:
    """Errors raised in front of the door (the auth check) in AWS's shape, never the native one."""
    if isinstance(error, StorageError) and error.status >= 500:
        return storage_unavailable(error)
    name = getattr(error, "aws_type", None) or _BY_STATUS.get(error.status, "ValidationException")
    return answer({"__type": name, "message": error.message}, error.status if error.status < 500 else 400)


@blueprint.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    status = error.code or 400
    name = _BY_STATUS.get(status, "ValidationException")
    return answer(
        {"__type": name, "message": error.description or error.name}, status if status < 500 else 400
    )


@blueprint.errorhandler(Exception)
def unexpected(error: Exception) -> Response:
    """A bug, in AWS's shape (``InternalFailure``, which SDKs retry), never the native problem body."""
    logger.exception("AWS API: unexpected error", exc_info=error)
    return answer(
        {"__type": "InternalFailure", "message": "unexpected server error; see the server log"}, 500
    )


def handle(target: str, raw: bytes) -> dict[str, Any]:
    """Run the action ``target`` names with the JSON input ``raw``; its output."""
    name = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
    handler = ACTIONS.get(name)
    model = operation(name) if handler is not None else None
    if handler is None or model is None:
        raise unknown_operation(target)
    config = current_app.config
    who = caller(request.headers, str(config["AWS_REGION"]), str(config["AWS_ACCOUNT"]))
    params = read_json(raw, "SerializationException", "the body is not valid JSON: {}") if raw.strip() else {}
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "the body must be a JSON object")
    check_input(model, params)
    orchestrator: Orchestrator = current_app.extensions["machinery"]
    return handler(Call(Scope(who.region, who.account), orchestrator, dict(config)), params)


def read_json(text: str | bytes, error: str, message: str) -> Any:
    """JSON text of a request — its body, or a string member holding JSON (``input``, ``definition``,
    ``output``) — read as every front door reads it (:func:`machinery.limits.load_json`: no ``NaN``, no
    number beyond a double, no lone surrogate, bounded nesting). Otherwise the AWS error ``error``, whose
    ``message`` has ``{}`` where the reason goes."""
    try:
        return load_json(text, input_limits(current_app))
    except JsonRefused as refused:
        raise AwsError(error, message.format(refused.message)) from None
