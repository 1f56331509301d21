"""Liveness and readiness."""

from __future__ import annotations

import redis
from flask import Blueprint, Response, current_app, jsonify

from app.errors import error_response
from app.resources import get_store
from workers.settings import Settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up (says nothing about Redis)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers; lists Redis settings that put events at risk, and
    a client limit below what one web and one worker dyno may hold."""
    store = get_store()
    if not store.ping():
        return error_response(503, "redis unavailable")
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    try:
        warnings = store.server_warnings()
        warnings += store.connection_warnings(settings.formation_connections())
    except redis.RedisError:
        return error_response(503, "redis unavailable")
    return jsonify({"status": "ready", "warnings": warnings}), 200
