"""The archiver thread: runs the archive passes (core/history/archive.py) beside
each events worker, and applies HISTORY_RETENTION_DAYS now and then.

Nothing in the event path waits for it; while Redis or the database is away it
backs off, and it catches up from the database's cursor when they are back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis
import sqlalchemy as sa

from core.history import writer
from core.history.archive import BATCH, archive_pass
from core.history.database import create_engine
from core.history.exceptions import CursorMoved
from core.history.numbers import DEPLOYMENT_DEFAULT, Countries, tenant_countries
from core.observability import get_logger
from core.settings import Settings
from core.store import Store

log = get_logger("callstate.archiver")

IDLE_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
RETENTION_EVERY_SECONDS = 600.0
DAY_US = 86_400 * 1_000_000


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
        countries: Countries = DEPLOYMENT_DEFAULT,
    ) -> None:
        super().__init__(name="callstate-archiver", daemon=True)
        self.store = store
        self.engine = engine
        self.retention_days = retention_days
        self.batch = batch
        self.clock = clock
        self.countries = countries
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
            written = archive_pass(self.store, self.engine, self.batch, self.countries)
            due = self.clock() - self._last_retention >= RETENTION_EVERY_SECONDS
            if self.retention_days and due:
                self.apply_retention()
        except CursorMoved:
            return 0.0
        except (sa.exc.SQLAlchemyError, redis.RedisError) as exc:
            return self._back_off("archive paused: storage unavailable", exc)
        except Exception as exc:
            # A bug must not end the thread: the archive would stop for good,
            # silently. Say so loudly and try again later.
            log.exception("archive pass failed")
            return self._back_off("archive paused: the pass failed", exc)
        if self._backoff:
            log.info("archive resumed")
        self._backoff = 0.0
        return 0.0 if written >= self.batch else IDLE_SECONDS

    def _back_off(self, message: str, exc: Exception) -> float:
        self._backoff = min(MAX_BACKOFF_SECONDS, max(0.5, self._backoff * 2))
        error = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        log.warning(message, error=error, retry_in=self._backoff)
        return self._backoff

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
        countries=tenant_countries(store, settings),
    )
    archiver.start()
    return archiver
