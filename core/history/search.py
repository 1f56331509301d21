"""The archive's reads: call search with keyset paging, and the records of a stats window.

Searches are newest ``started_at`` first, ordered by (started, tenant, call)
so that a page's last call is an exact position to continue from: a cursor
is that position, and the next page is the calls strictly after it. Each
filter has an index to walk (see docs/performance.md for the plans): a tenant's
calls by start; all tenants' calls by start; an extension's calls by start
(``history_extensions``, by its number as searched); a tenant's callers by
number as searched, and as written for a part of a number.

Numbers are matched however the PBX wrote them (core.history.numbers): a
caller or extension filter that reads as a full number in ``country`` is
compared in E.164 with the searchable form stored beside the raw one.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from core.history.exceptions import BadCursor
from core.history.numbers import searchable
from core.history.schema import calls, extensions, revisions
from core.settings import Settings
from core.store import loads
from statemachine.outcome import OutcomeRecord

STREAM_BATCH = 1000
# Per statement: ``Connection.execution_options`` would set them on the connection
# for every later statement, whose plans a server-side cursor changes (no parallel
# workers, plans that start fast rather than finish fast).
STREAMED = {"stream_results": True, "yield_per": STREAM_BATCH}


@dataclass(frozen=True)
class CallFilter:
    """What to search for; None = any. Times are microseconds, ``to`` exclusive."""

    tenant_id: str | None = None
    started_from_us: int | None = None
    started_to_us: int | None = None
    outcome: str | None = None
    missed_reason: str | None = None
    direction: str | None = None
    queue: str | None = None
    ring_group: str | None = None
    extension: str | None = None  # as written: any form of the same number matches
    caller_prefix: str | None = None  # as written: a full number matches any form of it
    country: str = Settings.default_country  # what national numbers in the filter are read in


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last call's (started_us, tenant_id, call_uuid)."""

    started_us: int
    tenant_id: str
    call_uuid: str

    def encode(self) -> str:
        raw = json.dumps([self.started_us, self.tenant_id, self.call_uuid], ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Position:
        """Read a cursor this module encoded. Raises BadCursor."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            started, tenant, call = json.loads(raw.decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            raise BadCursor("cursor is not one this API handed out") from None
        if not (
            isinstance(started, int)
            and not isinstance(started, bool)
            and -(2**63) <= started < 2**63
            and isinstance(tenant, str)
            and isinstance(call, str)
        ):
            raise BadCursor("cursor is not one this API handed out")
        return cls(started, tenant, call)


def _prefix_end(prefix: str) -> str | None:
    """The smallest text after every text starting with ``prefix`` (byte order), or
    None if there is none (a prefix of U+10FFFF only)."""
    stripped = prefix.rstrip("\U0010ffff")
    if not stripped:
        return None
    last = ord(stripped[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are not text; skip past them
        last = 0xE000
    return stripped[:-1] + chr(last)


def _starts_with(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix``, as a range an index walks."""
    end = _prefix_end(prefix)
    if end is None:
        return column >= prefix
    return sa.and_(column >= prefix, column < end)


def _caller_matches(written: str, country: str) -> sa.ColumnElement[bool]:
    """A full number: the callers with that number, however written. Part of a
    number (``+1780``, ``780``): searched callers or raw numbers starting with it."""
    key = searchable(written, country)
    if key != written:
        return _starts_with(calls.c.caller_key, key or written)
    return sa.or_(
        _starts_with(calls.c.caller_key, written), _starts_with(calls.c.caller_number, written)
    )


def select_calls(where: CallFilter, after: Position | None, limit: int | None) -> sa.Select[Any]:
    """The search as one SELECT of (record, started_us, tenant_id, call_uuid).

    Raises BadCursor for a cursor of another tenant than the filter's.
    """
    if where.extension is not None:
        # Walk the extension's index; its started_us is a copy of the call's.
        keys = extensions.c
        source: sa.FromClause = extensions.join(
            calls, sa.and_(calls.c.tenant_id == keys.tenant_id, calls.c.call_uuid == keys.call_uuid)
        )
        conditions: list[sa.ColumnElement[bool]] = [
            keys.extension_key == searchable(where.extension, where.country)
        ]
    else:
        keys = calls.c
        source = calls
        conditions = []
    if where.tenant_id is not None:
        conditions.append(keys.tenant_id == where.tenant_id)
    if where.started_from_us is not None:
        conditions.append(keys.started_us >= where.started_from_us)
    if where.started_to_us is not None:
        conditions.append(keys.started_us < where.started_to_us)
    for column, value in (
        (calls.c.outcome, where.outcome),
        (calls.c.missed_reason, where.missed_reason),
        (calls.c.direction, where.direction),
        (calls.c.queue, where.queue),
        (calls.c.ring_group, where.ring_group),
    ):
        if value is not None:
            conditions.append(column == value)
    if where.caller_prefix:
        conditions.append(_caller_matches(where.caller_prefix, where.country))
    if after is not None:
        if where.tenant_id is not None:
            # One tenant: compare (started, call) so the tenant's index serves the range.
            if after.tenant_id != where.tenant_id:
                raise BadCursor("cursor belongs to another search")
            conditions.append(
                sa.tuple_(keys.started_us, keys.call_uuid) < (after.started_us, after.call_uuid)
            )
        else:
            conditions.append(
                sa.tuple_(keys.started_us, keys.tenant_id, keys.call_uuid)
                < (after.started_us, after.tenant_id, after.call_uuid)
            )
    statement = (
        sa.select(calls.c.record, keys.started_us, keys.tenant_id, keys.call_uuid)
        .select_from(source)
        .where(*conditions)
        .order_by(keys.started_us.desc(), keys.tenant_id.desc(), keys.call_uuid.desc())
    )
    return statement.limit(limit) if limit is not None else statement


def page(
    engine: sa.Engine, where: CallFilter, after: Position | None, limit: int
) -> tuple[list[str], Position | None]:
    """One page: the records' JSON texts, and the position to continue from (None: no more)."""
    with engine.connect() as connection:
        found = connection.execute(select_calls(where, after, limit + 1)).all()
    more = len(found) > limit
    found = found[:limit]
    last = found[-1] if more else None
    position = Position(int(last[1]), str(last[2]), str(last[3])) if last is not None else None
    return [str(row[0]) for row in found], position


def stream(
    connection: sa.Connection, where: CallFilter, after: Position | None, limit: int | None
) -> Iterator[str]:
    """Every matching record's JSON text, fetched in batches (a server-side cursor on
    PostgreSQL): memory stays flat whatever the number of rows."""
    result = connection.execute(select_calls(where, after, limit), execution_options=STREAMED)
    for row in result:
        yield str(row[0])


def window_conditions(
    tenant_ids: Sequence[str] | None, start_us: int, end_us: int
) -> list[sa.ColumnElement[bool]]:
    """The ``history_calls`` of a stats window: revision 1 decided from ``start_us``
    to ``end_us`` (both included), of ``tenant_ids`` (None: every tenant)."""
    conditions = [
        calls.c.first_revision == 1,
        calls.c.first_decided_us >= start_us,
        calls.c.first_decided_us <= end_us,
    ]
    if tenant_ids is not None:
        conditions.append(calls.c.tenant_id.in_(list(tenant_ids)))
    return conditions


def window_records(
    connection: sa.Connection,
    tenant_ids: Sequence[str] | None,
    start_us: int,
    end_us: int,
    only: Sequence[sa.ColumnElement[bool]] = (),
) -> Iterator[OutcomeRecord]:
    """For /v1/stats: each call whose revision 1 was decided from ``start_us`` to
    ``end_us`` (both included), at its latest revision decided by ``end_us``.

    The same set ``app.stats.figures.calls_in_window`` picks from the outcome streams,
    chosen by the database and streamed. ``tenant_ids`` None: every tenant.
    ``only``: further conditions on ``history_calls`` (core/history/reports.py).
    """
    later = revisions.alias("later")
    latest = (
        sa.select(sa.func.max(later.c.revision))
        .where(
            later.c.tenant_id == calls.c.tenant_id,
            later.c.call_uuid == calls.c.call_uuid,
            later.c.decided_us <= end_us,
        )
        .scalar_subquery()
    )
    conditions = [*window_conditions(tenant_ids, start_us, end_us), *only]
    # A call not revised since the window's end is its row (the row holds the
    # latest revision); only the others look their revision up, so the database
    # never joins the month's calls with every revision.
    current = sa.select(calls.c.record).where(*conditions, calls.c.decided_us <= end_us)
    older = (
        sa.select(revisions.c.record)
        .select_from(
            calls.join(
                revisions,
                sa.and_(
                    revisions.c.tenant_id == calls.c.tenant_id,
                    revisions.c.call_uuid == calls.c.call_uuid,
                    revisions.c.revision == latest,
                ),
            )
        )
        .where(*conditions, calls.c.decided_us > end_us)
    )
    result = connection.execute(sa.union_all(current, older), execution_options=STREAMED)
    for row in result:
        record: OutcomeRecord = loads(row[0])
        yield record
