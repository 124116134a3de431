"""Reading requests: ``request.get_json()`` parses bodies within the limits and raises our errors.

Two of Flask's extension points: the app's JSON provider loads with :func:`machinery.limits.load_json`
(no ``NaN``, no number a double cannot hold, no lone surrogate, bounded nesting), and the app's request
class turns every failure into :class:`~machinery.errors.BadRequest` or
:class:`~machinery.errors.UnsupportedMediaType`, which the error handlers answer as problem details. The
body size limit is the framework's own (``MAX_CONTENT_LENGTH``, from ``MACHINERY_MAX_BODY_BYTES``): a body
that declares more is refused before it is read.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask import Flask, Request, Response
from flask.json.provider import DefaultJSONProvider
from flask.sansio.app import App
from werkzeug.sansio.response import Response as BaseResponse

from machinery.errors import BadRequest, FieldIssue, UnsupportedMediaType
from machinery.limits import InputLimits, JsonRefused, bad_request_of, load_json

# Dates and dataclasses as Flask writes them (its ``default``), newline-terminated as Flask's answers are.
_ORJSON_OPTIONS = (
    orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def input_limits(app: App) -> InputLimits:
    """The limits an app was configured with."""
    limits: InputLimits = app.extensions["machinery.limits"]
    return limits


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, loading within the app's limits (what ``request.get_json()`` calls) and
    answering by orjson (``jsonify``): several times faster than :mod:`json`, UTF-8 as it is, a NaN
    written as ``null`` (JSON has no NaN). What orjson cannot write (integers beyond 64 bits) and the
    indented answers of debug mode go through Flask's own writer."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return load_json(s, input_limits(self._app))

    def response(self, *args: Any, **kwargs: Any) -> BaseResponse:
        value = self._prepare_response_obj(args, kwargs)
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(value)
        try:
            body = orjson.dumps(value, default=self.default, option=_ORJSON_OPTIONS)
        except TypeError:
            return super().response(value)
        return Response(body, mimetype=self.mimetype)


class ApiRequest(Request):
    """Flask's request, answering a body it cannot read with our errors."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            raise UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)",
                issues=[FieldIssue("Content-Type", f"got {self.content_type or 'none'}")],
            )
        if isinstance(e, JsonRefused):
            raise bad_request_of(e)
        raise BadRequest("the body is not valid JSON", issues=[FieldIssue("(body)", str(e))])


def install(app: Flask, limits: InputLimits) -> None:
    """Make ``app`` read requests with :class:`ApiRequest` within ``limits``."""
    app.extensions["machinery.limits"] = limits
    app.json = LimitedJSONProvider(app)
    app.request_class = ApiRequest
    # The framework refuses a body over this size before reading it (413, answered as a problem).
    app.config["MAX_CONTENT_LENGTH"] = limits.max_body_bytes
