"""How long an accepted event waits before its 202, master by master.

``DURABLE_REPLICAS=N`` asks that an event be on N replicas of the master that
took it (WAIT). When a master is lost for good its replica takes over with no
replica of its own, and WAIT N can never be confirmed: ``strict`` then answers
503 to every event of that master's slots until a replica is attached again;
``available`` (the default) waits for as many replicas as the master has now,
and with none left, for the master's own AOF (WAITAOF, where the server has it
and AOF is on), and reports that master as degraded until it has N again.

What a master has is read from ``INFO`` at most once a second per master (per
process); a WAIT that falls short forgets it, so the retry asks afresh.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from core.store.connection import Redis

# How long one INFO answer stands for a master: a failover is seen within it.
LOOK_SECONDS = 1.0
# The first Redis with WAITAOF.
WAITAOF_VERSION = (7, 2)


@dataclass(frozen=True)
class Replication:
    """What one master said of itself: replicas in sync, and whether WAITAOF can
    confirm its own AOF."""

    replicas: int
    waitaof: bool
    looked_at: float


@dataclass(frozen=True)
class Degraded:
    """A master holding fewer replicas than DURABLE_REPLICAS, in available mode:
    its events are acknowledged on fewer copies than asked."""

    node: str
    replicas: int
    since: float  # Unix time this process first saw it so


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def read_replication(client: Redis) -> Replication:
    """Replicas online (connected and done with their first sync) and WAITAOF's
    use, from one INFO. Raises redis.RedisError."""
    info: dict[str, Any] = client.info()
    online = sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )
    waitaof = bool(int(info.get("aof_enabled", 0) or 0)) and (
        _version(str(info.get("redis_version", "0"))) >= WAITAOF_VERSION
    )
    return Replication(online, waitaof, time.monotonic())


class Durability:
    """DURABLE_REPLICAS and DURABLE_MODE, and what each master can give now."""

    def __init__(self, replicas: int, mode: str = "available") -> None:
        if mode not in ("available", "strict"):
            raise ValueError(f"durable mode {mode!r}: available or strict")
        self.replicas = replicas
        self.mode = mode
        self._lock = threading.Lock()
        self._seen: dict[str, Replication] = {}
        self._degraded: dict[str, Degraded] = {}

    def wait_for(self, node: str, client: Redis) -> tuple[int, bool]:
        """(replicas to WAIT for, whether to WAITAOF the master's own AOF) for a
        write on ``node``."""
        if not self.replicas:
            return 0, False
        if self.mode == "strict":
            return self.replicas, False
        seen = self._look(node, client)
        if seen is None:
            return self.replicas, False  # INFO would not answer: ask WAIT for all
        wanted = min(self.replicas, seen.replicas)
        return wanted, wanted == 0 and seen.waitaof

    def forget(self, node: str) -> None:
        """A WAIT on ``node`` fell short: read its replicas again next time."""
        with self._lock:
            self._seen.pop(node, None)

    def check(self, servers: list[tuple[str, Redis]]) -> list[Degraded]:
        """Look at every master now (forgetting masters no longer among them);
        the degraded ones. Never raises: a master that does not answer is left
        as last seen (readiness says it does not answer)."""
        if not self.replicas or self.mode == "strict":
            return []
        names = {name for name, _ in servers}
        with self._lock:
            for gone in set(self._seen) - names:
                del self._seen[gone]
            for gone in set(self._degraded) - names:
                del self._degraded[gone]
        for name, client in servers:
            self.forget(name)
            self._look(name, client)
        return self.degraded()

    def degraded(self) -> list[Degraded]:
        with self._lock:
            return sorted(self._degraded.values(), key=lambda d: d.node)

    def _look(self, node: str, client: Redis) -> Replication | None:
        with self._lock:
            seen = self._seen.get(node)
        if seen is not None and time.monotonic() - seen.looked_at < LOOK_SECONDS:
            return seen
        try:
            seen = read_replication(client)
        except redis.RedisError:
            return None
        with self._lock:
            self._seen[node] = seen
            if seen.replicas >= self.replicas:
                self._degraded.pop(node, None)
            else:
                was = self._degraded.get(node)
                since = time.time() if was is None else was.since
                self._degraded[node] = Degraded(node, seen.replicas, since)
        return seen
