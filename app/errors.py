"""One way to answer an error: ``{"error": "<what was wrong>"}`` with its status."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

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


def error_response(status: int, message: str | None = None, **extra: Any) -> tuple[Response, int]:
    """Build the JSON error answer every handler uses."""
    body = {"error": message or MESSAGES.get(status, "error"), **extra}
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    """Answer every HTTP error, ours or Werkzeug's, as JSON."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        message = MESSAGES.get(status) if status in (413, 404, 405) else None
        return error_response(status, message or exc.description or MESSAGES.get(status))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unhandled error")
        return error_response(500)
