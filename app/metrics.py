"""Prometheus metrics of the web process, and the /metrics page.

Under gunicorn several processes serve; with PROMETHEUS_MULTIPROC_DIR set
(the Procfile sets it) their counters are summed by prometheus-client's
multiprocess collector. Figures that live in Redis (queue depth, pending
events) are read at scrape time, so web and worker agree on them.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)

EVENTS_RECEIVED = Counter(
    "callstate_events_received_total", "Events accepted (202) by type", ["event_type"]
)
EVENTS_REJECTED = Counter(
    "callstate_events_rejected_total", "Webhook posts refused, by reason", ["reason"]
)

bp = Blueprint("metrics", __name__)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


@bp.get("/metrics")
def metrics() -> Response:
    from app.resources import get_resources

    registry = _registry()
    scrape = CollectorRegistry()
    resources = get_resources()
    queue_depth = Gauge(
        "callstate_queue_depth", "Jobs waiting on the events queue", registry=scrape
    )
    pending = Gauge("callstate_events_pending", "Events accepted, not yet applied", registry=scrape)
    try:
        queue_depth.set(resources.queue.count)
        pending.set(resources.store.pending_count())
    except Exception:
        queue_depth.set(float("nan"))
        pending.set(float("nan"))
    body = generate_latest(registry) + generate_latest(scrape)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
