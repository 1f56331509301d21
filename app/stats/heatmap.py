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
from core.history.reports import QuarterCounts
from statemachine.outcome import OutcomeRecord

METRICS = ("offered", "answered", "missed", "service_level")
WEEKDAYS = 7
HOURS = 24


class HeatmapCells:
    """The cells' counts: a LevelTally and the missed calls per local weekday and hour."""

    def __init__(self, rules: FigureRules, zone: ZoneInfo) -> None:
        self.rules = rules
        self.zone = zone
        self.levels = [[LevelTally(rules) for _ in range(HOURS)] for _ in range(WEEKDAYS)]
        self.missed = [[0] * HOURS for _ in range(WEEKDAYS)]

    def add(self, call: OutcomeRecord) -> None:
        """Count one call in the cell of its local start (outbound calls in none)."""
        if call.get("direction") == "outbound":
            return
        local = call_start(call).astimezone(self.zone)
        self.levels[local.weekday()][local.hour].add(call)
        if call.get("outcome") == "missed":
            self.missed[local.weekday()][local.hour] += 1

    def add_counts(self, weekday: int, hour: int, counts: QuarterCounts, sign: int = 1) -> None:
        """Add (``sign`` -1: take back) calls counted together, as ``add`` counts each."""
        cell = self.levels[weekday][hour]
        cell.offered += sign * counts.offered
        cell.answered += sign * counts.answered
        cell.abandoned += sign * counts.abandoned
        cell.short_abandoned += sign * counts.short_abandoned
        for index, within in enumerate(counts.answered_within):
            cell.answered_within[index] += sign * within
        self.missed[weekday][hour] += sign * counts.missed

    def take_back(self, other: HeatmapCells) -> None:
        """Uncount the calls ``other`` counted."""
        for day in range(WEEKDAYS):
            for hour in range(HOURS):
                cell = other.levels[day][hour]
                counts = QuarterCounts(
                    0,
                    cell.offered,
                    cell.answered,
                    other.missed[day][hour],
                    cell.abandoned,
                    cell.short_abandoned,
                    tuple(cell.answered_within),
                )
                self.add_counts(day, hour, counts, sign=-1)

    def values(self, metric: str) -> list[list[Any]]:
        """7 rows (Monday first) of 24 hours: ``metric`` of each cell, null where none offered."""
        return [
            [
                _value(self.levels[day][hour], self.missed[day][hour], metric)
                for hour in range(HOURS)
            ]
            for day in range(WEEKDAYS)
        ]


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
    cells = HeatmapCells(rules, zone)
    for call in calls:
        cells.add(call)
    return cells.values(metric)
