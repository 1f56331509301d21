"""The reports' counts, counted by the database: the heatmap's calls per quarter hour.

A window's archived calls (those ``search.window_records`` would stream) are
counted with a GROUP BY over ``ix_history_calls_reports``, which holds every
column counted: no record is read or decoded. What a count cannot say is
left to the caller, who folds those calls' records as before:

- a call revised after the window's end is counted at an older revision
  than its row holds: ``revised_after`` streams them, and ``quarter_counts``
  leaves them out;
- a call with a newer revision in Redis than in the archive: ``archived_of``
  streams the archived records of given calls, to take back from the counts.

Quarter hours of UTC, so that any time zone whose offset is whole quarter
hours (every one in use) maps each of them to one local hour.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from core.history.schema import REVISED, calls
from core.history.search import window_conditions, window_records
from core.history.writer import of_calls
from statemachine.outcome import OutcomeRecord

QUARTER_US = 15 * 60 * 1_000_000
KEYS_PER_QUERY = 500


@dataclass(frozen=True)
class QuarterCounts:
    """The inbound calls that started in one UTC quarter hour (``quarter`` x 15 min
    from the epoch), as ``app.stats.service_levels.LevelTally`` counts them."""

    quarter: int
    offered: int
    answered: int
    missed: int
    abandoned: int
    short_abandoned: int
    answered_within: tuple[int, ...]


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # FILTER, not SUM(CASE ...): one test per row, no CASE to build and add.
    return sa.func.count().filter(condition)


def tune(connection: sa.Connection) -> None:
    """PostgreSQL, for the rest of the transaction: room to hash the groups rather
    than sort the window's rows on disk, and no JIT (these queries look costly to
    the planner, and compiling them took seconds, longer than running them)."""
    if connection.dialect.name == "postgresql":
        settings = [
            sa.func.set_config("work_mem", "64MB", True),
            sa.func.set_config("jit", "off", True),
        ]
        connection.execute(sa.select(*settings)).all()


def quarter_counts(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    thresholds: Sequence[float],
) -> list[QuarterCounts]:
    """The window's inbound calls whose row is their revision at ``end_us`` (none
    revised after it), counted per UTC quarter hour of their start; answered within
    each of ``thresholds`` seconds. Quarters in order, empty ones left out."""
    started = calls.c.started_us
    # Floor division on both databases (their / and % truncate towards zero).
    quarter = (started - (started % QUARTER_US + QUARTER_US) % QUARTER_US) // QUARTER_US
    answered = calls.c.outcome == "answered"
    missed = calls.c.outcome == "missed"
    abandoned = sa.and_(missed, calls.c.missed_reason == "abandoned")
    within = [
        _count(sa.and_(answered, calls.c.wait_seconds <= float(threshold)))
        for threshold in thresholds
    ]
    statement = (
        sa.select(
            quarter.label("quarter"),
            sa.func.count(),
            _count(answered),
            _count(missed),
            _count(abandoned),
            _count(sa.and_(abandoned, calls.c.short_abandon)),
            *within,
        )
        .where(
            *window_conditions(tenant_ids, start_us, end_us),
            calls.c.decided_us <= end_us,
            calls.c.direction != "outbound",
        )
        .group_by(quarter)
    )
    tune(connection)
    return [
        QuarterCounts(
            int(row[0]), row[1], row[2], row[3], row[4], row[5], tuple(int(n) for n in row[6:])
        )
        # Ordered here: an ORDER BY would have the database sort the window's rows
        # to group them, rather than hash them (a few thousand quarters to sort).
        for row in sorted(connection.execute(statement), key=lambda row: int(row[0]))
    ]


def revised_after(
    connection: sa.Connection, tenant_ids: Sequence[str] | None, start_us: int, end_us: int
) -> Iterator[OutcomeRecord]:
    """The window's calls revised after ``end_us``, at their revision then
    (``quarter_counts`` leaves them out)."""
    # Implied (revision 1 was decided by end_us), and what the partial index
    # ix_history_calls_revised holds: the database looks among revised calls only.
    only = [calls.c.decided_us > end_us, REVISED]
    yield from window_records(connection, tenant_ids, start_us, end_us, only=only)


def archived_of(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    call_keys: Sequence[tuple[str, str]],
) -> Iterator[OutcomeRecord]:
    """The window's calls among ``call_keys`` (tenant, call uuid), at their revision
    at ``end_us``: as ``search.window_records`` streams them."""
    for first in range(0, len(call_keys), KEYS_PER_QUERY):
        chunk = call_keys[first : first + KEYS_PER_QUERY]
        only = [of_calls(calls, chunk)]
        yield from window_records(connection, tenant_ids, start_us, end_us, only=only)
