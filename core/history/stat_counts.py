"""/v1/stats counted by the database: the figures of a window's archived calls per group.

The calls ``search.window_records`` would stream for a window are counted with
a GROUP BY (over ``ix_history_calls_stats``, which holds every column counted)
rather than read: one row of ``FigureCounts`` per group and direction. The
caller folds the calls a count cannot hold one by one, as for the heatmap
(core/history/reports.py): those revised after the window's end (left out of
the counts here), and those with a newer revision in Redis (``leaving_out``).

Groups: a UTC quarter hour or hour of the call's start (the caller folds them
into local hours or days), the queue, the tenant, every extension of the call
(``history_extensions``), or none. What is summed is what
``app.stats.figures.Tally`` and ``app.stats.service_levels.LevelTally`` add
call by call, each as they define it; the callback figures' missed callers too
(``contact_kind``), the rest of the callback figures being the caller's, over
the calls ``reached_candidates`` selects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.history.reports import QUARTER_US, archived_of, tune
from core.history.schema import calls, extensions
from core.history.search import window_conditions, window_records
from core.history.writer import of_calls
from statemachine.outcome import OutcomeRecord

GROUPINGS = ("quarter", "hour", "queue", "tenant", "extension", None)
KEYS_PER_QUERY = 500
MISSED = "missed"
REACHING = ("called_back", "answered")


@dataclass(frozen=True)
class FigureCounts:
    """The calls of one group and direction, counted as ``Tally`` and ``LevelTally``
    count them (``extension`` grouping: as that extension's)."""

    key: Any
    outbound: bool
    calls: int
    outbound_talk_us: int
    waits: int
    wait_us: int
    wait_max: float | None
    answered: int
    answer_waits: int
    answer_wait_us: int
    talks: int
    talk_us: int
    voicemail: int
    elsewhere: int
    abandoned: int
    no_answer: int
    unrouted: int
    level_abandoned: int
    short_abandoned: int
    rang_unanswered: int
    missed_callers: int
    answered_within: tuple[int, ...]
    # The countries the group's numbers were read in: (least, greatest, rows read in one).
    key_countries: tuple[str | None, str | None, int] = (None, None, 0)


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    # FILTER, not SUM(CASE ...): one test per row, no CASE to build and add.
    return sa.func.count().filter(condition)


def counted(
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    leaving_out: Sequence[tuple[str, str]] = (),
) -> list[sa.ColumnElement[bool]]:
    """The rows counted: the window's calls whose row is their revision at ``end_us``,
    less the calls ``leaving_out`` (tenant, call uuid)."""
    conditions = [*window_conditions(tenant_ids, start_us, end_us), calls.c.decided_us <= end_us]
    if leaving_out:
        conditions.append(sa.not_(of_calls(calls, leaving_out)))
    return conditions


def quarter_of(
    started: sa.ColumnElement[int], length_us: int = QUARTER_US
) -> sa.ColumnElement[int]:
    """The UTC quarter hour (``length_us`` units) ``started`` is in, from the epoch."""
    # Floor division on both databases (their / and % truncate towards zero).
    return (started - (started % length_us + length_us) % length_us) // length_us


def figure_counts(
    connection: sa.Connection,
    conditions: Sequence[sa.ColumnElement[bool]],
    grouping: str | None,
    thresholds: Sequence[float],
) -> list[FigureCounts]:
    """The counted rows' figures per group (``grouping`` of GROUPINGS) and direction;
    answered within each of ``thresholds`` seconds."""
    c = calls.c
    source: sa.FromClause = calls
    if grouping == "extension":
        source = calls.outerjoin(
            extensions,
            sa.and_(extensions.c.tenant_id == c.tenant_id, extensions.c.call_uuid == c.call_uuid),
        )
        key: sa.ColumnElement[Any] = extensions.c.extension

        def mine(party: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
            # No extension (the None group): the call counts whole, as Tally.add counts it.
            return sa.or_(key.is_(None), sa.and_(party.is_not(None), party == key))

        answered = sa.and_(c.outcome == "answered", mine(c.answered_by))
        voicemail = sa.and_(c.outcome == "voicemail", mine(c.voicemail_box))
        rang_unanswered = _count(sa.and_(extensions.c.rang, sa.not_(answered)))
    else:
        key = {
            "quarter": quarter_of(c.started_us),
            "hour": quarter_of(c.started_us, 4 * QUARTER_US),
            "queue": c.queue,
            "tenant": c.tenant_id,
            None: sa.literal(None),
        }[grouping]
        answered = c.outcome == "answered"
        voicemail = c.outcome == "voicemail"
        rang_unanswered = sa.literal(0)
    # Grouped by direction: an outbound row's inbound figures are never read, so
    # no figure tests the direction.
    outbound = c.direction == "outbound"
    unanswered = c.outcome.not_in(["answered", "voicemail"])
    abandoned = c.missed_reason == "abandoned"
    no_answer = c.missed_reason == "no_answer"
    level_abandoned = sa.and_(c.outcome == "missed", abandoned)


    statement = (
        sa.select(
            key.label("key"),
            outbound.label("outbound"),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(c.talk_us), 0),
            sa.func.count(c.wait_us),
            sa.func.coalesce(sa.func.sum(c.wait_us), 0),
            sa.func.max(c.wait_seconds),
            _count(answered),
            sa.func.count(c.wait_us).filter(answered),
            sa.func.coalesce(sa.func.sum(c.wait_us).filter(answered), 0),
            sa.func.count(c.talk_us).filter(answered),
            sa.func.coalesce(sa.func.sum(c.talk_us).filter(answered), 0),
            _count(voicemail),
            _count(
                sa.and_(
                    c.outcome.in_(["answered", "voicemail"]), sa.not_(sa.or_(answered, voicemail))
                )
            ),
            _count(sa.and_(unanswered, abandoned)),
            _count(sa.and_(unanswered, no_answer)),
            _count(
                sa.and_(
                    unanswered,
                    sa.or_(
                        c.missed_reason.is_(None),
                        c.missed_reason.not_in(["abandoned", "no_answer"]),
                    ),
                )
            ),
            _count(level_abandoned),
            _count(sa.and_(level_abandoned, c.short_abandon)),
            rang_unanswered,
            _count(c.contact_kind == MISSED),
            sa.func.min(c.key_country),
            sa.func.max(c.key_country),
            sa.func.count(c.key_country),
            *(
                _count(sa.and_(answered, c.wait_seconds <= float(threshold)))
                for threshold in thresholds
            ),
        )
        .select_from(source)
        .where(*conditions)
        .group_by(key, outbound)
    )
    tune(connection)
    return [_figures(row) for row in connection.execute(statement)]


def _figures(row: sa.Row[Any]) -> FigureCounts:
    return FigureCounts(
        key=row[0],
        outbound=bool(row[1]),
        calls=int(row[2]),
        outbound_talk_us=int(row[3]),
        waits=int(row[4]),
        wait_us=int(row[5]),
        wait_max=None if row[6] is None else float(row[6]),
        answered=int(row[7]),
        answer_waits=int(row[8]),
        answer_wait_us=int(row[9]),
        talks=int(row[10]),
        talk_us=int(row[11]),
        voicemail=int(row[12]),
        elsewhere=int(row[13]),
        abandoned=int(row[14]),
        no_answer=int(row[15]),
        unrouted=int(row[16]),
        level_abandoned=int(row[17]),
        short_abandoned=int(row[18]),
        rang_unanswered=int(row[19]),
        missed_callers=int(row[20]),
        answered_within=tuple(int(value) for value in row[24:]),
        key_countries=(row[21], row[22], int(row[23])),
    )


def key_countries(
    connection: sa.Connection, conditions: Sequence[sa.ColumnElement[bool]]
) -> set[tuple[str, str | None]]:
    """(tenant, country its numbers were read in) of the counted rows."""
    statement = sa.select(calls.c.tenant_id, calls.c.key_country).where(*conditions).distinct()
    return {(str(tenant), country) for tenant, country in connection.execute(statement)}


def reached_candidates(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    conditions: Sequence[sa.ColumnElement[bool]],
    missed_keys: Sequence[tuple[str, str]],
    reaching_keys: Sequence[tuple[str, str]],
) -> Iterator[OutcomeRecord]:
    """The counted calls that may take part in a callback: each missed caller's call
    with a call reaching the same number (``contact_key``) among the counted ones or
    in ``reaching_keys`` (tenant, number), and each call reaching a number missed
    among the counted ones or in ``missed_keys``. A superset of the calls whose
    callback item, or whose resolving of one, the counts cannot say."""
    # The numbers both missed and reached among the counted calls: one pass over
    # the contact index, grouped by number; then their calls, probed by number.
    kind = calls.c.contact_kind
    shared = (
        sa.select(calls.c.tenant_id, calls.c.contact_key)
        .where(*conditions, calls.c.contact_key.is_not(None))
        .group_by(calls.c.tenant_id, calls.c.contact_key)
        .having(
            sa.and_(
                sa.func.count().filter(kind == MISSED) > 0,
                sa.func.count().filter(kind != MISSED) > 0,
            )
        )
    )
    tune(connection)
    numbers = [(str(tenant), str(number)) for tenant, number in connection.execute(shared)]

    def among(keys: Sequence[tuple[str, str]]) -> sa.ColumnElement[bool]:
        return _per_tenant(calls.c.contact_key, keys)

    wanted = [
        sa.and_(kind.is_not(None), among(numbers[first : first + KEYS_PER_QUERY]))
        for first in range(0, len(numbers), KEYS_PER_QUERY)
    ]
    if reaching_keys or missed_keys:
        wanted.append(
            sa.or_(
                sa.and_(kind == MISSED, among(reaching_keys)),
                sa.and_(kind.in_(REACHING), among(missed_keys)),
            )
        )
    # The calls' keys from the index alone, then their records (few).
    keys: dict[tuple[str, str], None] = {}
    for which in wanted:
        statement = sa.select(calls.c.tenant_id, calls.c.call_uuid).where(*conditions, which)
        for tenant, call in connection.execute(statement):
            keys[(str(tenant), str(call))] = None
    yield from archived_of(connection, tenant_ids, start_us, end_us, list(keys))


def missed_inbound(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    conditions: Sequence[sa.ColumnElement[bool]],
) -> Iterator[OutcomeRecord]:
    """The counted inbound missed calls' records (the callback list's candidates)."""
    missed = [calls.c.direction != "outbound", calls.c.outcome == "missed"]
    yield from window_records(connection, tenant_ids, start_us, end_us, only=[*conditions, *missed])


def followers(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    conditions: Sequence[sa.ColumnElement[bool]],
    numbers: Sequence[tuple[str, str]],
) -> Iterator[OutcomeRecord]:
    """The counted calls that may follow up a missed call from ``numbers`` (tenant,
    ``phone_tail``): outbound calls to them, answered calls from them."""
    reaching = sa.or_(calls.c.direction == "outbound", calls.c.outcome == "answered")
    for first in range(0, len(numbers), KEYS_PER_QUERY):
        chunk = numbers[first : first + KEYS_PER_QUERY]
        only = [*conditions, reaching, _per_tenant(calls.c.phone_tail, chunk)]
        yield from window_records(connection, tenant_ids, start_us, end_us, only=only)


def _per_tenant(
    column: sa.Column[Any], keys: Sequence[tuple[str, str]]
) -> sa.ColumnElement[bool]:
    """``(tenant_id, column) in keys``, as one ``column IN (...)`` per tenant: a
    row-value IN list of hundreds takes PostgreSQL longer to plan than to run."""
    by_tenant: dict[str, set[str]] = {}
    for tenant, value in keys:
        by_tenant.setdefault(tenant, set()).add(value)
    return sa.or_(
        sa.false(),
        *(
            sa.and_(calls.c.tenant_id == tenant, column.in_(sorted(values)))
            for tenant, values in by_tenant.items()
        ),
    )
