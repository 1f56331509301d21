"""Archiving: copy every tenant's outcome stream into the history database.

The passes, the backfill and the lag; the thread that runs the passes beside
each events worker is workers/archiver.py. Each pass reads the
database's cursor, then the outcome records after it (``store.outcomes.read_outcomes``
merges the tenants' streams by id and never skips one), and writes them with
the cursor moved past them in one transaction (``writer.archive``). Nothing in
the event path waits for it: intake and event application never touch the
database, so a database outage only makes the archive fall behind (``lag``),
and it catches up from its cursor when the database is back, for as long as
Redis keeps the records (``RETENTION_SECONDS``).

Several workers may each run one: the cursor's compare-and-set lets one of
them write a batch and makes the others read again.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.history import writer
from core.history.numbers import DEPLOYMENT_DEFAULT, Countries
from core.history.records import decided_us
from core.observability import get_logger
from core.store import Store

log = get_logger("callstate.archiver")

BATCH = 500


def _micros(record_id: str) -> int:
    return int(record_id.partition("-")[0])


def archive_pass(
    store: Store,
    engine: sa.Engine,
    batch: int = BATCH,
    countries: Countries = DEPLOYMENT_DEFAULT,
) -> int:
    """Archive up to ``batch`` records after the cursor; returns how many were written.

    ``countries``: each tenant's country, to keep its numbers as searched
    (core.history.numbers.tenant_countries).

    Only records decided before the server time read first are taken: a
    tenant's first record can only be published after its first event added
    it to the tenants set, so every tenant with a record older than that
    moment is in the list read next, and none is skipped.
    Raises CursorMoved (another archiver was faster), SQLAlchemyError, RedisError.
    """
    with engine.connect() as connection:
        after = writer.read_cursor(connection)
    horizon = store.outcomes.server_time_us()
    records, _ = store.outcomes.read_outcomes(store.tenants.all(), after=after, limit=batch)
    records = [r for r in records if _micros(r["id"]) < horizon]
    if not records:
        return 0
    try:
        writer.archive(engine, records, after, countries)
    except (sa.exc.SQLAlchemyError, UnicodeError) as exc:
        if not writer.refused_by_database(exc):
            raise
        # One record the database will never take must not stop the archive
        # for everyone: write the batch one by one and set that one aside.
        for record, reason in writer.archive_each(engine, records, after, countries):
            log.error(
                "outcome record set aside: the history database refused it",
                outcome_id=record["id"],
                tenant=record["tenant_id"],
                reason=reason,
            )
    return len(records)


def backfill(
    store: Store,
    engine: sa.Engine,
    batch: int = 1000,
    countries: Countries = DEPLOYMENT_DEFAULT,
) -> int:
    """Write every outcome record Redis still holds (idempotent; the cursor stays).

    Returns how many records were read.
    """
    after: str | None = None
    count = 0
    while True:
        records, after = store.outcomes.read_outcomes(store.tenants.all(), after=after, limit=batch)
        if not records:
            return count
        with engine.begin() as connection:
            writer.write_records(connection, records, countries=countries)
        count += len(records)


@dataclass(frozen=True)
class Lag:
    """How far the archive is behind the outcome streams."""

    archived_to: str | None  # the cursor: every record up to this id is archived
    waiting_since_us: int | None  # the oldest record not archived yet, None: none

    def seconds(self, now_us: int) -> float:
        if self.waiting_since_us is None:
            return 0.0
        return max(0.0, (now_us - self.waiting_since_us) / 1_000_000)


def lag(store: Store, engine: sa.Engine) -> Lag:
    """Read the cursor and the oldest record after it. Raises SQLAlchemyError, RedisError."""
    with engine.connect() as connection:
        after = writer.read_cursor(connection)
    waiting, _ = store.outcomes.read_outcomes(store.tenants.all(), after=after, limit=1)
    return Lag(after, decided_us(waiting[0]) if waiting else None)
