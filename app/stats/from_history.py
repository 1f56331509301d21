"""``/v1/stats`` over any window: the figures from the history database.

Redis keeps outcome records ``RETENTION_SECONDS``; a window that starts
earlier is read from the archive, up to the archive's cursor, and completed
with what Redis holds after it (``stats.merge_later``), so the figures and
their definitions are those of a window read from Redis alone. The archive
is read as a stream, twice: once for the figures (keeping the newest missed
calls), once for the later calls that followed those up. Memory holds the
groups and the callback list, never the window's calls.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import app.stats.figures as stats
from app.stats.counted import summarize_counted
from app.stats.figure_rules import FigureRules
from app.stats.heatmap import METRICS, HeatmapCells, heatmap
from core.history.records import decided_us
from core.history.reports import QUARTER_US, archived_of, quarter_counts, revised_after
from core.history.search import window_records
from core.history.writer import read_cursor
from core.local_time import UTC_ZONE
from core.store import Store
from statemachine.outcome import OutcomeRecord


def reaches_past_retention(store: Store, start_us: int) -> bool:
    """Does a window starting at ``start_us`` begin before what Redis still holds?"""
    return start_us < store.outcomes.server_time_us() - int(
        store.backend.retention_seconds * 1_000_000
    )


class HistoryWindow:
    """The calls of a stats window, from the archive and the Redis records after it."""

    def __init__(
        self,
        engine: sa.Engine,
        store: Store,
        tenants: Sequence[str],
        start_us: int,
        end_us: int,
        *,
        max_later_records: int,
    ) -> None:
        self.engine = engine
        self.tenants = list(tenants)
        self.start_us = start_us
        with engine.connect() as connection:
            archived_to = read_cursor(connection)
        # Every record up to the cursor is archived; Redis has what came after.
        boundary = decided_us({"id": archived_to}) if archived_to else start_us
        self.archive_end_us = min(end_us, boundary)
        later_from = max(start_us, boundary)
        self.later, self.read_until = store.outcomes.read_outcome_window(
            self.tenants, later_from, end_us, max_records=max_later_records
        )

    def calls(self) -> Iterator[OutcomeRecord]:
        """The window's calls, each once at its latest revision (a fresh stream each time)."""
        with self.engine.connect() as connection:
            archived: Iterator[OutcomeRecord] = iter(())
            if self.archive_end_us >= self.start_us:
                archived = window_records(
                    connection, self.tenants, self.start_us, self.archive_end_us
                )
            yield from stats.merge_later(archived, self.later)


def summarize_history(
    window: HistoryWindow,
    group_by: str | None,
    rules: FigureRules | float,
    missed_limit: int,
    country_of: Callable[[str], str] = lambda tenant: "",
    zone: ZoneInfo = UTC_ZONE,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(``stats.summarize``'s answer, ``stats.missed_calls``'s answer) for the window:
    counted by the database (app/stats/counted.py), or, where the counts cannot
    say, folded from every call."""
    rules = FigureRules.of(rules)
    answer = summarize_counted(window, group_by, rules, missed_limit, country_of, zone)
    if answer is not None:
        return answer
    return summarize_folded(window, group_by, rules, missed_limit, country_of, zone)


def summarize_folded(
    window: HistoryWindow,
    group_by: str | None,
    rules: FigureRules | float,
    missed_limit: int,
    country_of: Callable[[str], str] = lambda tenant: "",
    zone: ZoneInfo = UTC_ZONE,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``summarize_history``'s answer from every call of the window, read and folded."""
    newest: list[tuple[Any, int, OutcomeRecord]] = []
    order = count()

    def keep_newest_missed(calls: Iterator[OutcomeRecord]) -> Iterator[OutcomeRecord]:
        for call in calls:
            if missed_limit and stats.is_missed_inbound(call):
                item = (stats.missed_order(call), next(order), call)
                if len(newest) < missed_limit:
                    heapq.heappush(newest, item)
                else:
                    heapq.heappushpop(newest, item)
            yield call

    summary = stats.summarize(keep_newest_missed(window.calls()), group_by, rules, country_of, zone)
    missed = [call for _, _, call in newest]
    numbers = {stats.caller_key(call) for call in missed} - {None}
    # A second read only when there are callers to follow up (none with missed_limit=0).
    followers = (
        [call for call in window.calls() if stats.contact_key(call) in numbers] if numbers else []
    )
    return summary, stats.missed_calls(missed + followers, missed_limit)


def _local_cell(quarter: int, zone: ZoneInfo) -> tuple[int, int] | None:
    """The (weekday, hour) in ``zone`` of every instant of a UTC quarter hour; None
    when they are not all in one (an offset not in whole quarter hours, or one that
    changes inside it)."""
    first = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=quarter * QUARTER_US)
    last = first + timedelta(microseconds=QUARTER_US - 1)
    begins, ends = first.astimezone(zone), last.astimezone(zone)
    cell = (begins.weekday(), begins.hour)
    same = begins.utcoffset() == ends.utcoffset() and cell == (ends.weekday(), ends.hour)
    return cell if same else None


def heatmap_history(
    window: HistoryWindow, zone: ZoneInfo, metric: str, rules: FigureRules
) -> list[list[Any]]:
    """``heatmap.heatmap`` over the window's calls, the archived ones counted by the
    database per quarter hour (core/history/reports.py) rather than read. The calls
    a count cannot hold are folded one by one: those revised after the window's
    end, and those Redis holds a newer revision of (their archived revision is
    taken back). Raises ValueError for an unknown metric."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    cells = HeatmapCells(rules, zone)
    taken_back = HeatmapCells(rules, zone)
    folded: list[OutcomeRecord] = []
    if window.archive_end_us >= window.start_us:
        with window.engine.connect() as connection:
            quarters = quarter_counts(
                connection,
                window.tenants,
                window.start_us,
                window.archive_end_us,
                rules.service_level_seconds,
            )
            placed = [(_local_cell(counts.quarter, zone), counts) for counts in quarters]
            if any(cell is None for cell, _ in placed):
                return heatmap(window.calls(), zone, metric, rules)
            for cell, counts in placed:
                assert cell is not None
                cells.add_counts(*cell, counts)
            bounds = (window.tenants, window.start_us, window.archive_end_us)
            folded = list(revised_after(connection, *bounds))
            revised = {_call(record) for record in folded}
            in_redis = sorted({_call(record) for record in window.later} - revised)
            for record in archived_of(connection, *bounds, in_redis):
                taken_back.add(record)
                folded.append(record)
    # merge_later sees every archived call Redis has a record of, as window.calls() does.
    for call in stats.merge_later(folded, window.later):
        cells.add(call)
    cells.take_back(taken_back)
    return cells.values(metric)


def _call(record: OutcomeRecord) -> tuple[str, str]:
    return (record["tenant_id"], record["call_uuid"])
