"""``GET /metrics``: Prometheus' text format (docs/observability.md lists every metric).

The process metrics of this host (all of its processes in multiprocess mode), then gauges read from
storage at scrape time: those are the database's truth, the same whichever process or host answers.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app

from machinery.api import orchestrator_of
from machinery.api.spec import undocumented
from machinery.telemetry import metrics

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
@undocumented("Prometheus' text format for scrapers, not JSON (docs/observability.md lists the metrics)")
def scrape() -> Response:
    storage = orchestrator_of(current_app).storage

    def read() -> metrics.StorageSnapshot:
        work = storage.count_work(time.time())
        counts = {"due": work.due, "scheduled": work.scheduled, "claimed": work.claimed}
        return metrics.StorageSnapshot(work=counts, running=storage.count_running())

    return Response(
        metrics.render(metrics.StorageGauges(read)), mimetype=None, content_type=metrics.CONTENT_TYPE
    )
