"""The per-token webhook rate limit: a token bucket in Redis, shared by every
web process (key: ``keys.rate_key``)."""

from __future__ import annotations

from redis.commands.core import Script

from core.store.connection import Redis
from core.store.keys import rate_key
from core.store.values import _script


class RateLimiter:
    """A token bucket per webhook token, in Redis, shared by every web process."""

    def __init__(self, client: Redis, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._take: Script = client.register_script(_script("take_rate_token"))

    def take(self, token: str) -> float:
        """Take one event's token: 0.0 when taken, else the seconds until one is back.
        Raises redis.RedisError."""
        taken, wait = self._take(keys=[rate_key(token)], args=[self.rate, self.burst])
        return 0.0 if int(taken) else float(wait)
