"""Alerts a supervisor acts on: when each condition holds, from plain figures.

``alert.long_wait``         a caller is waiting (queued or ringing, unanswered)
                            longer than the tenant's ``alert_wait_seconds``;
``alert.service_level``     of the calls offered in the last 30 minutes (at least
                            10), the share answered within the tenant's service
                            level seconds is under ``alert_service_level``;
``alert.callback_overdue``  an open callback is older than ``alert_callback_minutes``.

Each is a condition of a tenant: it starts, then ends (``resolved``). Pure: the
housekeeper gathers the figures and keeps which alerts are open (workers/alerts.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AlertType(str, Enum):
    LONG_WAIT = "alert.long_wait"
    SERVICE_LEVEL = "alert.service_level"
    CALLBACK_OVERDUE = "alert.callback_overdue"


ALERT_TYPES: tuple[str, ...] = tuple(t.value for t in AlertType)
SERVICE_LEVEL_WINDOW_SECONDS = 30 * 60
SERVICE_LEVEL_MIN_OFFERED = 10


@dataclass(frozen=True)
class Condition:
    """Whether one alert's condition holds now, and the figures that say so."""

    alert: AlertType
    holds: bool
    value: float | None  # the longest wait (s), the service level (0-1), the oldest age (min)
    threshold: float
    count: int  # callers waiting too long, calls offered, callbacks overdue


def long_wait(waits: list[float], threshold: float) -> Condition:
    """``waits``: seconds each live unanswered inbound call has waited so far."""
    over = [w for w in waits if w > threshold]
    longest = max(waits, default=None)
    return Condition(AlertType.LONG_WAIT, bool(over), longest, threshold, len(over))


def service_level(offered: int, answered_within: int, threshold: float) -> Condition:
    """Offered and answered-in-time calls of the last 30 minutes."""
    if offered < SERVICE_LEVEL_MIN_OFFERED:
        return Condition(AlertType.SERVICE_LEVEL, False, None, threshold, offered)
    level = round(answered_within / offered, 4)
    return Condition(AlertType.SERVICE_LEVEL, level < threshold, level, threshold, offered)


def callback_overdue(ages_minutes: list[float], threshold: float) -> Condition:
    """``ages_minutes``: how long ago each open callback's call was missed."""
    over = [a for a in ages_minutes if a > threshold]
    oldest = round(max(ages_minutes), 1) if ages_minutes else None
    return Condition(AlertType.CALLBACK_OVERDUE, bool(over), oldest, threshold, len(over))
