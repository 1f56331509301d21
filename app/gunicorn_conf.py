"""gunicorn settings for the web process (``gunicorn --config python:app.gunicorn_conf``).

gthread workers: webhook intake is short and I/O-bound, and server-sent event
streams park a thread, not a whole process, so intake keeps answering while
clients watch outcomes.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gunicorn.glogging import Logger

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
# Heroku's router gives up after 30 s; SIGTERM grace is 30 s too.
timeout = 30
graceful_timeout = 25
keepalive = 5
# gunicorn's control socket is one path per user: two services on one machine
# (tests, a dyno running web twice) would fight over it, and we never use it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
access_log_format = (
    '{"event":"request","method":"%(m)s","path":"%(U)s","status":%(s)s,"bytes":"%(B)s","ms":%(M)s}'
)

_TOKEN_PATH = re.compile(r"(/webhooks/primevox/)[^/?\s]+")


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logs as JSON lines, and no webhook token in the access log:
    the token is the sender's only credential."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from workers.observability import JsonFormatter

        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "{raw_uri}e"):
            if isinstance(atoms.get(key), str):
                atoms[key] = _TOKEN_PATH.sub(r"\1[redacted]", atoms[key])
        return atoms


logger_class = RedactingLogger


def on_starting(server: Any) -> None:
    # prometheus-client's multiprocess mode needs a clean directory per run.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
