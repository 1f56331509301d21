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
accesslog = "-"
errorlog = "-"
access_log_format = (
    '{"event":"request","method":"%(m)s","path":"%(U)s",'
    '"status":%(s)s,"bytes":"%(B)s","ms":%(M)s}'
)

_TOKEN_PATH = re.compile(r"(/webhooks/primevox/)[^/?\s]+")


class RedactingLogger(Logger):  # type: ignore[misc]
    """Access log without webhook tokens: the token is the sender's only credential."""

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
