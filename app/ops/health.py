"""Liveness and readiness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import redis
from flask import current_app
from marshmallow import fields, validate

from app.history.routes import history_health, history_warnings
from app.ops.metrics import operator_may_see_details
from app.web.errors import error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.schema_fields import EXAMPLE_OUTCOME_ID, Answer, Number, ex, text, time_field
from core.settings import DURABLE_MODE_CHOICES, Settings
from core.store import Store
from statemachine.events import isoformat

bp = ApiBlueprint("health", __name__)


class HealthAnswer(Answer):
    status = fields.String(required=True, validate=validate.OneOf(("ok",)))


class HistoryHealthAnswer(Answer):
    """The call history archive (DATABASE_URL), as /readyz sees it."""

    configured = fields.Boolean(required=True, metadata=ex(True, "DATABASE_URL is set"))
    reachable = fields.Boolean(
        required=True, allow_none=True, metadata=ex(True, "the database answered; null: none")
    )
    lag_seconds = Number(
        required=True,
        allow_none=True,
        metadata=ex(0.0, "age of the oldest outcome record not archived yet; 0: none waits"),
    )
    archived_to = fields.String(
        required=True,
        allow_none=True,
        metadata=ex(EXAMPLE_OUTCOME_ID, "every outcome record up to this id is archived"),
    )
    set_aside = fields.Integer(
        required=True,
        allow_none=True,
        metadata=ex(0, "outcome records the database refused, kept aside (flask history status)"),
    )


class DegradedNodeAnswer(Answer):
    """A Redis master holding fewer replicas than DURABLE_REPLICAS."""

    node = text("10.0.0.7:6379", "the master's address (blank on one Redis)", nullable=False)
    replicas = fields.Integer(
        required=True, metadata=ex(0, "replicas it has now: what its events are acknowledged on")
    )
    since = time_field("when this process first saw it so", nullable=False)


class DurabilityAnswer(Answer):
    """What a webhook's 202 waits for (DURABLE_REPLICAS, DURABLE_MODE)."""

    mode = fields.String(required=True, validate=validate.OneOf(DURABLE_MODE_CHOICES))
    replicas = fields.Integer(required=True, metadata=ex(1, "DURABLE_REPLICAS; 0: no wait"))
    degraded = fields.List(
        fields.Nested(DegradedNodeAnswer),
        required=True,
        metadata=ex([], "available mode: masters acknowledging on fewer replicas than asked"),
    )


class ReadyAnswer(Answer):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    # The details, absent when METRICS_TOKEN is set and the request did not give it.
    warnings = fields.List(
        fields.String(),
        metadata=ex([], "Redis settings that put accepted events at risk; archive lag"),
    )
    history = fields.Nested(HistoryHealthAnswer)
    durability = fields.Nested(DurabilityAnswer)


@bp.operation(
    "GET", "/healthz", "healthz", tag="operations", key=False, schema=HealthAnswer, answer="up"
)
def healthz() -> dict[str, str]:
    """The process is up (says nothing about Redis)"""
    return {"status": "ok"}


@bp.operation(
    "GET",
    "/readyz",
    "readyz",
    tag="operations",
    key=False,
    schema=ReadyAnswer,
    answer="ready",
    usual=(503,),
    summary="Redis answers; lists Redis settings that put events at risk, "
    "and the call history archive's state",
)
def readyz() -> Any:
    """Whether this process can take events and answer reads

    Ready when Redis answers (every node of a cluster, and RQ's Redis); lists Redis
    settings that put events at risk, a client limit below what one web and one worker
    dyno may hold, and the call history archive's state (a database outage warns, it
    does not make us unready: intake and event application never need the database).
    With METRICS_TOKEN set, the warnings, the history and what makes it unready are
    only for `Authorization: Bearer <METRICS_TOKEN>`; anyone else reads the status alone.
    """
    store = get_store()
    details = operator_may_see_details()
    if not store.health.ping():
        return error_response(503, "redis unavailable")
    # On a cluster: every node (a master down or a cluster not ok is unready;
    # a replica down is a warning), and RQ's own Redis.
    unready, warnings = store.health.cluster_problems()
    if unready:
        why = "redis cluster unavailable"
        return error_response(503, f"{why}: " + "; ".join(unready) if details else why)
    if not store.health.ping_queues():
        return error_response(503, "RQ's redis (RQ_REDIS_URL) unavailable")
    if not details:
        return {"status": "ready"}
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    try:
        warnings += store.health.server_warnings()
        warnings += store.health.memory_warnings()
        warnings += store.health.connection_warnings(settings.formation_connections())
    except redis.RedisError:
        return error_response(503, "redis unavailable")
    history = history_health(store)
    warnings += history_warnings(history)
    durability = durability_health(store)
    warnings += [
        f"durability degraded: {node['node'] or 'Redis'} has {node['replicas']} of "
        f"{durability['replicas']} replica(s) since {node['since']}; its events are "
        "acknowledged on fewer copies until a replica is attached"
        for node in durability["degraded"]
    ]
    return {"status": "ready", "warnings": warnings, "history": history, "durability": durability}


def durability_health(store: Store) -> dict[str, Any]:
    """DURABLE_MODE, DURABLE_REPLICAS and the masters degraded now."""
    return {
        "mode": store.health.durable_mode,
        "replicas": store.health.durable_replicas,
        "degraded": [
            {
                "node": d.node,
                "replicas": d.replicas,
                "since": isoformat(datetime.fromtimestamp(d.since, UTC)),
            }
            for d in store.health.degraded()
        ],
    }
