"""The per-token webhook rate limit: a token bucket in Redis, shared by every
web process (key: ``keys.rate_key``)."""

from __future__ import annotations

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import rate_key


class RateLimit(Part):
    """A token bucket per webhook token, in Redis, shared by every web process."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._take: Script = backend.script("take_rate_token")

    def take(self, token: str, rate: float, burst: int) -> float:
        """Take one event's token from a bucket refilled at ``rate`` a second up
        to ``burst``: 0.0 when taken, else the seconds until one is back.
        Raises redis.RedisError."""
        taken, wait = self._take(keys=[rate_key(token)], args=[rate, burst])
        return 0.0 if int(taken) else float(wait)
