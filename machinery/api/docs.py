"""The API's own description: ``/openapi.json``, the interactive ``/docs`` page and ``/problems`` pages.

``/docs`` is Swagger UI, served offline by machinery itself: its files come from the npm package
``swagger-ui-dist``, which ``make setup`` installs through the repository's npm project (``frontend/``,
from its lock file) and copies into the package (``machinery/web/static/dist/swagger-ui/``, not
committed). Nothing is loaded from a CDN; without the files the page says how to get them.
"""

from __future__ import annotations

import html
from importlib import resources
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, jsonify, send_from_directory

from machinery.api.openapi import document
from machinery.api.spec import Reply, operation, undocumented
from machinery.errors import PROBLEM_TYPES

blueprint = Blueprint("docs", __name__)

#: Where ``make setup`` (frontend/build.mjs) copies swagger-ui-dist's files.
ASSETS = Path(str(resources.files("machinery.web"))) / "static" / "dist" / "swagger-ui"
_ASSET_FILES = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
)

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>machinery API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-docs="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
"""

# Swagger UI reads its settings from script, and a page without inline script can forbid inline script.
_INIT_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  validatorUrl: null,
});
"""

_PAGE_HEADERS = {
    # Everything the page loads comes from this server (no CDN).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


@blueprint.get("/openapi.json")
@operation(
    "The OpenAPI document",
    tag="meta",
    description="This document: OpenAPI 3.1, generated from the schemas that validate every request.",
    replies=(Reply(200, "the document", {"type": "object", "required": ["openapi", "paths"]}),),
)
def openapi_document() -> Response:
    return jsonify(document(current_app))


@blueprint.get("/docs")
@undocumented("the interactive documentation page (HTML) that reads /openapi.json")
def docs_page() -> Response:
    if not all((ASSETS / name).is_file() for name in _ASSET_FILES):
        return _page(
            "API documentation",
            "<p>Swagger UI's files are not built: run <code>make setup</code> (it copies them from the npm "
            "package <code>swagger-ui-dist</code>). The document itself is at "
            '<a href="/openapi.json">/openapi.json</a>.</p>',
            status=503,
        )
    return Response(_DOCS_PAGE, mimetype="text/html", headers=_PAGE_HEADERS)


@blueprint.get("/docs/assets/<path:name>")
@undocumented("the files of the documentation page (Swagger UI, from swagger-ui-dist)")
def docs_asset(name: str) -> Response:
    if name == "init.js":
        return Response(_INIT_SCRIPT, mimetype="text/javascript", headers=_PAGE_HEADERS)
    if name not in _ASSET_FILES:
        abort(404)
    return send_from_directory(ASSETS, name, max_age=3600)


@blueprint.get("/problems")
@undocumented("pages for people: what each problem type means (the targets of problems' `type`)")
def problem_index() -> Response:
    """The page that lists every problem type."""
    items = "".join(
        f'<li><a href="/problems/{html.escape(code)}"><code>{html.escape(code)}</code></a> '
        f"({problem.status}) {html.escape(problem.title)}</li>"
        for code, problem in sorted(PROBLEM_TYPES.items())
    )
    intro = (
        "<p>Every error of the API is an RFC 9457 problem (<code>application/problem+json</code>) whose "
        "<code>type</code> is one of these pages and whose <code>error</code> member is the code.</p>"
    )
    return _page("Problem types", f"{intro}<ul>{items}</ul>")


@blueprint.get("/problems/<code>")
@undocumented("a page for people: what one problem type means")
def problem_page(code: str) -> Response:
    problem = PROBLEM_TYPES.get(code)
    if problem is None:
        abort(404)
    body = (
        f'<p>Status <strong>{problem.status}</strong>, <code>"error": "{html.escape(code)}"</code></p>'
        f"<p>{html.escape(problem.description)}</p>"
        '<p>All the problem types: <a href="/problems">/problems</a>; the API: <a href="/docs">/docs</a>.</p>'
    )
    return _page(problem.title, body)


def _page(title: str, body: str, status: int = 200) -> Response:
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
    return Response(page, status=status, mimetype="text/html", headers=_PAGE_HEADERS)
