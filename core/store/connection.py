"""Clients of the two Redis deployments a process talks to: call state, and RQ's
queues. A budgeted pool per process, TLS defaults for Heroku, and cluster detection."""

from __future__ import annotations

import queue
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, urlparse

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from core.settings import ConfigError, Settings

Redis = redis.Redis


class PoolExhausted(redis.ConnectionError):
    """Every Redis connection of this process's budget stayed busy for the whole wait.

    Redis itself may be fine: the caller should answer "busy, retry shortly"
    (the web answers 503 with Retry-After), not "Redis is down".
    """


class NotReplicated(redis.RedisError):
    """Redis took a write but fewer replicas than DURABLE_REPLICAS confirmed it in time.

    The write may still be applied (and survive); the caller answers as for an
    unavailable Redis (503), and a retried delivery is deduplicated.
    """


class SignalSafeLifoQueue(queue.LifoQueue[Any]):
    """A LifoQueue whose lock the thread holding it may take again.

    RQ's SIGTERM handler writes to Redis (its warm shutdown), and a handler
    runs in the main thread between two bytecodes: when it interrupts the
    main thread inside this queue (taking or returning a connection), a plain
    lock would wait for itself for ever and the worker would hang until
    SIGKILL. redis-py's own pool locks are reentrant for the same reason.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.mutex = threading.RLock()  # type: ignore[assignment]
        self.not_empty = threading.Condition(self.mutex)
        self.not_full = threading.Condition(self.mutex)
        self.all_tasks_done = threading.Condition(self.mutex)


class BudgetedPool(redis.BlockingConnectionPool):
    """A connection pool that never holds more than ``max_connections``.

    redis-py's default pool opens a connection for every thread that asks at
    once, so a web process's thread count, not a setting, decided how many
    connections it held (an entry Redis plan allows 20 in all). Here a caller
    beyond the budget waits up to ``timeout`` seconds for a connection to come
    back, then gets PoolExhausted. Connections are opened only when needed.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queue_class", SignalSafeLifoQueue)
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            # BlockingConnectionPool raises a plain ConnectionError from inside
            # its `except queue.Empty`: the wait ran out, Redis was not asked.
            if isinstance(exc.__context__, queue.Empty):
                raise PoolExhausted(
                    f"all {self.max_connections} Redis connections of this process stayed "
                    f"busy for {self.timeout} s"
                ) from None
            raise


# How long a caller beyond the budget waits for a connection, by default: a
# request waits this long, then answers 503 with Retry-After.
POOL_WAIT_SECONDS = 2.0


def _options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Our defaults for a client of ``url``, under what the caller passed."""
    parsed = urlparse(url)
    if parsed.scheme == "rediss" and "ssl_cert_reqs" not in parse_qs(parsed.query):
        options.setdefault("ssl_cert_reqs", ssl.CERT_NONE)
        options.setdefault("ssl_check_hostname", False)
    # redis-py's default retries back off for seconds; a request that cannot
    # reach Redis should fail fast (intake answers 503 and the PBX retries),
    # and RQ's and our own loops already wait and try again.
    options.setdefault("retry", Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=2))
    options.setdefault("health_check_interval", 15)
    options.setdefault("socket_connect_timeout", 5)
    options.setdefault("socket_timeout", 10)
    options.setdefault("retry_on_timeout", True)
    return options


def is_cluster(url: str, **options: Any) -> bool:
    """Whether ``url`` names a node of a Redis Cluster (``INFO cluster``).

    Raises redis.RedisError if the node cannot be asked.
    """
    probe = redis.Redis.from_url(url, **_options(url, dict(options)))
    try:
        info = probe.info("cluster")
    except redis.ResponseError:
        return False  # INFO refused (some managed plans): not a cluster we could use
    finally:
        probe.close()
    return int(info.get("cluster_enabled", 0) or 0) == 1


def _is_cluster_if_up(url: str) -> bool:
    """is_cluster, False when ``url`` does not answer (RQ waits for its Redis)."""
    try:
        return is_cluster(url)
    except redis.RedisError:
        return False


def connect(
    url: str,
    *,
    max_connections: int | None = None,
    pool_wait: float = POOL_WAIT_SECONDS,
    cluster: bool = False,
    **options: Any,
) -> Redis:
    """Open a client for ``url`` (redis://, rediss://, unix://); with ``cluster``,
    redis-py's RedisCluster client, ``url`` naming any node.

    With ``max_connections`` the client never holds more than that many
    connections (to each node of a cluster: the limit a server enforces is its
    own; BudgetedPool; a caller waits up to ``pool_wait`` seconds for one, then
    gets PoolExhausted); without, redis-py's unbounded default. Heroku Redis
    serves TLS with a self-signed certificate, so rediss:// URLs verify
    nothing unless the URL asks (``?ssl_cert_reqs=required``).
    """
    options = _options(url, options)
    if cluster:
        if max_connections is not None:
            options.update(
                connection_pool_class=BudgetedPool,
                max_connections=max_connections,
                timeout=pool_wait,
                queue_class=SignalSafeLifoQueue,
            )
        # The cluster client's own retry covers redirects and failovers: it
        # refreshes the slot map between attempts (a failover takes seconds).
        options.pop("health_check_interval", None)
        nodes: Redis = cast(Redis, RedisCluster.from_url(url, **options))
        return nodes
    if max_connections is None:
        client: Redis = redis.Redis.from_url(url, **options)
        return client
    pool = BudgetedPool.from_url(url, max_connections=max_connections, timeout=pool_wait, **options)
    budgeted: Redis = redis.Redis(connection_pool=pool)
    budgeted.auto_close_connection_pool = True
    return budgeted


@dataclass(frozen=True)
class Connections:
    """The two Redis deployments a process talks to: call state, and RQ's queues
    (the same client when RQ_REDIS_URL is unset)."""

    state: Redis
    queues: Redis

    @property
    def cluster(self) -> bool:
        return isinstance(self.state, RedisCluster)


def open_redis(
    settings: Settings,
    *,
    max_connections: int | None = None,
    pool_wait: float = POOL_WAIT_SECONDS,
    wait_seconds: float = 30.0,
    on_retry: Callable[[redis.RedisError], None] | None = None,
) -> Connections:
    """Connect to REDIS_URL (a cluster if it is one) and RQ's Redis.

    Asks REDIS_URL whether it is a cluster node. Without RQ_REDIS_URL only a
    plain Redis can serve, so a Redis that does not answer is taken for one
    (as before clusters: a process starts while Redis is down, and answers
    503 until it is back). With RQ_REDIS_URL, REDIS_URL must answer: tries for
    up to ``wait_seconds`` (calling ``on_retry`` after each failure), then
    raises redis.RedisError. Raises ConfigError when REDIS_URL is a cluster
    and RQ_REDIS_URL is unset, or when RQ_REDIS_URL is a cluster.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cluster = is_cluster(settings.redis_url)
            break
        except redis.RedisError as exc:
            if settings.rq_redis_url is None:
                cluster = False
                break
            if time.monotonic() >= deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            time.sleep(1.0)
    queues_url = settings.rq_redis_url or settings.redis_url
    if cluster and settings.rq_redis_url is None:
        raise ConfigError(
            "REDIS_URL names a Redis Cluster, and RQ cannot keep its queues on a cluster "
            "(its commands span hash slots): set RQ_REDIS_URL to a plain Redis for the queues"
        )
    if settings.rq_redis_url is not None and _is_cluster_if_up(queues_url):
        raise ConfigError(
            "RQ_REDIS_URL names a Redis Cluster node; RQ needs a plain (non-cluster) Redis"
        )
    state = connect(
        settings.redis_url, max_connections=max_connections, pool_wait=pool_wait, cluster=cluster
    )
    if queues_url == settings.redis_url:
        return Connections(state, state)
    queues = connect(queues_url, max_connections=max_connections, pool_wait=pool_wait)
    return Connections(state, queues)
