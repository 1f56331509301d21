"""What workers share besides calls, one small part each: engine-wide
counters, cross-process locks, and the workers' heartbeats with what RQ's keys
say about a job."""

from __future__ import annotations

import contextlib
from typing import Any

import redis
from redis.lock import Lock
from rq.job import Job

from core.store.backend import Part
from core.store.keys import STATS_KEY, alive_key
from core.store.values import _text


class Stats(Part):
    """The engine-wide counters that /metrics reports (all processes share them)."""

    def add(self, increments: dict[str, float]) -> None:
        """Add to the counters, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for name, amount in increments.items():
                pipe.hincrbyfloat(STATS_KEY, name, amount)
            pipe.execute()

    def totals(self) -> dict[str, float]:
        return {_text(k): float(v) for k, v in self.redis.hgetall(STATS_KEY).items()}


class Locks(Part):
    """Cross-process locks: one holder at a time, for at most a while."""

    def try_take(self, name: str, seconds: float) -> Lock | None:
        """Take the lock ``name`` for at most ``seconds``, without waiting; None if
        another process holds it. redis-py's Lock: a random token per holder, and a
        release that deletes the key only if it still holds our token, in one script
        (a get-then-delete could delete a lock that expired and was taken meanwhile)."""
        lock = self.redis.lock(name, timeout=seconds, blocking=False)
        return lock if lock.acquire() else None

    @staticmethod
    def release(lock: Lock) -> None:
        """Give back a lock from :meth:`try_take`; nothing if it expired meanwhile."""
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()


class Workers(Part):
    """Whether a worker is alive, and what RQ's keys say of a job."""

    def heartbeat(self, worker_name: str, ttl_seconds: float) -> None:
        self.redis.set(alive_key(worker_name), "1", px=int(ttl_seconds * 1000))

    def is_alive(self, worker_name: str) -> bool:
        return bool(self.redis.exists(alive_key(worker_name)))

    def job_status(self, job_id: str) -> tuple[str | None, str | None]:
        """RQ's status of a job and the worker running it; (None, None) if gone.

        Read straight from RQ's job hash on RQ's Redis (named by RQ's ``Job.key_for``):
        one round trip, no deserialising.
        """
        queues = self.backend.queues
        status, worker = queues.hmget(Job.key_for(job_id), ["status", "worker_name"])
        return (
            _text(status) if status is not None else None,
            _text(worker) if worker is not None else None,
        )

    def job_in_rq_list(self, list_key: str, job_id: str) -> bool:
        """Whether RQ's list ``list_key`` (named by RQ's API; on RQ's Redis) holds ``job_id``."""
        position: Any = self.backend.queues.lpos(list_key, job_id)
        return position is not None
