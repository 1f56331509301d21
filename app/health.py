"""Liveness and readiness."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from app.errors import error_response
from app.history import history_health, history_warnings
from app.resources import get_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (says nothing about Redis)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers; lists Redis settings that put events at risk, and the
    call history archive's state (a database outage warns, it does not make us unready:
    intake and event application never need the database)."""
    store = get_store()
    if not store.ping():
        return error_response(503, "redis unavailable")
    try:
        warnings = store.server_warnings()
    except redis.RedisError:
        return error_response(503, "redis unavailable")
    history = history_health(store)
    warnings += history_warnings(history)
    return jsonify({"status": "ready", "warnings": warnings, "history": history}), 200
