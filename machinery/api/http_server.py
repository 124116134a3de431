"""The production HTTP server (waitress) with the limits at the door applied before the app runs.

waitress reads a whole request body before it calls the app; bounded by ``max_request_body_size``, it
stops reading a body past ``MACHINERY_MAX_BODY_BYTES`` (a declared ``Content-Length`` beyond it is
refused before a byte of the body is read). The errors waitress answers itself (a body too large, a
malformed request line or header) become problem details too, like every other error of the API.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

from machinery.api.requests import input_limits
from machinery.limits import body_too_large
from machinery.shapes import error_problem, problem_instance, problem_json


def create_http_server(app: Flask, **adjustments: Any) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for ``app`` (``adjustments``: waitress's settings: host, port, threads, ...)."""
    limit = input_limits(app).max_body_bytes
    # waitress refuses a body of max_request_body_size bytes or more: one more byte than the limit.
    server = create_server(app, max_request_body_size=limit + 1, **adjustments)
    # One listener per address; waitress's stubs do not show the socket map each keeps.
    sockets: Any = server.map if isinstance(server, MultiSocketServer) else getattr(server, "_map", {})
    # waitress wraps the app (proxy headers): the error task is told the limit rather than finding it.
    errors = type("ProblemErrorTask", (_ProblemErrorTask,), {"body_limit": limit})
    channel = type("ProblemChannel", (HTTPChannel,), {"error_task_class": errors})
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = channel  # type: ignore[misc]
    return server


class _ProblemErrorTask(ErrorTask):  # type: ignore[misc]
    """waitress's own error answers, as problem details."""

    body_limit = 0

    def execute(self) -> None:
        request: Any = self.request  # a waitress.parser.HTTPRequestParser (the stubs say otherwise)
        error = request.error
        path = getattr(request, "path", None)  # unquoted, latin-1 text of the bytes sent (WSGI's way)
        instance = problem_instance(path, "latin-1") if path else None
        if isinstance(error, RequestEntityTooLarge):
            body = error_problem(body_too_large(self.body_limit), instance)
        else:
            code = error.reason.lower().replace(" ", "_")
            body = problem_json(
                error.code, code, error.reason, str(error.body), instance, type_uri="about:blank"
            )
        payload = (json.dumps(body) + "\n").encode()
        self.status = f"{error.code} {error.reason}"
        headers: Any = self.response_headers
        headers.append(("Content-Type", "application/problem+json"))
        self.set_close_on_finish()
        self.content_length = len(payload)
        self.write(payload)
