"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

import redis
from flask import current_app
from marshmallow import fields, validate

from app.history.routes import history_health, history_warnings
from app.ops.metrics import operator_may_see_details
from app.web.errors import error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint
from app.web.schema_fields import EXAMPLE_OUTCOME_ID, Answer, Number, ex
from core.settings import Settings

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


class ReadyAnswer(Answer):
    status = fields.String(required=True, validate=validate.OneOf(("ready",)))
    # Both absent when METRICS_TOKEN is set and the request did not give it.
    warnings = fields.List(
        fields.String(),
        metadata=ex([], "Redis settings that put accepted events at risk; archive lag"),
    )
    history = fields.Nested(HistoryHealthAnswer)


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
    return {"status": "ready", "warnings": warnings, "history": history}
