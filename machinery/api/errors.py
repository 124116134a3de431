"""One place that maps errors to JSON responses: never an HTML page, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from machinery.errors import MachineryError

logger = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    """Answer every error as JSON: machinery's own, HTTP errors, and anything unexpected (a 500)."""

    @app.errorhandler(MachineryError)
    def machinery_error(error: MachineryError) -> tuple[Response, int]:
        return jsonify(error.to_json()), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": code, "message": error.description}), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        logger.exception("unhandled error")
        return jsonify(
            {"error": "internal_error", "message": "unexpected server error; see the server log"}
        ), 500
