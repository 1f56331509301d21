"""The per-token webhook rate limit: a token bucket in Redis, shared by every
web process (key: ``keys.rate_key``).

A round trip to Redis for every webhook would cost intake a fifth of its rate
(measured: ~200 µs of client CPU on ~700 a webhook). So a process takes a few
tokens at a time, a hundredth of a second's worth of the rate (at the default
1000 a second, 10; at 100 a second or less, one at a time), and spends them
before it asks again. The bucket never gives more than it holds, so no more
events are taken than the limit allows, across processes; a process only
spends up to that many tokens a little later than it took them.
"""

from __future__ import annotations

import threading

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import rate_key

# The most tokens a process takes ahead in one round trip.
MOST_AHEAD = 100


def tokens_ahead(rate: float) -> int:
    """How many tokens a process takes in one round trip at ``rate`` a second."""
    return max(1, min(MOST_AHEAD, int(rate / 100)))


class RateLimit(Part):
    """A token bucket per webhook token, in Redis, shared by every web process."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._take: Script = backend.script("take_rate_token")
        # Tokens this process took from a bucket and has not spent yet (by webhook
        # token: only configured tokens get this far, so it stays small).
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, token: str, rate: float, burst: int) -> float:
        """Take one event's token from a bucket refilled at ``rate`` a second up
        to ``burst``: 0.0 when taken, else the seconds until one is back.
        Raises redis.RedisError."""
        with self._lock:
            held = self._held.get(token, 0)
            if held:
                self._held[token] = held - 1
                return 0.0
        taken, wait = self._take(keys=[rate_key(token)], args=[rate, burst, tokens_ahead(rate)])
        if int(taken) == 0:
            return float(wait)
        if int(taken) > 1:
            with self._lock:
                self._held[token] = self._held.get(token, 0) + int(taken) - 1
        return 0.0
