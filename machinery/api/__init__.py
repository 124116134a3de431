"""The HTTP API: a Flask app factory and one blueprint per resource."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from flask import Flask

from machinery import auth
from machinery.api import requests
from machinery.api.errors import register_error_handlers
from machinery.config import DEFAULTS, auth_settings, worker_settings
from machinery.control.events import Orchestrator
from machinery.limits import InputLimits
from machinery.storage import open_storage
from machinery.storage.sqlite import SQLiteStorage
from machinery.telemetry import metrics as telemetry_metrics

logger = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``MACHINERY_*`` environment variables, then ``test_config``."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("MACHINERY")
    if test_config:
        app.config.update(test_config)
    telemetry_metrics.configure(int(app.config["METRICS_MAX_LABEL_VALUES"]))
    settings = worker_settings(app.config)  # a setting that is not one fails before storage is opened
    storage = open_storage(
        str(app.config["DATABASE_URL"]),
        pool_min_size=int(app.config["PG_POOL_MIN"]),
        pool_max_size=int(app.config["PG_POOL_MAX"]),
    )
    single_node = isinstance(storage, SQLiteStorage)  # the memory backend too
    if app.config["RUN_WORKER"] and app.config["RELEASE_LEASES_ON_START"] and single_node:
        # A single-node server owns all work of its SQLite database: leases of a killed predecessor are
        # void. A shared database (PostgreSQL) has other live workers whose leases must stand; dead ones'
        # leases expire after MACHINERY_LEASE_SECONDS.
        storage.release_leases()
    orchestrator = Orchestrator(
        storage,
        settings,
        run_worker=bool(app.config["RUN_WORKER"]),
        redrive_days=float(app.config["REDRIVE_DAYS"]),
    )
    app.extensions["machinery"] = orchestrator
    auth.install(app, storage, auth_settings(app.config))
    if app.config["START_WORKER"]:
        orchestrator.start()
        atexit.register(orchestrator.stop)

    requests.install(app, InputLimits.from_config(app.config))

    from machinery.api import (
        docs,
        events,
        health,
        metrics,
        schedules,
        services,
        sources,
        tasks,
        tokens,
        workflows,
    )

    for module in (health, services, workflows, events, tasks, tokens, metrics, schedules, sources, docs):
        app.register_blueprint(module.blueprint)
    from machinery.aws import blueprint as aws_blueprint

    app.register_blueprint(aws_blueprint)
    from machinery import web

    web.register(app)
    register_error_handlers(app)
    return app


def orchestrator_of(app: Flask) -> Orchestrator:
    found: Orchestrator = app.extensions["machinery"]
    return found
