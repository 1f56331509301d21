"""One way to answer an error: ``{"error": "<what was wrong>"}`` with its status."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from core.store import NotReplicated, PoolExhausted

MESSAGES = {
    400: "bad request",
    401: "missing or unknown credentials",
    403: "not allowed",
    404: "not found",
    405: "method not allowed",
    413: "body larger than 64 KiB",
    415: "unsupported media type",
    500: "internal error",
    503: "storage unavailable, try again",
}


class BadQuery(ValueError):
    """A request's parameters or body are not usable; the message says why (400), and
    ``fields``, when given, what was wrong with each field of the body."""

    def __init__(self, message: str, fields: Any = None) -> None:
        super().__init__(message)
        self.fields = fields


class Missing(LookupError):
    """What the request's path names does not exist (404); the message says what."""


class TenantForbidden(Exception):
    """The API key may not read the tenant the request names (403).

    Our own class, not the built-in PermissionError: a real permission error
    (a file, a socket) must stay a 500 and be logged, not pass for a 403.
    """


def error_response(status: int, message: str | None = None, **extra: Any) -> tuple[Response, int]:
    """Build the JSON error answer every handler uses."""
    body = {"error": message or MESSAGES.get(status, "error"), **extra}
    return jsonify(body), status


# Seconds a client is asked to wait after a 503 for Redis trouble: a busy
# connection pool frees up within moments, and Redis that went away is
# retried by the sender anyway.
RETRY_AFTER_SECONDS = 1


def unavailable_answer(
    exc: redis.RedisError, message: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The body and headers of a 503 for a Redis error: ``message`` when Redis
    failed, a "busy" answer when this process's connections all stayed in use."""
    if isinstance(exc, PoolExhausted):
        message = "busy: every Redis connection of this process is in use, retry shortly"
    elif isinstance(exc, NotReplicated):
        # The event may be written: its retry is deduplicated by event id.
        message = (
            "not confirmed on DURABLE_REPLICAS replica(s) in time (it may be stored): "
            "retry shortly, the retry is deduplicated"
        )
    return {"error": message}, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def unavailable_response(exc: redis.RedisError, message: str) -> tuple[Response, int]:
    """:func:`unavailable_answer` as a response."""
    body, headers = unavailable_answer(exc, message)
    response = jsonify(body)
    response.headers.update(headers)
    return response, 503


def register_error_handlers(app: Flask) -> None:
    """Answer every HTTP error, ours or Werkzeug's, as JSON."""

    @app.errorhandler(BadQuery)
    def _bad_query(exc: BadQuery) -> tuple[Response, int]:
        if exc.fields is not None:
            return error_response(400, str(exc), fields=exc.fields)
        return error_response(400, str(exc))

    @app.errorhandler(Missing)
    def _missing(exc: Missing) -> tuple[Response, int]:
        return error_response(404, str(exc))

    @app.errorhandler(TenantForbidden)
    def _forbidden(exc: TenantForbidden) -> tuple[Response, int]:
        return error_response(403, str(exc))

    @app.errorhandler(redis.RedisError)
    def _unavailable(exc: redis.RedisError) -> tuple[Response, int]:
        return unavailable_response(exc, "redis unavailable")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        message = MESSAGES.get(status) if status in (413, 404, 405) else None
        return error_response(status, message or exc.description or MESSAGES.get(status))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unhandled error")
        return error_response(500)
