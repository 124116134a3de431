"""One place that maps errors to responses: RFC 9457 problem details, never an HTML page or a traceback."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from machinery.api.requests import input_limits
from machinery.errors import MachineryError
from machinery.limits import body_too_large
from machinery.shapes import error_problem, problem_instance, problem_json

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem as an ``application/problem+json`` response with the problem's status."""
    response = current_app.response_class(
        json.dumps(body) + "\n", status=int(body["status"]), mimetype=PROBLEM_MEDIA_TYPE
    )
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error as JSON: machinery's own, HTTP errors, and anything unexpected (a 500)."""

    @app.errorhandler(MachineryError)
    def machinery_error(error: MachineryError) -> Response:
        return problem_response(error_problem(error, _instance()))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if isinstance(error, RequestEntityTooLarge):
            return problem_response(
                error_problem(
                    body_too_large(input_limits(current_app).max_body_bytes, request.content_length),
                    _instance(),
                )
            )
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        # A plain HTTP error (unknown route, method not allowed): RFC 9457's "about:blank" type, whose
        # title is the status phrase. Its headers (Allow for 405) are kept.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        body = problem_json(
            status, code, error.name, error.description or error.name, _instance(), type_uri="about:blank"
        )
        return problem_response(body, headers)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.exception("unhandled error")
        body = problem_json(
            500, "internal_error", "Internal server error", "unexpected server error; see the server log",
            _instance(),
        )  # fmt: skip
        return problem_response(body)


def _instance() -> str:
    """The request's path as a URI reference (``instance``): percent-encoded UTF-8, as it was sent."""
    return problem_instance(request.path)
