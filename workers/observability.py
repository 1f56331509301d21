"""Structured logs (one JSON object a line) and metrics, shared by both process types."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

EVENTS_APPLIED = Counter(
    "callstate_events_applied_total", "Events applied by workers", ["event_type"]
)
APPLY_SECONDS = Histogram(
    "callstate_apply_seconds",
    "Time to apply one event (read, fold, commit)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
OUTCOMES = Counter("callstate_outcomes_total", "Outcome records published", ["outcome"])

_configured = False


def configure_logging(level: int = logging.INFO) -> None:
    """Send structlog and stdlib logging to stdout as JSON lines. Idempotent."""
    global _configured
    if _configured:
        return
    _configured = True
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JsonFormatter(logging.Formatter):
    """Format stdlib records (RQ's, gunicorn's) as the same JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        from json import dumps

        data: dict[str, Any] = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        data.update(structlog.contextvars.get_contextvars())
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return dumps(data, ensure_ascii=False, default=str)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


@contextmanager
def bind_event(envelope: dict[str, Any]) -> Iterator[None]:
    """Bind tenant and call to every log line written while handling one event."""
    data = envelope.get("data") or {}
    with structlog.contextvars.bound_contextvars(
        tenant=envelope.get("tenant_id"),
        call_uuid=data.get("call_uuid") or data.get("conversation_id"),
        event_type=envelope.get("event_type"),
    ):
        yield


def record_applied(envelope: dict[str, Any], seconds: float) -> None:
    EVENTS_APPLIED.labels(str(envelope.get("event_type", "unknown"))).inc()
    APPLY_SECONDS.observe(seconds)
