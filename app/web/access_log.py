"""The web server's access log: one JSON line a request, no webhook token in it.

The token in ``/webhooks/primevox/<token>`` is the sender's only credential,
so it never reaches a log line. A WSGI wrapper rather than the server's own
access log: that one builds a logging record, a local timestamp and a
formatter call per request, about a seventh of a webhook's CPU; this writes
one preformatted line with one ``write(2)`` (atomic on a pipe for lines this
short, so threads never interleave their lines).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

# Everything after /webhooks/, whatever its case and however many segments:
# a sender that mistyped the path (/webhooks/PRIMEVOX/<token>,
# /webhooks/x/../primevox/<token>) still put its token in it.
_TOKEN_PATH = re.compile(r"(/webhooks/).*", re.IGNORECASE | re.DOTALL)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def redact(path: str) -> str:
    """The path with everything after ``/webhooks/`` replaced: the token there is the
    sender's only credential."""
    return _TOKEN_PATH.sub(r"\1[redacted]", path)


def access_line(method: str, path: str, status: int, ms: float) -> bytes:
    """One access log line (JSON, newline-terminated), the token redacted."""
    return (
        f'{{"event":"request","method":{json.dumps(method)},"path":{json.dumps(redact(path))},'
        f'"status":{status},"ms":{ms:.3f}}}\n'
    ).encode("utf-8", "replace")


class AccessLog:
    """WSGI middleware: log every request when the app has answered it (a
    stream: when its headers are sent, as servers do)."""

    def __init__(self, app: WsgiApp, fd: int = 1, lowest_status: int = 0) -> None:
        self.app = app
        self.fd = fd
        # ACCESS_LOG=errors logs answers from 400 up only (the demo's quiet terminal).
        self.lowest_status = lowest_status

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.perf_counter()
        status = [500]

        def capture(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        try:
            return self.app(environ, capture)
        finally:
            if status[0] >= self.lowest_status:
                self._write(environ, status[0], started)

    def _write(self, environ: dict[str, Any], status: int, started: float) -> None:
        line = access_line(
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            status,
            (time.perf_counter() - started) * 1000,
        )
        # A log line is not worth failing a request over.
        with contextlib.suppress(OSError):
            os.write(self.fd, line)
