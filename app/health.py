"""Liveness and readiness."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

from app.errors import error_response
from app.history import history_health, history_warnings
from app.resources import get_store
from workers.settings import Settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (says nothing about Redis)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers (every node of a cluster, and RQ's Redis); lists
    Redis settings that put events at risk, a client limit below what one web
    and one worker dyno may hold, and the call
    history archive's state (a database outage warns, it does not make us
    unready: intake and event application never need the database)."""
    store = get_store()
    if not store.ping():
        return error_response(503, "redis unavailable")
    # On a cluster: every node (a master down or a cluster not ok is unready;
    # a replica down is a warning), and RQ's own Redis.
    unready, warnings = store.cluster_problems()
    if unready:
        return error_response(503, "redis cluster unavailable: " + "; ".join(unready))
    if not store.ping_queues():
        return error_response(503, "RQ's redis (RQ_REDIS_URL) unavailable")
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    try:
        warnings += store.server_warnings()
        warnings += store.connection_warnings(settings.formation_connections())
    except redis.RedisError:
        return error_response(503, "redis unavailable")
    history = history_health(store)
    warnings += history_warnings(history)
    return jsonify({"status": "ready", "warnings": warnings, "history": history}), 200
