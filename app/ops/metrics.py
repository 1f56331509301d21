"""Prometheus metrics: ``GET /metrics``.

Two sources. The web process's own counters (events received, rejected by
reason) live in prometheus-client; the web server runs several processes,
so with PROMETHEUS_MULTIPROC_DIR set (the Procfile sets it) their files are
summed. What workers count (applied, latencies, outcomes, deliveries) and
what lives in Redis (queue depth, pending events) is read from Redis at
scrape time, so every web process reports the same engine-wide figures.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator

from flask import Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app.history.routes import HistoryCollector
from app.web.errors import error_response
from app.web.rest import ApiBlueprint
from core.observability import LATENCY_BUCKETS, OUTCOME_BUCKETS

EVENTS_RECEIVED = Counter(
    "callstate_events_received_total", "Events accepted (202), by type", ["event_type"]
)
EVENTS_REJECTED = Counter(
    "callstate_events_rejected_total", "Webhook posts refused, by reason", ["reason"]
)

bp = ApiBlueprint("metrics", __name__)
NEEDS_METRICS_TOKEN = "this needs METRICS_TOKEN as the bearer token (Authorization: Bearer <token>)"


def operator_may_see_details() -> bool:
    """Whether the request may read the engine's figures and problems: METRICS_TOKEN is
    unset, or the request gives it as its bearer token (compared in constant time).
    They name Redis nodes, errors and counts, which are nobody else's business."""
    token: str | None = current_app.config["CALLSTATE_SETTINGS"].metrics_token
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )


HISTOGRAMS = {
    "apply_seconds": ("Time to apply one event (read, fold, commit)", LATENCY_BUCKETS),
    "event_to_state_seconds": (
        "From webhook received to its state visible in the API",
        LATENCY_BUCKETS,
    ),
    "end_to_outcome_seconds": (
        "From a call's end to its outcome published (includes the grace period)",
        OUTCOME_BUCKETS,
    ),
}
LABELLED = {
    "applied": ("callstate_events_applied", "Events applied by workers", "event_type"),
    "outcomes": ("callstate_outcomes", "Outcome records published", "outcome"),
    "deliveries": ("callstate_deliveries", "Outbound webhook attempts, by result", "result"),
}


class EngineCollector(Collector):
    """Engine-wide figures read from Redis when scraped."""

    def collect(self) -> Iterator[Metric]:
        from app.web.resources import get_resources

        resources = get_resources()
        try:
            stats = resources.store.stats.totals()
            queue_depth = float(resources.queue.count)
            pending = float(resources.store.pending.pending_count())
        except Exception:
            stats, queue_depth, pending = {}, float("nan"), float("nan")
        yield GaugeMetricFamily(
            "callstate_queue_depth", "Jobs waiting on the events queue", value=queue_depth
        )
        yield GaugeMetricFamily(
            "callstate_events_pending", "Events accepted and not yet applied", value=pending
        )
        yield CounterMetricFamily(
            "callstate_events_not_folded",
            "Events past a call's MAX_EVENTS_PER_CALL: kept, not folded into its state",
            value=stats.get("events_not_folded", 0.0),
        )
        labelled: dict[str, dict[str, float]] = defaultdict(dict)
        for name, value in stats.items():
            prefix, sep, label = name.partition(":")
            if sep and prefix in LABELLED and "_bucket" not in prefix:
                labelled[prefix][label] = value
        for prefix, (metric, help_text, label_name) in LABELLED.items():
            family = CounterMetricFamily(metric, help_text, labels=[label_name])
            for label, value in sorted(labelled[prefix].items()):
                family.add_metric([label], value)
            yield family
        for name, (help_text, bounds) in HISTOGRAMS.items():
            buckets: list[tuple[str, float]] = []
            running = 0.0
            for bound in [*(f"{b:g}" for b in bounds), "+Inf"]:
                running += stats.get(f"{name}_bucket:{bound}", 0.0)
                buckets.append((bound, running))
            yield HistogramMetricFamily(
                f"callstate_{name}",
                help_text,
                buckets=buckets,
                sum_value=stats.get(f"{name}_sum", 0.0),
            )


class DurabilityCollector(Collector):
    """Masters acknowledging events on fewer replicas than DURABLE_REPLICAS
    (available mode), looked at when scraped."""

    def collect(self) -> Iterator[Metric]:
        from app.web.resources import get_store

        degraded = get_store().health.degraded()
        nodes = GaugeMetricFamily(
            "callstate_durability_degraded",
            "1 per Redis master holding fewer replicas than DURABLE_REPLICAS (available mode)",
            labels=["node"],
        )
        since = GaugeMetricFamily(
            "callstate_durability_degraded_since_seconds",
            "Unix time this process first saw the master degraded",
            labels=["node"],
        )
        for node in degraded:
            nodes.add_metric([node.node], 1.0)
            since.add_metric([node.node], node.since)
        yield GaugeMetricFamily(
            "callstate_durability_degraded_nodes",
            "Redis masters degraded now (0: every event on DURABLE_REPLICAS replicas)",
            value=float(len(degraded)),
        )
        yield nodes
        yield since


_ENGINE = EngineCollector()
_DURABILITY = DurabilityCollector()
_HISTORY = HistoryCollector()


@bp.operation(
    "GET",
    "/metrics",
    "metrics",
    tag="operations",
    key=False,
    schema={"type": "string"},
    content_type="text/plain",
    answer="Prometheus text exposition format",
    example="# TYPE callstate_events_pending gauge\ncallstate_events_pending 0.0\n",
    summary="Prometheus metrics: events received/rejected/applied, queue depth, latencies, "
    "outcomes, deliveries",
    errors={401: "METRICS_TOKEN is set and was not given as the bearer token"},
)
def metrics() -> Response | tuple[Response, int]:
    """This process's and the engine's metrics, for Prometheus to scrape.

    With METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`.
    """
    if not operator_may_see_details():
        return error_response(401, NEEDS_METRICS_TOKEN)
    if current_app.config["CALLSTATE_SETTINGS"].metrics_directory:
        own = CollectorRegistry()
        multiprocess.MultiProcessCollector(own)  # type: ignore[no-untyped-call]
    else:
        own = REGISTRY
    engine = CollectorRegistry()
    engine.register(_ENGINE)
    engine.register(_HISTORY)
    engine.register(_DURABILITY)
    return Response(generate_latest(own) + generate_latest(engine), mimetype=CONTENT_TYPE_LATEST)
