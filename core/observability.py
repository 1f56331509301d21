"""Structured logs (one JSON object a line) and the engine's shared counters.

Web and worker are separate processes (separate dynos on Heroku), and only
the web answers /metrics. So what workers count — events applied, apply
latency, outcomes, deliveries — goes to one Redis hash (``store.stats.add``)
that /metrics reads; histograms are kept there as per-bucket counts.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

# Seconds; the last bucket is +Inf.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOME_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

_configured = False


def configure_logging(level: int = logging.INFO) -> None:
    """Send structlog and stdlib logging to stdout as JSON lines. Idempotent."""
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """Format stdlib records (RQ's, granian's, Flask's) as structlog's own JSON lines.

    The same processors stamp both kinds of line, so every line carries the
    same fields and the same UTC ISO timestamp, and the bound call context.
    """

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(ensure_ascii=False, default=str),
            ],
        )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def histogram_increments(name: str, seconds: float, buckets: tuple[float, ...]) -> dict[str, float]:
    """The counter increments that record one observation in a bucketed histogram."""
    bucket = next((f"{b:g}" for b in buckets if seconds <= b), "+Inf")
    return {f"{name}_bucket:{bucket}": 1, f"{name}_sum": seconds, f"{name}_count": 1}


def applied_increments(
    event_type: str, apply_seconds: float, age_seconds: float
) -> dict[str, float]:
    """What one applied event adds: its count, how long applying took, and how
    old the event was when its state became visible (webhook-to-state latency)."""
    return {
        f"applied:{event_type}": 1,
        **histogram_increments("apply_seconds", apply_seconds, LATENCY_BUCKETS),
        **histogram_increments("event_to_state_seconds", age_seconds, LATENCY_BUCKETS),
    }
