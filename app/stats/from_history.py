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
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import app.stats.figures as stats
from app.stats.figure_rules import FigureRules
from core.history.records import decided_us
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
    """(``stats.summarize``'s answer, ``stats.missed_calls``'s answer) for the window."""
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

    summary = stats.summarize(
        keep_newest_missed(window.calls()), group_by, rules, country_of, zone
    )
    missed = [call for _, _, call in newest]
    numbers = {stats.caller_key(call) for call in missed} - {None}
    # A second read only when there are callers to follow up (none with missed_limit=0).
    followers = (
        [call for call in window.calls() if stats.contact_key(call) in numbers] if numbers else []
    )
    return summary, stats.missed_calls(missed + followers, missed_limit)
