"""The webhook's hot path: ``POST /webhooks/primevox/<token>`` straight to intake.

PrimeVOX posts every event of every call here, so this one route is served
by a thin WSGI layer in front of Flask: it reads the token from the path and
the body by its Content-Length, runs the same :func:`app.intake.accept_webhook`
the Flask view runs, and writes the same JSON answer (the app's own JSON
provider, as ``jsonify`` writes it). Flask's request context, URL map and
response object cost more CPU than validating and storing the event; here
they are skipped.

Anything else -- another path or method, no token in the path (HTTP Basic
auth), a body without Content-Length or over the size limit, debug mode --
goes to Flask unchanged, so every answer, 413 and error handler included, is
the one Flask would give.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from app.errors import MESSAGES
from app.intake import accept_webhook
from app.resources import EXTENSION

PREFIX = "/webhooks/primevox/"
log = logging.getLogger("app")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WebhookPath:
    """WSGI middleware: serve webhook posts that need nothing of Flask, pass on the rest."""

    def __init__(self, app: Flask, wsgi_app: WsgiApp) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = self._length(environ)
        if length is None:
            return self.wsgi_app(environ, start_response)
        token = environ["PATH_INFO"][len(PREFIX) :]
        try:
            status, answer, headers = accept_webhook(
                self.app.config["CALLSTATE_SETTINGS"],
                self.app.extensions[EXTENSION],
                token,
                lambda: _read(environ, length),
            )
        except HTTPException as exc:  # as app/errors.py answers it
            status = exc.code or 500
            answer = {"error": exc.description or MESSAGES.get(status, "error")}
            headers = {}
        except Exception:
            log.exception("unhandled error")
            status, answer, headers = 500, {"error": MESSAGES[500]}, {}
        body = (self.app.json.dumps(answer, separators=(",", ":")) + "\n").encode()
        start_response(
            f"{status} {HTTP_STATUS_CODES[status].upper()}",
            [
                ("Content-Type", self.app.json.mimetype),  # type: ignore[attr-defined]
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        return [body]

    def _length(self, environ: dict[str, Any]) -> int | None:
        """The body's length if this request is one for the hot path, else None."""
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or not path.startswith(PREFIX)
            or "/" in path[len(PREFIX) :]
            or len(path) == len(PREFIX)
            or self.app.debug
        ):
            return None
        raw = environ.get("CONTENT_LENGTH") or ""
        if not raw.isdigit():
            return None
        length = int(raw)
        max_length = self.app.config.get("MAX_CONTENT_LENGTH")
        return None if max_length is not None and length > max_length else length


def _read(environ: dict[str, Any], length: int) -> bytes:
    """The body, all ``length`` bytes of it; a client that sent fewer is gone."""
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    if len(body) < length:
        raise ClientDisconnected()
    return body
