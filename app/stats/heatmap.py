"""The hour x weekday heatmap of a window's calls, in a tenant's time zone.

Pure, no I/O. Each inbound call falls in the cell of the local weekday (Monday
first) and hour its call started (``figures.call_start``); a day that skips an
hour (daylight saving starts) leaves that cell empty, a day that repeats one
counts both in it. A cell's value is the metric over its calls, null where
nothing was offered. ``service_level`` is the service level as /v1/stats
defines it (service_levels.LevelTally), at the first threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from app.stats.figure_rules import FigureRules, threshold_key
from app.stats.figures import call_start
from app.stats.service_levels import LevelTally
from statemachine.outcome import OutcomeRecord

METRICS = ("offered", "answered", "missed", "service_level")
WEEKDAYS = 7
HOURS = 24


def _value(cell: LevelTally, missed: int, metric: str) -> float | int | None:
    if not cell.offered:
        return None
    if metric == "offered":
        return cell.offered
    if metric == "answered":
        return cell.answered
    if metric == "missed":
        return missed
    levels = cell.service_levels()
    value: float | None = levels[threshold_key(cell.rules.service_level_seconds[0])]["value"]
    return value


def heatmap(
    calls: Iterable[OutcomeRecord], zone: ZoneInfo, metric: str, rules: FigureRules
) -> list[list[Any]]:
    """7 rows (Monday first) of 24 local hours: ``metric`` over the calls started there.
    ``calls`` as ``figures.calls_in_window`` gives them (read once). Raises
    ValueError for an unknown metric."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    cells = [[LevelTally(rules) for _ in range(HOURS)] for _ in range(WEEKDAYS)]
    missed = [[0] * HOURS for _ in range(WEEKDAYS)]
    for call in calls:
        if call.get("direction") == "outbound":
            continue
        local = call_start(call).astimezone(zone)
        cells[local.weekday()][local.hour].add(call)
        if call.get("outcome") == "missed":
            missed[local.weekday()][local.hour] += 1
    return [
        [_value(cells[day][hour], missed[day][hour], metric) for hour in range(HOURS)]
        for day in range(WEEKDAYS)
    ]
