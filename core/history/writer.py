"""The archive's writes: outcome records into the history tables, exactly once.

Every write transaction starts by locking the cursor row (an UPDATE), so
writers take turns, and the archiver's UPDATE is a compare-and-set: it moves
the cursor from the id it read to the last id of the batch, or writes nothing
(``CursorMoved``). The rows and the cursor commit together, so a crash, a
``kill -9`` or a lost connection leaves either both or neither: the next pass
starts from the committed cursor and writes each record once. The rows are
upserts as well, so writing a record twice (a backfill) changes nothing.

A record the database refuses (``refused_by_database``) would fail its batch
again and again: the batch is then written one record at a time, each in a
savepoint, and a refused one is set aside (``history_set_aside``) in the
same transaction that moves the cursor past it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.history import records as rows
from core.history.exceptions import CursorMoved
from core.history.numbers import DEPLOYMENT_DEFAULT, Countries
from core.history.schema import (
    OUTCOMES_CURSOR,
    calls,
    cursor,
    extensions,
    revisions,
    set_aside,
)
from statemachine.outcome import OutcomeRecord

Key = tuple[str, str]
KEEP_CURSOR = object()


def read_cursor(connection: sa.Connection) -> str | None:
    """The last outcome id archived, or None before the first."""
    last = connection.execute(
        sa.select(cursor.c.last_id).where(cursor.c.name == OUTCOMES_CURSOR)
    ).scalar_one()
    return str(last) or None


def _lock_cursor(connection: sa.Connection, expected: object, new: str | None) -> None:
    """Take the cursor row for this transaction; with ``new``, move it from ``expected``.

    Raises CursorMoved if another writer moved it first.
    """
    statement = sa.update(cursor).where(cursor.c.name == OUTCOMES_CURSOR)
    if expected is KEEP_CURSOR:
        statement = statement.values(updated_us=cursor.c.updated_us)
    else:
        statement = statement.where(cursor.c.last_id == (expected or "")).values(
            last_id=new or "", updated_us=int(time.time() * 1_000_000)
        )
    if connection.execute(statement).rowcount != 1:
        raise CursorMoved(f"the archive cursor is no longer at {expected!r}")


def of_calls(table: sa.Table, keys: Sequence[Key]) -> sa.ColumnElement[bool]:
    """``(tenant_id, call_uuid) in keys``, as one ``call_uuid IN (...)`` per tenant: a
    row-value IN list of thousands takes PostgreSQL seconds to plan, this takes none."""
    by_tenant: dict[str, list[str]] = {}
    for tenant, call in keys:
        by_tenant.setdefault(tenant, []).append(call)
    return sa.or_(
        *(
            sa.and_(table.c.tenant_id == tenant, table.c.call_uuid.in_(uuids))
            for tenant, uuids in by_tenant.items()
        )
    )


def _insert_rows(
    connection: sa.Connection,
    table: sa.Table,
    values: Sequence[dict[str, Any]],
    on_conflict: Callable[[Any], Any],
) -> None:
    """INSERT ``values`` (one executemany: psycopg pipelines it), ``on_conflict`` applied."""
    if not values:
        return
    dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(on_conflict(dialect.insert(table)), list(values))


def _revision(record: OutcomeRecord) -> int:
    return int(record.get("revision") or 1)


def _latest_per_call(records: Sequence[OutcomeRecord]) -> dict[Key, OutcomeRecord]:
    """Each call's latest record here."""
    latest: dict[Key, OutcomeRecord] = {}
    for record in records:
        key = (record["tenant_id"], record["call_uuid"])
        if key not in latest or _revision(record) > _revision(latest[key]):
            latest[key] = record
    return latest


def _call_rows(
    records: Sequence[OutcomeRecord], keys: set[Key], countries: Countries
) -> list[dict[str, Any]]:
    """The calls rows of ``keys``: from each call's latest record here, ``first_*``
    from its earliest."""
    first: dict[Key, OutcomeRecord] = {}
    for record in records:
        key = (record["tenant_id"], record["call_uuid"])
        if key in keys and (key not in first or _revision(record) < _revision(first[key])):
            first[key] = record
    latest = _latest_per_call(records)
    return [
        {
            **rows.call_row(latest[key], countries(key[0])),
            "first_revision": _revision(first[key]),
            "first_decided_us": rows.decided_us(first[key]),
        }
        for key in keys
    ]


def write_records(
    connection: sa.Connection,
    records: Sequence[OutcomeRecord],
    *,
    expected_cursor: object = KEEP_CURSOR,
    countries: Countries = DEPLOYMENT_DEFAULT,
) -> int:
    """Write outcome records (with their ``id``) in the caller's transaction,
    numbers also kept as searched in each tenant's country (``countries``).

    With ``expected_cursor`` (the archiver), the cursor moves from it to the
    last record's id, or CursorMoved is raised; without (a backfill), the
    cursor stays. Returns how many calls got a newer revision.
    """
    new_cursor = str(records[-1]["id"]) if records else None
    _lock_cursor(connection, expected_cursor, new_cursor)
    if not records:
        return 0
    _insert_rows(
        connection,
        revisions,
        [rows.revision_row(r) for r in records],
        lambda insert: insert.on_conflict_do_nothing(),
    )
    latest = _latest_per_call(records)
    stored: dict[Key, int] = {
        (tenant, call): revision
        for tenant, call, revision in connection.execute(
            sa.select(calls.c.tenant_id, calls.c.call_uuid, calls.c.revision).where(
                of_calls(calls, list(latest))
            )
        )
    }
    newer = {k: r for k, r in latest.items() if _revision(r) > stored.get(k, 0)}
    if not newer:
        return 0
    kept = {"tenant_id", "call_uuid", "first_revision", "first_decided_us"}
    _insert_rows(
        connection,
        calls,
        _call_rows(records, set(newer), countries),
        lambda insert: insert.on_conflict_do_update(
            index_elements=[calls.c.tenant_id, calls.c.call_uuid],
            set_={c.name: insert.excluded[c.name] for c in calls.c if c.name not in kept},
            where=calls.c.revision < insert.excluded.revision,
        ),
    )
    replaced = [k for k in newer if k in stored]
    if replaced:
        connection.execute(sa.delete(extensions).where(of_calls(extensions, replaced)))
    extension_rows = [
        row
        for record in newer.values()
        for row in rows.extension_rows(record, countries(record["tenant_id"]))
    ]
    _insert_rows(connection, extensions, extension_rows, lambda insert: insert)
    return len(newer)


def archive(
    engine: sa.Engine,
    records: Sequence[OutcomeRecord],
    expected_cursor: str | None,
    countries: Countries = DEPLOYMENT_DEFAULT,
) -> int:
    """Write a batch and move the cursor past it, in one transaction (see write_records)."""
    with engine.begin() as connection:
        return write_records(
            connection, records, expected_cursor=expected_cursor, countries=countries
        )


def refused_by_database(exc: Exception) -> bool:
    """Did the database refuse a value (so the same record fails every time), as
    opposed to being unavailable?

    A value it cannot store (DataError: NUL in PostgreSQL text, a number out of
    range), a constraint (IntegrityError), or text the driver cannot even
    encode (a lone surrogate: a UnicodeError, raised before any round trip).
    """
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError | UnicodeError):
        return True
    return isinstance(exc, sa.exc.StatementError) and isinstance(exc.orig, UnicodeError)


def archive_each(
    engine: sa.Engine,
    records: Sequence[OutcomeRecord],
    expected_cursor: str | None,
    countries: Countries = DEPLOYMENT_DEFAULT,
) -> list[tuple[OutcomeRecord, str]]:
    """Write a batch a record at a time, set aside the records the database
    refuses, and move the cursor past the batch, in one transaction; returns
    the records set aside with why. Raises CursorMoved, SQLAlchemyError.
    """
    refused: list[tuple[OutcomeRecord, str]] = []
    with engine.begin() as connection:
        _lock_cursor(connection, expected_cursor, str(records[-1]["id"]) if records else None)
        for record in records:
            try:
                with connection.begin_nested():
                    write_records(connection, [record], countries=countries)
            except (sa.exc.SQLAlchemyError, UnicodeError) as exc:
                if not refused_by_database(exc):
                    raise
                refused.append((record, _reason(exc)))
        if refused:
            now = int(time.time() * 1_000_000)
            _insert_rows(
                connection,
                set_aside,
                [
                    {
                        "outcome_id": str(record["id"]),
                        "reason": reason,
                        "set_aside_us": now,
                        # ensure_ascii: escaped, the text holds no NUL and no surrogate.
                        "record": json.dumps(record, sort_keys=True, ensure_ascii=True),
                    }
                    for record, reason in refused
                ],
                lambda insert: insert.on_conflict_do_nothing(),
            )
    return refused


def _reason(exc: Exception) -> str:
    """The first line of why, in ASCII (it may quote the value refused)."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__]
    return lines[0].encode("ascii", "backslashreplace").decode("ascii")[:300]


def set_aside_records(connection: sa.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The records set aside, newest first: outcome_id, reason, set_aside_us, record."""
    rows_found = connection.execute(
        sa.select(set_aside).order_by(set_aside.c.set_aside_us.desc()).limit(limit)
    )
    return [dict(row._mapping) for row in rows_found]


def set_aside_count(connection: sa.Connection) -> int:
    """How many records the archive has set aside."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(set_aside)).scalar_one())


def delete_started_before(engine: sa.Engine, cutoff_us: int, batch: int = 1000) -> int:
    """Delete up to ``batch`` calls that started before ``cutoff_us``, with their
    revisions and extension rows, in one transaction; returns how many calls."""
    with engine.begin() as connection:
        _lock_cursor(connection, KEEP_CURSOR, None)
        keys: list[Key] = [
            (str(tenant), str(call))
            for tenant, call in connection.execute(
                sa.select(calls.c.tenant_id, calls.c.call_uuid)
                .where(calls.c.started_us < cutoff_us)
                .order_by(calls.c.started_us)
                .limit(batch)
            )
        ]
        if not keys:
            return 0
        for table in (extensions, revisions, calls):
            connection.execute(sa.delete(table).where(of_calls(table, keys)))
        return len(keys)
