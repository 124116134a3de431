"""The web console at ``/ui/``: one page shell, the built front end, and the few views only it needs.

The console is a client of the HTTP API: it reads and starts executions through the same routes a
client uses (``/w``, ``/e``, ``/e/<id>/history``). What no public route answers lives under ``/ui/api/``:
a workflow's graph (derived from the compiled model by :mod:`machinery.asl.graph`) and the workflows
list with each one's counts by status and last execution.

Authentication is the one check of :mod:`machinery.auth`: the pages and assets are open, the data views
need a token's scope like the API routes, and a browser signs in by pasting a token (``/ui/api/session``),
which gives it a session cookie; its state-changing requests carry the CSRF token.

The front end is built from ``frontend/`` into ``static/dist/`` by ``make setup``; without it the shell
says how to build it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
)
from werkzeug.exceptions import NotFound as HttpNotFound
from werkzeug.wrappers.response import Response as BaseResponse

from machinery import auth, shapes
from machinery.api.spec import undocumented_blueprint
from machinery.asl.graph import machine_graph, simple_signatures
from machinery.asl.simple import ServiceSignature
from machinery.control import schemas
from machinery.control.definitions import find_workflow, service_signature
from machinery.control.events import Orchestrator
from machinery.errors import BadRequest, FieldIssue
from machinery.limits import MAX_SAFE_INTEGER
from machinery.storage.base import StoredEvent, WorkflowRecord
from machinery.web.dataflow import dataflow_steps, find_state

logger = logging.getLogger(__name__)

STATIC = Path(str(resources.files("machinery.web").joinpath("static")))
DIST = STATIC / "dist"
#: The front end's own scripts and styles only: no inline code, nothing from another origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

blueprint = Blueprint("web", __name__, url_prefix="/ui", template_folder="templates")
root = Blueprint("web_root", __name__)
undocumented_blueprint(blueprint, "the console: its pages, assets and the views only it reads (/ui/api/...)")
undocumented_blueprint(root, "GET / sends a browser to the console (the API has no resource at /)")

_EVENT_ID_ARGUMENT = {"type": "integer", "minimum": 1, "maximum": MAX_SAFE_INTEGER}
_DATAFLOW_QUERY = {"entered": _EVENT_ID_ARGUMENT, "result": _EVENT_ID_ARGUMENT}


def register(app: Flask) -> None:
    """Mount the console (``/ui/``) and the browser redirect of ``GET /``."""
    app.register_blueprint(blueprint)
    app.register_blueprint(root)


def _orchestrator() -> Orchestrator:
    found: Orchestrator = current_app.extensions["machinery"]
    return found


@root.get("/")
def index() -> BaseResponse:
    """A browser (it asks for HTML first) goes to the console; an API client still gets the JSON 404."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        return redirect("/ui/", code=302)
    raise HttpNotFound()


def _asset_version(name: str) -> str:
    """A short digest of a built file, so that browsers fetch it again after each build."""
    path = DIST / name
    return _digest(path, path.stat().st_mtime_ns) if path.exists() else "missing"


@cache
def _digest(path: Path, _mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@blueprint.get("/")
@blueprint.get("/<path:page>")
def shell(page: str = "") -> Response:
    """Every console page is the same shell; the front end reads the path and draws the page."""
    if page == "api" or page.startswith("api/"):
        raise HttpNotFound()  # an unknown console view is a 404, not a page
    built = (DIST / "console.js").exists()
    if not built:
        logger.warning("the console's front end is not built (%s is missing): run `make setup`", DIST)
    body = render_template(
        "console.html",
        built=built,
        js_version=_asset_version("console.js"),
        css_version=_asset_version("console.css"),
    )
    response = Response(body, status=200 if built else 503, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/static/<path:filename>")
def static(filename: str) -> Response:
    response = send_from_directory(STATIC, filename, max_age=3600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.get("/api/workflows")
def workflows_summary() -> Response:
    """Every workflow (latest version) with its counts by status and its last execution."""
    orchestrator = _orchestrator()
    storage = orchestrator.storage
    counts = storage.count_executions()
    listed = []
    for workflow in storage.list_workflows():
        last = storage.list_executions(workflow.workflow_id, None, 1, None)
        listed.append(
            {
                **shapes.workflow_json(workflow, with_definition=False),
                "counts": counts.get(workflow.workflow_id, {}),
                "last_event": shapes.event_record(last[0]) if last else None,
            }
        )
    return jsonify({"workflows": listed})


@blueprint.get("/api/workflows/<ref>/graph")
def workflow_graph(ref: str) -> Response:
    """The graph of a workflow version (``?version=N``, default the latest)."""
    version = schemas.parse_query(schemas.GET_WORKFLOW_QUERY, request.args)["version"]
    orchestrator = _orchestrator()
    workflow = find_workflow(orchestrator.storage, ref, version)
    return jsonify(graph_json(orchestrator, workflow))


def graph_json(orchestrator: Orchestrator, workflow: WorkflowRecord) -> dict[str, Any]:
    """The graph of one workflow version; a simple workflow's services bring their declared fields."""
    signatures: dict[str, Any] = {}
    issues: list[str] = []
    if "services" in workflow.spec:
        services: dict[str, ServiceSignature] = {}
        for name in workflow.spec["services"]:
            service = orchestrator.storage.get_service(name)
            if service is not None:
                services[name] = service_signature(service)
        signatures, issues = simple_signatures(workflow.spec, workflow.definition, services)
    graph = machine_graph(orchestrator.machine(workflow), signatures)
    graph.issues = issues
    return {"workflow": workflow.name, "version": workflow.version, **graph.to_json()}


@blueprint.get("/api/executions/<event_id>/dataflow")
def execution_dataflow(event_id: str) -> Response:
    """Replay one visit of a JSONPath state: ``?state=&group=&entered=<event id>&result=<event id>``.

    ``entered`` is the visit's ``…StateEntered`` event (its input), ``result`` the event that carried the
    task's result (its ``output``), if any: both are read from the execution's own history.
    """
    name = request.args.get("state")
    if not name:
        raise BadRequest("invalid query argument 'state'", issues=[FieldIssue("state", "is required")])
    group = request.args.get("group") or None
    found = schemas.parse_query(_DATAFLOW_QUERY, request.args)
    entered_id, result_id = found["entered"], found["result"]
    if entered_id is None:
        raise BadRequest("invalid query argument 'entered'", issues=[FieldIssue("entered", "is required")])
    orchestrator = _orchestrator()
    record = orchestrator.get_event(event_id)
    workflow = find_workflow(orchestrator.storage, record.workflow_id, record.workflow_version)
    machine = orchestrator.machine(workflow)
    state = find_state(machine, group, name)
    entered = _history_event(orchestrator, event_id, entered_id, "entered")
    if not entered.type.endswith("StateEntered") or entered.details.get("name") != name:
        raise BadRequest("not this state's entry", issues=[FieldIssue("entered", f"is not '{name}' entered")])
    result = None
    if result_id is not None:
        carried = _history_event(orchestrator, event_id, result_id, "result")
        if "output" not in carried.details or not carried.type.endswith("Succeeded"):
            raise BadRequest("not a result", issues=[FieldIssue("result", "is not an event with a result")])
        result = json.loads(carried.details["output"])
    steps = dataflow_steps(record, state, json.loads(entered.details["input"]), result)
    return jsonify({"state": state.name, "steps": steps})


def _history_event(orchestrator: Orchestrator, event_id: str, wanted: int, field: str) -> StoredEvent:
    events, _cursor = orchestrator.history(event_id, wanted - 1, 1)
    if not events or events[0].event_id != wanted:
        raise BadRequest(
            f"no event {wanted}", issues=[FieldIssue(field, f"no event {wanted} in this history")]
        )
    return events[0]


@blueprint.get("/api/session")
def session_state() -> Response:
    """Who the browser is signed in as, and whether it must sign in to read anything."""
    principal = auth.current_principal()
    gate = auth.gate_of(current_app)
    return jsonify(
        {
            "signed_in": principal is not None,
            "name": principal.name if principal else None,
            "scope": principal.scope.value if principal else None,
            "required": principal is None and not gate.admits_without_token(request),
        }
    )


@blueprint.post("/api/session")
def sign_in() -> Response:
    """Sign in with a pasted API token (``{"token"}``): sets the session and CSRF cookies."""
    body = request.get_json(silent=True)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= 1000:
        raise BadRequest("expected {token}", issues=[FieldIssue("token", "must be the API token (a string)")])
    response = Response(status=204)
    auth.start_session(response, token)
    return response


@blueprint.delete("/api/session")
def sign_out() -> Response:
    response = Response(status=204)
    auth.end_session(response)
    return response
