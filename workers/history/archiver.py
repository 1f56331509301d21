"""The archiver: follow every tenant's outcome stream into the history database.

A thread beside each events worker's housekeeper. Each pass reads the
database's cursor, then the outcome records after it (``Store.read_outcomes``
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

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import sqlalchemy as sa

from workers.history import writer
from workers.history.database import create_engine
from workers.history.exceptions import CursorMoved
from workers.history.records import decided_us
from workers.observability import get_logger
from workers.settings import Settings
from workers.store import Store

log = get_logger("callstate.archiver")

BATCH = 500
IDLE_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
RETENTION_EVERY_SECONDS = 600.0
DAY_US = 86_400 * 1_000_000


def _micros(record_id: str) -> int:
    return int(record_id.partition("-")[0])


def archive_pass(store: Store, engine: sa.Engine, batch: int = BATCH) -> int:
    """Archive up to ``batch`` records after the cursor; returns how many were written.

    Only records decided before the server time read first are taken: a
    tenant's first record can only be published after its first event added
    it to the tenants set, so every tenant with a record older than that
    moment is in the list read next, and none is skipped.
    Raises CursorMoved (another archiver was faster), SQLAlchemyError, RedisError.
    """
    with engine.connect() as connection:
        after = writer.read_cursor(connection)
    horizon = store.server_time_us()
    records, _ = store.read_outcomes(store.tenants(), after=after, limit=batch)
    records = [r for r in records if _micros(r["id"]) < horizon]
    if not records:
        return 0
    writer.archive(engine, records, after)
    return len(records)


def backfill(store: Store, engine: sa.Engine, batch: int = 1000) -> int:
    """Write every outcome record Redis still holds (idempotent; the cursor stays).

    Returns how many records were read.
    """
    after: str | None = None
    count = 0
    while True:
        records, after = store.read_outcomes(store.tenants(), after=after, limit=batch)
        if not records:
            return count
        with engine.begin() as connection:
            writer.write_records(connection, records)
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
    waiting, _ = store.read_outcomes(store.tenants(), after=after, limit=1)
    return Lag(after, decided_us(waiting[0]) if waiting else None)


class Archiver(threading.Thread):
    """Archive in a loop until stopped; back off while Redis or the database is away."""

    def __init__(
        self,
        store: Store,
        engine: sa.Engine,
        *,
        retention_days: float | None = None,
        batch: int = BATCH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="callstate-archiver", daemon=True)
        self.store = store
        self.engine = engine
        self.retention_days = retention_days
        self.batch = batch
        self.clock = clock
        self.stopping = threading.Event()
        self._backoff = 0.0
        self._last_retention = 0.0

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            pause = self.step()
            self.stopping.wait(pause)

    def step(self) -> float:
        """One pass (and retention when due); returns how long to wait before the next."""
        try:
            written = archive_pass(self.store, self.engine, self.batch)
            due = self.clock() - self._last_retention >= RETENTION_EVERY_SECONDS
            if self.retention_days and due:
                self.apply_retention()
        except CursorMoved:
            return 0.0
        except (sa.exc.SQLAlchemyError, redis.RedisError) as exc:
            self._backoff = min(MAX_BACKOFF_SECONDS, max(0.5, self._backoff * 2))
            log.warning(
                "archive paused: storage unavailable",
                error=str(exc).splitlines()[0][:300],
                retry_in=self._backoff,
            )
            return self._backoff
        if self._backoff:
            log.info("archive resumed")
        self._backoff = 0.0
        return 0.0 if written >= self.batch else IDLE_SECONDS

    def apply_retention(self) -> int:
        """Delete calls that started more than HISTORY_RETENTION_DAYS ago, in batches."""
        if not self.retention_days:
            return 0
        cutoff = int(self.clock() * 1_000_000) - int(self.retention_days * DAY_US)
        deleted = 0
        while not self.stopping.is_set():
            count = writer.delete_started_before(self.engine, cutoff)
            deleted += count
            if count == 0:
                break
        self._last_retention = self.clock()
        if deleted:
            log.info("history retention: calls deleted", count=deleted)
        return deleted


def start_archiver(store: Store, settings: Settings) -> Archiver | None:
    """Start an archiver thread if DATABASE_URL is set; None otherwise."""
    if not settings.database_url:
        return None
    archiver = Archiver(
        store,
        create_engine(settings.database_url, role="worker"),
        retention_days=settings.history_retention_days,
    )
    archiver.start()
    return archiver
