"""The one place that knows Redis: key names, Lua scripts, every read and write.

Key layout. Every key of a tenant carries a hash tag, so the keys a Lua script
or MULTI touches live in one Redis Cluster slot. Per-tenant keys (subscriptions,
deliveries, ...) carry ``{t:<tenant>}`` (``tenant_tag``). The keys of calls and
of what indexes them carry ``partition_tag``: on one Redis that is the same
``{t:<tenant>}`` (so nothing was renamed when clusters came), on a Redis
Cluster ``{t:<tenant>:<p>}``, one slot per (tenant, partition), so one large
tenant spreads over every master. ``P`` below is that tag; a call's partition
is ``partition_for(call uuid)``, so all of a call's keys share one slot::

    cs:{P}:call:<uuid>:log         zset   event id -> received_at (us)
    cs:{P}:call:<uuid>:records     hash   event id -> record json
    cs:{P}:call:<uuid>             hash   v (log version), view, outcome, revision
    cs:{P}:conv:<id>:log|records          an SMS conversation, same shape
    cs:{P}:other:log|records              unknown events without a callUuid
    cs:{P}:live                    zset   live call uuid -> started_at (us)
    cs:{P}:timers                  zset   call uuid -> when to look at it next
    cs:{P}:pending:<p>             zset   accepted, not yet applied -> accepted at
    cs:{P}:pending:<p>:events      hash   pending field -> envelope
    cs:{P}:drain:<p>               string who drains partition p: job:<id> | worker:<name>
    cs:{P}:wake:<p>                list   one token: partition p got events while a worker held it
    cs:{P}:poisoned                hash   events that cannot be applied -> {envelope, error}
    cs:{P}:outcomes                stream outcome records
    cs:tenants                     set    tenants seen (a cross-tenant read iterates it)
    cs:due:<kind>                  zset   tenant -> when it next has periodic work (see the end)
    cs:call-tenants:<uuid>         set    tenants that posted that call (see the end)
    cs:rate:<digest>               hash   a webhook token's rate-limit bucket (see the end)
    cs:alive:<worker>              string a worker's heartbeat (short TTL)

On one Redis the per-partition indexes (live, timers, poisoned, outcomes) are
one key per tenant; on a cluster, eight, and the reads that span them fan out
(``Store.partitions``) and merge. RQ's own keys (``rq:*``) live on the Redis
that ``RQ_REDIS_URL`` names, never on a cluster: its multi-key commands span
slots.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import queue
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote, urlparse

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.commands.core import Script
from redis.lock import Lock
from redis.retry import Retry

from statemachine.events import micros, parse_time
from statemachine.outcome import OutcomeId
from workers.exceptions import ConcurrentUpdate
from workers.group_commit import GroupCommit
from workers.settings import ConfigError, Settings

PREFIX = "cs"
TENANTS_KEY = f"{PREFIX}:tenants"
STATS_KEY = f"{PREFIX}:stats"
# Cross-process locks: one reaper, one dispatcher at a time among all workers.
REAPER_LOCK_KEY = f"{PREFIX}:reaper-lock"
DISPATCH_LOCK_KEY = f"{PREFIX}:dispatch-lock"
SUBSCRIPTION_TENANTS_KEY = f"{PREFIX}:subscription-tenants"

Redis = redis.Redis


# -- connection -----------------------------------------------------------


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


# Answers of a node that does not hold the slot (now): nothing ran there.
_REDIRECTS = (
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
)


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


def _accepts_busy() -> PoolExhausted:
    return PoolExhausted(
        f"events waiting to be written stayed queued for {POOL_WAIT_SECONDS} s behind a busy Redis"
    )


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


# -- keys -----------------------------------------------------------------


def _part(value: str) -> str:
    """Make an outside value safe inside a key: no braces, colons or spaces."""
    return quote(value, safe="._@+=-")


def tenant_tag(tenant_id: str) -> str:
    """The tag of a tenant's own keys (subscriptions, deliveries): one slot per tenant."""
    return f"{PREFIX}:{{t:{_part(tenant_id)}}}"


def partition_tag(tenant_id: str, partition: int, spread: bool = False) -> str:
    """The tag of a partition's keys: the tenant's on one Redis; with ``spread``
    (a cluster) one of its own, so a tenant's partitions spread over the masters."""
    if not spread:
        return tenant_tag(tenant_id)
    return f"{PREFIX}:{{t:{_part(tenant_id)}:{partition}}}"


# Accepted events wait in one of PARTITIONS pending sets per tenant, by call:
# one drainer at a time per partition, several partitions in parallel.
PARTITIONS = 8


def partition_of(envelope: dict[str, Any]) -> int:
    """The partition of an event: all events of one call (or conversation) share one."""
    data = envelope.get("data") or {}
    return partition_for(data.get("call_uuid") or data.get("conversation_id") or "")


def partition_for(call_or_conversation: str) -> int:
    return zlib.crc32(call_or_conversation.encode("utf-8", "surrogatepass")) % PARTITIONS


def call_key(tenant_id: str, call_uuid: str, spread: bool = False) -> str:
    tag = partition_tag(tenant_id, partition_for(call_uuid), spread)
    return f"{tag}:call:{_part(call_uuid)}"


def conversation_key(tenant_id: str, conversation_id: str, spread: bool = False) -> str:
    tag = partition_tag(tenant_id, partition_for(conversation_id), spread)
    return f"{tag}:conv:{_part(conversation_id)}"


def other_events_key(tenant_id: str, spread: bool = False) -> str:
    """Events without a call or conversation: partition_for("") like their pending set."""
    return f"{partition_tag(tenant_id, partition_for(''), spread)}:other"


def live_key(tenant_id: str, partition: int = 0, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:live"


def timers_key(tenant_id: str, partition: int = 0, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:timers"


def pending_key(tenant_id: str, partition: int, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:pending:{partition}"


def pending_events_key(tenant_id: str, partition: int, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:pending:{partition}:events"


def doorbell_key(tenant_id: str, partition: int, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:drain:{partition}"


def wake_key(tenant_id: str, partition: int, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:wake:{partition}"


def poisoned_key(tenant_id: str, partition: int = 0, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:poisoned"


def outcomes_key(tenant_id: str, partition: int = 0, spread: bool = False) -> str:
    return f"{partition_tag(tenant_id, partition, spread)}:outcomes"


def alive_key(worker_name: str) -> str:
    return f"{PREFIX}:alive:{worker_name}"


def log_keys(base: str) -> tuple[str, str]:
    """The two keys of one log: the ordered ids and the records."""
    return f"{base}:log", f"{base}:records"


# -- values ---------------------------------------------------------------


def to_micros(iso: str) -> int:
    """Microseconds since the epoch for an ISO timestamp; the log's sort key."""
    return micros(parse_time(iso))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class CallLog:
    """A call's log as read at one version, with what was last decided."""

    version: int
    records: list[dict[str, Any]]
    revision: int
    outcome: dict[str, Any] | None


@dataclass(frozen=True)
class CallCommit:
    """What one commit writes: new records and what the log now means."""

    call_uuid: str
    expected_version: int
    new_records: Sequence[dict[str, Any]]
    view: dict[str, Any]
    live_since: int | None
    timer_due: float | None
    pending_done: Sequence[str] = ()
    partition: int = 0


@dataclass(frozen=True)
class Partition:
    """One pending set with work in it: whose, which, and its oldest event's age."""

    tenant_id: str
    number: int
    oldest: float
    size: int


def _script(name: str) -> str:
    return resources.files("workers").joinpath(f"lua/{name}.lua").read_text("utf-8")


class Store:
    """Reads and writes of the engine; one per process, thread-safe like redis-py."""

    def __init__(
        self,
        client: Redis,
        *,
        retention_seconds: float = 7 * 24 * 3600.0,
        group_commit: bool = False,
        queues: Redis | None = None,
        spread: bool | None = None,
        durable_replicas: int = 0,
        durable_wait_seconds: float = 1.0,
    ) -> None:
        """``queues``: the Redis of RQ's queues (default: ``client``). ``spread``:
        per-partition hash tags (default: whether ``client`` is a cluster client).
        ``durable_replicas``: accepting an event waits until that many replicas
        have it (WAIT), at most ``durable_wait_seconds``."""
        self.redis = client
        self.cluster: RedisCluster | None = client if isinstance(client, RedisCluster) else None
        self.queues = queues if queues is not None else client
        self.spread = self.cluster is not None if spread is None else spread
        # The cluster client's node-map methods, which redis-py leaves untyped.
        self._nodes: Any = self.cluster
        # A drain session's wake listener on a cluster (wait_for_wake).
        self._wake_listener: Any = None
        self._wake_channels: set[str] = set()
        self.retention_seconds = retention_seconds
        self.durable_replicas = durable_replicas
        self.durable_wait_ms = max(1, int(durable_wait_seconds * 1000))
        # The web process's many request threads share round trips (group_commit.py).
        self._group_commit: GroupCommit[tuple[dict[str, Any], str], bool] | None = (
            GroupCommit(self.accept_many, queue_wait=POOL_WAIT_SECONDS, gave_up=_accepts_busy)
            if group_commit
            else None
        )
        self._commit_call: Script = client.register_script(_script("commit_call"))
        self._append_log: Script = client.register_script(_script("append_log"))
        self._publish_outcome: Script = client.register_script(_script("publish_outcome"))
        self._claim_timers: Script = client.register_script(_script("claim_timers"))
        self._accept: Script = client.register_script(_script("accept_events"))
        self._finish_drain: Script = client.register_script(_script("finish_drain"))
        self._swap_doorbell: Script = client.register_script(_script("swap_doorbell"))
        self._take_pending: Script = client.register_script(_script("take_pending"))
        self._claim_doorbells: Script = client.register_script(_script("claim_doorbells"))

    @property
    def ttl_ms(self) -> int:
        return int(self.retention_seconds * 1000)

    # -- layout -------------------------------------------------------------

    def tag(self, tenant_id: str, partition: int) -> str:
        """The hash tag of a tenant's partition in this deployment (see partition_tag)."""
        return partition_tag(tenant_id, partition, self.spread)

    @property
    def partitions(self) -> range:
        """The partitions whose per-partition indexes are distinct keys here: all
        of them on a cluster, one (they share the tenant's keys) on one Redis."""
        return range(PARTITIONS) if self.spread else range(1)

    def _servers(self) -> list[tuple[str, redis.Redis]]:
        """Each master holding call state, with its address (blank on one Redis)."""
        if self.cluster is None:
            return [("", self.redis)]
        return [(node.name, node.redis_connection) for node in self._nodes.get_primaries()]

    def _eval_many(
        self,
        calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]],
        *,
        wait_replicas: int = 0,
        also: Sequence[tuple[Any, ...]] = (),
    ) -> list[Any]:
        """Run Lua scripts, one round trip per Redis node; per call its answer,
        or its error (returned, not raised).

        redis-py's cluster pipeline refuses scripts, so on a cluster the calls
        are grouped by the node that holds their first key's slot, each group
        a plain pipeline to that node. A call a node redirects (MOVED, ASK:
        slots migrating or a failover; nothing ran) is run again alone through
        the cluster client, which follows redirects. With ``wait_replicas``,
        each group ends with WAIT on the same connection: a group that fewer
        replicas acknowledged in time gets NotReplicated for every call.
        ``also``: plain commands (name, key, ...) to send along, to the node of
        their key, idempotent ones only: on a cluster one that failed (a slot
        moving, a node gone) is sent again through the cluster client, which
        follows redirects; if that fails too it is dropped (best effort).
        """
        groups: dict[str, tuple[redis.Redis, list[int]]] = {}
        extra: dict[str, list[tuple[Any, ...]]] = {}
        if self.cluster is None:
            groups[""] = (self.redis, list(range(len(calls))))
            extra[""] = list(also)
        else:
            for index, (_, keys, _) in enumerate(calls):
                node = self._nodes.get_node_from_key(keys[0])
                groups.setdefault(node.name, (node.redis_connection, []))[1].append(index)
            for command in also:
                node = self._nodes.get_node_from_key(command[1])
                groups.setdefault(node.name, (node.redis_connection, []))
                extra.setdefault(node.name, []).append(command)
        answers: list[Any] = [None] * len(calls)
        redirected: list[int] = []
        failed_also: list[tuple[Any, ...]] = []
        for name, (client, indexes) in groups.items():
            sent_along = extra.get(name, ())
            along: list[Any] = []
            try:
                got = self._eval_on(
                    client, [calls[i] for i in indexes], wait_replicas, sent_along, along
                )
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # A node gone (a failover?): learn the new slot map for next time.
                if not isinstance(exc, PoolExhausted):
                    self._refresh_slots()
                got = [exc] * len(indexes)
                along = [exc] * len(sent_along)
            for index, answer in zip(indexes, got, strict=True):
                answers[index] = answer
                if isinstance(answer, _REDIRECTS) and self.cluster is not None:
                    redirected.append(index)
            failed_also += [
                command
                for command, answer in zip(sent_along, along, strict=True)
                if isinstance(answer, BaseException)
            ]
        if redirected:
            self._refresh_slots()
            for index in redirected:
                answers[index] = self._eval_alone(calls[index], wait_replicas)
        if failed_also and self.cluster is not None:
            for command in failed_also:
                with contextlib.suppress(redis.RedisError):
                    self.redis.execute_command(*command)  # type: ignore[no-untyped-call]
        return answers

    def _eval_alone(
        self, call: tuple[Script, Sequence[str], Sequence[Any]], wait_replicas: int
    ) -> Any:
        """A redirected call, again, after the slot map was refreshed: on the node
        that holds its slot now, else through the cluster client (it follows
        ASK while a slot migrates; WAIT cannot follow it there)."""
        assert self.cluster is not None
        script, keys, args = call
        try:
            node = self._nodes.get_node_from_key(keys[0])
            answer = self._eval_on(node.redis_connection, [call], wait_replicas)[0]
            if not isinstance(answer, _REDIRECTS):
                return answer
            if wait_replicas:
                return NotReplicated(f"slot of {keys[0]} is migrating: cannot WAIT for it")
            return script(keys=list(keys), args=list(args))
        except redis.RedisError as exc:
            return exc

    def _eval_on(
        self,
        client: redis.Redis,
        calls: Sequence[tuple[Script, Sequence[str], Sequence[Any]]],
        wait_replicas: int,
        also: Sequence[tuple[Any, ...]] = (),
        also_answers: list[Any] | None = None,
    ) -> list[Any]:
        """One pipeline of scripts (EVALSHA, loading any the server lacks) on one
        node; the answers of ``also`` go into ``also_answers`` if given."""
        for _ in range(2):
            with client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    pipe.evalsha(script.sha, len(keys), *keys, *args)
                for command in also:
                    pipe.execute_command(*command)  # type: ignore[no-untyped-call]
                if wait_replicas:
                    pipe.execute_command(  # type: ignore[no-untyped-call]
                        "WAIT", wait_replicas, self.durable_wait_ms
                    )
                got = pipe.execute(raise_on_error=False)
            missing = {
                calls[i][0].sha: calls[i][0]
                for i, a in enumerate(got[: len(calls)])
                if isinstance(a, redis.exceptions.NoScriptError)
            }
            if not missing:
                break
            for script in missing.values():
                client.script_load(script.script)
        answers = got[: len(calls)]
        if also_answers is not None:
            also_answers += got[len(calls) : len(calls) + len(also)]
        if wait_replicas:
            return [self._confirm_wait(got[-1], a, wait_replicas) for a in answers]
        return list(answers)

    def _confirm_wait(self, acked: Any, answer: Any, replicas: int) -> Any:
        if isinstance(answer, BaseException):
            return answer
        if isinstance(acked, BaseException):
            return acked
        if int(acked) < replicas:
            return NotReplicated(
                f"the write reached {int(acked)} of {replicas} replica(s) "
                f"within {self.durable_wait_ms} ms"
            )
        return answer

    def _refresh_slots(self) -> None:
        if self.cluster is not None:
            with contextlib.suppress(redis.RedisError):
                self.cluster.nodes_manager.initialize()

    @staticmethod
    def _raise_first(answers: Sequence[Any]) -> list[Any]:
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return list(answers)

    # -- health -------------------------------------------------------------

    def ping(self) -> bool:
        """True if Redis answers (on a cluster: every master). Never raises."""
        try:
            return all(bool(client.ping()) for _, client in self._servers())
        except redis.RedisError:
            return False

    def cluster_problems(self) -> tuple[list[str], list[str]]:
        """On a cluster: (what makes us unready, warnings), node by node: a node that
        does not answer, a cluster_state not ok (unready); a replica down (warning).
        Empty on one Redis. Never raises."""
        if self.cluster is None:
            return [], []
        errors: list[str] = []
        warnings: list[str] = []
        for node in self._nodes.get_nodes():
            primary = node.server_type == "primary"
            try:
                info = cast(dict[str, Any], node.redis_connection.cluster("info"))
                state = str(info.get("cluster_state", ""))
            except redis.RedisError as exc:
                (errors if primary else warnings).append(
                    f"cluster node {node.name} ({'master' if primary else 'replica'}) "
                    f"does not answer: {exc}"
                )
                continue
            if state != "ok":
                errors.append(f"cluster node {node.name} says cluster_state:{state}")
        return errors, warnings

    def server_warnings(self) -> list[str]:
        """Settings of the Redis server(s) that put accepted events at risk. Raises RedisError."""
        warnings: list[str] = []
        for name, client in self._servers():
            where = f"{name}: " if name else ""
            try:
                config = cast(dict[str, str], client.config_get("maxmemory-policy"))
                config.update(cast(dict[str, str], client.config_get("appendonly")))
            except redis.ResponseError:
                return ["cannot read Redis CONFIG (managed Redis): check persistence and eviction"]
            if config.get("maxmemory-policy", "noeviction") != "noeviction":
                warnings.append(
                    f"{where}maxmemory-policy is not noeviction: Redis may drop accepted events"
                )
            if config.get("appendonly") != "yes":
                warnings.append(
                    f"{where}appendonly is off: events accepted since the last save die with Redis"
                )
            if self.durable_replicas:
                replicas = int(client.info("replication").get("connected_slaves", 0))
                if replicas < self.durable_replicas:
                    warnings.append(
                        f"{where}DURABLE_REPLICAS is {self.durable_replicas} but this Redis has "
                        f"{replicas} replica(s) connected: webhooks get 503 until enough are"
                    )
        return warnings

    def connection_warnings(self, needed: int) -> list[str]:
        """Each Redis server's client limit against the connections our processes
        may hold (``needed``: one web and one worker dyno at the configured
        budget). Raises RedisError."""
        warnings: list[str] = []
        servers = self._servers()
        if self.queues is not self.redis:
            servers.append(("RQ's Redis", self.queues))
        for name, client in servers:
            where = f"{name}: " if name else ""
            try:
                clients: dict[str, Any] = client.info("clients")
                if "maxclients" not in clients:  # before Redis 7, INFO does not say
                    config = cast(dict[str, str], client.config_get("maxclients"))
                    clients["maxclients"] = int(config["maxclients"])
            except (redis.ResponseError, KeyError, ValueError):
                continue  # a stand-in or a managed Redis that will not tell
            limit, connected = int(clients["maxclients"]), int(clients["connected_clients"])
            if limit < needed:
                warnings.append(
                    f"{where}Redis accepts {limit} clients but one web and one worker dyno may "
                    f"hold {needed}: lower WEB_REDIS_CONNECTIONS / WORKER_REDIS_CONNECTIONS "
                    "or use a larger Redis plan"
                )
            if connected >= 0.9 * limit:
                warnings.append(
                    f"{where}{connected} of Redis's {limit} client connections are in use: "
                    "more dynos would be refused"
                )
        return warnings

    # -- pending events ---------------------------------------------------------

    def accept(self, envelope: dict[str, Any], ring_as: str) -> bool:
        """Keep an accepted event until it is applied; ring its partition's doorbell.

        Returns True if the doorbell was free and now says ``ring_as``: the
        caller must then enqueue the drain job it named there. Raises
        redis.RedisError if Redis did not take the event. With group commit
        on, the event travels with other threads' in one round trip.
        """
        if self._group_commit is not None:
            return self._group_commit.submit((envelope, ring_as))
        result = self.accept_many([(envelope, ring_as)])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def accept_many(
        self, items: Sequence[tuple[dict[str, Any], str]]
    ) -> list[bool | redis.RedisError]:
        """Accept several events in one round trip (per node of a cluster); per
        event, rung or its error.

        One script call per partition tag (on one Redis: per tenant). With
        ``durable_replicas``, an event is accepted only once WAIT confirmed it
        on that many replicas (else NotReplicated).
        """
        by_tag: dict[str, list[int]] = {}
        for index, (envelope, _) in enumerate(items):
            tag = self.tag(envelope["tenant_id"], partition_of(envelope))
            by_tag.setdefault(tag, []).append(index)
        calls = [
            (self._accept, *self._accept_call([items[i] for i in ix])) for ix in by_tag.values()
        ]
        # The tenants set and the cross-tenant indexes live outside every
        # tenant's slot, so not in the script: plain commands sent along.
        tenants = sorted({envelope["tenant_id"] for envelope, _ in items})
        now = time.time()
        also: list[tuple[Any, ...]] = [
            ("SADD", TENANTS_KEY, *tenants),
            ("ZADD", PENDING_DUE_KEY, "LT", *(x for t in tenants for x in (now, t))),
        ]
        for envelope, _ in items:
            data = envelope.get("data") or {}
            if data.get("call_uuid"):
                key = call_tenants_key(data["call_uuid"])
            elif data.get("conversation_id"):
                key = conversation_tenants_key(data["conversation_id"])
            else:
                continue
            also += [("SADD", key, envelope["tenant_id"]), ("PEXPIRE", key, self.ttl_ms)]
        answers = self._eval_many(calls, wait_replicas=self.durable_replicas, also=also)
        results: list[bool | redis.RedisError] = [False] * len(items)
        for indexes, answer in zip(by_tag.values(), answers, strict=True):
            for position, index in enumerate(indexes):
                results[index] = (
                    answer if isinstance(answer, redis.RedisError) else bool(answer[position])
                )
        return results

    def _accept_call(
        self, items: Sequence[tuple[dict[str, Any], str]]
    ) -> tuple[list[str], list[Any]]:
        """Keys and arguments of accept_events.lua for events under one tag."""
        keys: list[str] = []
        slots: dict[int, int] = {}
        args: list[Any] = [time.time()]
        for envelope, ring_as in items:
            tenant = envelope["tenant_id"]
            partition = partition_of(envelope)
            if partition not in slots:
                slots[partition] = len(slots)
                keys += [
                    pending_key(tenant, partition, self.spread),
                    pending_events_key(tenant, partition, self.spread),
                    doorbell_key(tenant, partition, self.spread),
                    wake_key(tenant, partition, self.spread),
                ]
            args += [slots[partition], pending_field(envelope), dumps(envelope), ring_as]
        return keys, args

    def take_pending(
        self, tenant_id: str, partition: int, limit: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """The partition's oldest pending events (they stay pending until applied)."""
        pending = pending_key(tenant_id, partition, self.spread)
        fields = [_text(f) for f in self.redis.zrange(pending, 0, limit - 1)]
        if not fields:
            return []
        payloads = self.redis.hmget(pending_events_key(tenant_id, partition, self.spread), fields)
        taken: list[tuple[str, dict[str, Any]]] = []
        orphans: list[str] = []
        for field, payload in zip(fields, payloads, strict=True):
            if payload is None:
                orphans.append(field)  # its event was applied; only the mark was left
            else:
                taken.append((field, json.loads(payload)))
        if orphans:
            self.redis.zrem(pending, *orphans)
        return taken

    def take_pending_many(
        self, partitions: Sequence[tuple[str, int]], limit: int
    ) -> dict[tuple[str, int], list[tuple[str, dict[str, Any]]]]:
        """The oldest pending events of several partitions, in one round trip (per
        node); clears their wake tokens. Partitions with nothing pending are left out."""
        calls = [
            (
                self._take_pending,
                [
                    pending_key(tenant, number, self.spread),
                    pending_events_key(tenant, number, self.spread),
                    wake_key(tenant, number, self.spread),
                ],
                [limit],
            )
            for tenant, number in partitions
        ]
        answers = self._raise_first(self._eval_many(calls))
        taken: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = {}
        for part, flat in zip(partitions, answers, strict=True):
            if flat:
                taken[part] = [
                    (_text(f), json.loads(e)) for f, e in zip(flat[::2], flat[1::2], strict=True)
                ]
        return taken

    def wait_for_wake(
        self, partitions: Sequence[tuple[str, int]], timeout: float
    ) -> list[tuple[str, int]]:
        """Block until some of the partitions have a wake token, and take them;
        return those partitions, or none when ``timeout`` passed first.

        A wake token says events arrived while a worker held the partition. On
        one Redis this is one BLPOP over every wake list. A cluster cannot block
        on keys of several slots: there the drainer listens on the lists'
        channels (intake publishes on them when it leaves a token) and takes
        the tokens of the lists it hears about, and of those it starts to
        listen to (a token may have come before).
        """
        if not partitions:
            time.sleep(timeout)
            return []
        keys = {wake_key(t, n, self.spread): (t, n) for t, n in partitions}
        if self.cluster is None:
            popped = self.redis.blpop(list(keys), timeout=max(timeout, 0.001))
            return [] if popped is None else [keys[_text(popped[0])]]
        try:
            return self._listen_for_wake(keys, timeout)
        except redis.RedisError:
            self._forget_wake_listener()
            raise

    def _listen_for_wake(
        self, keys: dict[str, tuple[str, int]], timeout: float
    ) -> list[tuple[str, int]]:
        if self._wake_listener is None:
            self._wake_listener = self._nodes.pubsub(ignore_subscribe_messages=True)
        listener = self._wake_listener
        wanted = set(keys)
        new, gone = wanted - self._wake_channels, self._wake_channels - wanted
        if gone:
            listener.unsubscribe(*gone)
        if new:
            listener.subscribe(*new)
        self._wake_channels = wanted
        heard = set(new)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            message = listener.get_message(timeout=0 if heard else max(left, 0.0))
            while message is not None:
                if message.get("type") == "message":
                    heard.add(_text(message["channel"]))
                message = listener.get_message(timeout=0)
            heard &= wanted
            if heard:
                with self.redis.pipeline(transaction=False) as pipe:
                    for key in heard:
                        pipe.lpop(key)
                    tokens = pipe.execute()
                woken = [keys[k] for k, token in zip(heard, tokens, strict=True) if token]
                heard = set()
                if woken:
                    return woken
            if deadline - time.monotonic() <= 0:
                return []

    def _forget_wake_listener(self) -> None:
        listener, self._wake_listener = self._wake_listener, None
        self._wake_channels = set()
        if listener is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                listener.close()

    def claim_doorbells(
        self, partitions: Sequence[tuple[str, int]], me: str, take_over: Sequence[str] = ()
    ) -> list[tuple[str, int]]:
        """Make ``me`` the drainer of each partition whose doorbell is free, is
        ``me`` already, or names one of ``take_over``; returns those it holds."""
        by_tag: dict[str, list[tuple[str, int]]] = {}
        for tenant, number in partitions:
            by_tag.setdefault(self.tag(tenant, number), []).append((tenant, number))
        calls = [
            (
                self._claim_doorbells,
                [doorbell_key(t, n, self.spread) for t, n in parts],
                [me, *take_over],
            )
            for parts in by_tag.values()
        ]
        answers = self._raise_first(self._eval_many(calls))
        return [
            part
            for parts, flags in zip(by_tag.values(), answers, strict=True)
            for part, flag in zip(parts, flags, strict=True)
            if flag
        ]

    def hand_over(
        self, partitions: Sequence[tuple[str, int]], me: str, successor: str | None
    ) -> list[tuple[str, int]]:
        """Let go of partitions ``me`` holds: to ``successor`` (a job named in
        their doorbells), or, with no successor, only those with nothing
        pending (checked atomically). Returns the partitions still to be
        drained by someone: handed over, or refused because events wait."""
        calls: list[tuple[Script, Sequence[str], Sequence[Any]]] = []
        for tenant, number in partitions:
            bell = doorbell_key(tenant, number, self.spread)
            if successor is None:
                keys = [pending_key(tenant, number, self.spread), bell]
                calls.append((self._finish_drain, keys, [me]))
            else:
                calls.append((self._swap_doorbell, [bell], [me, successor]))
        answers = self._raise_first(self._eval_many(calls))
        if successor is None:
            return [part for part, done in zip(partitions, answers, strict=True) if not done]
        return [part for part, swapped in zip(partitions, answers, strict=True) if swapped]

    def finish_drain(self, tenant_id: str, partition: int, holder: str) -> bool:
        """Let go of the partition if it is empty; False if there is more to drain."""
        keys = [
            pending_key(tenant_id, partition, self.spread),
            doorbell_key(tenant_id, partition, self.spread),
        ]
        return bool(self._finish_drain(keys=keys, args=[holder]))

    def claim_doorbell(self, tenant_id: str, partition: int, holder: str) -> None:
        """Say who drains the partition now (a drain job starting)."""
        self.redis.set(doorbell_key(tenant_id, partition, self.spread), holder)

    def doorbell(self, tenant_id: str, partition: int) -> str | None:
        raw = self.redis.get(doorbell_key(tenant_id, partition, self.spread))
        return _text(raw) if raw is not None else None

    def swap_doorbell(
        self, tenant_id: str, partition: int, expected: str | None, new: str | None
    ) -> bool:
        """Compare-and-set the partition's doorbell (None = absent)."""
        keys = [doorbell_key(tenant_id, partition, self.spread)]
        return bool(self._swap_doorbell(keys=keys, args=[expected or "", new or ""]))

    def busy_partitions(self, tenant_ids: Sequence[str]) -> list[Partition]:
        """Every partition with pending events, with its oldest event's acceptance time."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                for number in range(PARTITIONS):
                    pipe.zrange(pending_key(tenant, number, self.spread), 0, 0, withscores=True)
                    pipe.zcard(pending_key(tenant, number, self.spread))
            answers = pipe.execute()
        found: list[Partition] = []
        slots = [(t, n) for t in tenant_ids for n in range(PARTITIONS)]
        for (tenant, number), oldest, size in zip(slots, answers[::2], answers[1::2], strict=True):
            if oldest:
                found.append(Partition(tenant, number, float(oldest[0][1]), int(size)))
        return found

    def poison(
        self, tenant_id: str, partition: int, field: str, envelope: dict[str, Any], error: str
    ) -> None:
        """Set aside an event that cannot be applied, for an operator; it no longer blocks."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                poisoned_key(tenant_id, partition, self.spread),
                field,
                dumps({"envelope": envelope, "error": error[:2000], "at": time.time()}),
            )
            pipe.zrem(pending_key(tenant_id, partition, self.spread), field)
            pipe.hdel(pending_events_key(tenant_id, partition, self.spread), field)
            pipe.execute()

    def _poisoned_keys(self, tenant_id: str) -> list[str]:
        return [poisoned_key(tenant_id, p, self.spread) for p in self.partitions]

    def poisoned(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self._poisoned_keys(tenant_id):
                pipe.hgetall(key)
            found = pipe.execute()
        return {_text(k): json.loads(v) for each in found for k, v in each.items()}

    def unpoison(self, tenant_id: str, field: str) -> dict[str, Any] | None:
        """Take an event off the poisoned list (to accept it again); None if not there."""
        for key in self._poisoned_keys(tenant_id):
            raw = self.redis.hget(key, field)
            if raw is not None:
                self.redis.hdel(key, field)
                envelope: dict[str, Any] = json.loads(raw)["envelope"]
                return envelope
        return None

    def pending_events(self, tenant_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every pending event of a tenant, all partitions, oldest first in each."""
        found: list[tuple[str, dict[str, Any]]] = []
        for number in range(PARTITIONS):
            found += self.take_pending(tenant_id, number, 10_000)
        return found

    def tenants(self) -> list[str]:
        """Every tenant that ever sent an event."""
        return sorted(_text(t) for t in self.redis.smembers(TENANTS_KEY))

    def pending_count(self) -> int:
        """Events accepted and not yet applied, all tenants."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in self.tenants():
                for number in range(PARTITIONS):
                    pipe.zcard(pending_key(tenant, number, self.spread))
            return sum(cast(list[int], pipe.execute()))

    def add_stats(self, increments: dict[str, float]) -> None:
        """Add to the engine-wide counters that /metrics reports (all processes share them)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for name, amount in increments.items():
                pipe.hincrbyfloat(STATS_KEY, name, amount)
            pipe.execute()

    def stats(self) -> dict[str, float]:
        return {_text(k): float(v) for k, v in self.redis.hgetall(STATS_KEY).items()}

    def try_lock(self, name: str, seconds: float) -> Lock | None:
        """Take the lock ``name`` for at most ``seconds``, without waiting; None if
        another process holds it. redis-py's Lock: a random token per holder, and a
        release that deletes the key only if it still holds our token, in one script
        (a get-then-delete could delete a lock that expired and was taken meanwhile)."""
        lock = self.redis.lock(name, timeout=seconds, blocking=False)
        return lock if lock.acquire() else None

    @staticmethod
    def release_lock(lock: Lock) -> None:
        """Give back a lock from :meth:`try_lock`; nothing if it expired meanwhile."""
        with contextlib.suppress(redis.exceptions.LockError):
            lock.release()

    def heartbeat(self, worker_name: str, ttl_seconds: float) -> None:
        self.redis.set(alive_key(worker_name), "1", px=int(ttl_seconds * 1000))

    def is_alive(self, worker_name: str) -> bool:
        return bool(self.redis.exists(alive_key(worker_name)))

    def job_status(self, job_id: str) -> tuple[str | None, str | None]:
        """RQ's status of a job and the worker running it; (None, None) if gone.

        Read straight from RQ's job hash on RQ's Redis: one round trip, no deserialising.
        """
        status, worker = self.queues.hmget(f"rq:job:{job_id}", ["status", "worker_name"])
        return (
            _text(status) if status is not None else None,
            _text(worker) if worker is not None else None,
        )

    # -- calls ----------------------------------------------------------------

    def load_call(self, tenant_id: str, call_uuid: str) -> CallLog:
        """Read a call's log, version and last outcome in one atomic snapshot."""
        return self.load_calls(tenant_id, [call_uuid])[call_uuid]

    def load_calls(self, tenant_id: str, call_uuids: Sequence[str]) -> dict[str, CallLog]:
        """Read several calls at once: one round trip (per node of a cluster).

        Each call's version is read before its records, so a commit landing in
        between makes the records newer than the version, never older: the
        commit built on them is then refused (ConcurrentUpdate) and retried.
        On one Redis the whole read is one MULTI, an atomic snapshot.
        """
        with self.redis.pipeline(transaction=self.cluster is None) as pipe:
            for call_uuid in call_uuids:
                base = call_key(tenant_id, call_uuid, self.spread)
                pipe.hmget(base, ["v", "revision", "outcome", "outcome_id"])
                pipe.hvals(log_keys(base)[1])
            answers = pipe.execute()
        return {
            call_uuid: _call_log(meta, raw_records)
            for call_uuid, meta, raw_records in zip(
                call_uuids, answers[::2], answers[1::2], strict=True
            )
        }

    def commit_call(self, tenant_id: str, commit: CallCommit) -> tuple[int, bool]:
        """Append records and write the call's view, index and timer in one step.

        Returns (new version, whether the log changed). Raises ConcurrentUpdate
        if another worker committed since ``commit.expected_version`` was read.
        """
        result = self.commit_calls(tenant_id, [commit])[0]
        if result is None:
            raise ConcurrentUpdate(f"call {commit.call_uuid} moved past its read version")
        return result

    def commit_calls(
        self, tenant_id: str, commits: Sequence[CallCommit]
    ) -> list[tuple[int, bool] | None]:
        """Commit several calls in one round trip (per node); None for each that conflicted."""
        calls = [self._commit_keys_args(tenant_id, c) for c in commits]
        if len(calls) == 1:
            answers = [self._commit_call(keys=calls[0][0], args=calls[0][1])]
        else:
            answers = self._raise_first(
                self._eval_many([(self._commit_call, keys, args) for keys, args in calls])
            )
        for commit, answer in zip(commits, answers, strict=True):
            if answer[0] and self._elsewhere(commit.call_uuid, commit.partition):
                self._clear_pending(tenant_id, commit.partition, commit.pending_done)
        armed = [
            c.timer_due
            for c, a in zip(commits, answers, strict=True)
            if a[0] and c.timer_due is not None
        ]
        if armed:  # the cross-tenant timers index, outside the tenant's slot
            self.redis.zadd(TIMERS_DUE_KEY, {tenant_id: min(armed)}, lt=True)
        return [(int(a[1]), bool(a[2])) if a[0] else None for a in answers]

    def _elsewhere(self, name: str, partition: int) -> bool:
        """Whether the log of ``name`` (a call, a conversation) lives in another
        slot than pending partition ``partition`` (only on a cluster, only for
        events intake would not file so)."""
        return self.spread and partition_for(name) != partition

    def _clear_pending(self, tenant_id: str, partition: int, fields: Sequence[str]) -> None:
        """Drop applied events from a partition's pending set (after a commit that
        could not do it: another slot). Applying them again would change nothing."""
        if not fields:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(pending_key(tenant_id, partition, self.spread), *fields)
            pipe.hdel(pending_events_key(tenant_id, partition, self.spread), *fields)
            pipe.execute()

    def _commit_keys_args(self, tenant_id: str, commit: CallCommit) -> tuple[list[str], list[Any]]:
        base = call_key(tenant_id, commit.call_uuid, self.spread)
        log, records = log_keys(base)
        partition = partition_for(commit.call_uuid)
        # Pending marks in another slot are cleared after the commit (_clear_pending).
        elsewhere = self._elsewhere(commit.call_uuid, commit.partition)
        done = [] if elsewhere else list(commit.pending_done)
        args: list[Any] = [
            commit.expected_version,
            commit.call_uuid,
            dumps(commit.view),
            "" if commit.live_since is None else commit.live_since,
            "" if commit.timer_due is None else repr(commit.timer_due),
            self.ttl_ms,
            len(commit.new_records),
        ]
        for record in commit.new_records:
            args += [record["id"], to_micros(record["received_at"]), dumps(record)]
        args += [len(done), *done]
        pending = partition if elsewhere else commit.partition
        keys = [
            log,
            records,
            base,
            live_key(tenant_id, partition, self.spread),
            timers_key(tenant_id, partition, self.spread),
            pending_key(tenant_id, pending, self.spread),
            pending_events_key(tenant_id, pending, self.spread),
        ]
        return keys, args

    def publish_outcome(
        self,
        tenant_id: str,
        call_uuid: str,
        *,
        expected_version: int,
        body: dict[str, Any],
        claimed_score: float | None,
    ) -> tuple[str, int, str | None]:
        """Publish ``body`` as the call's next outcome revision if it is new.

        Returns ("published", revision, id), ("unchanged", revision, None) or
        ("stale", 0, None) when the call moved on since it was read.
        """
        partition = partition_for(call_uuid)
        keys = [
            call_key(tenant_id, call_uuid, self.spread),
            timers_key(tenant_id, partition, self.spread),
            outcomes_key(tenant_id, partition, self.spread),
        ]
        args: list[str | int] = [
            expected_version,
            call_uuid,
            dumps(body),
            "" if claimed_score is None else repr(claimed_score),
            int(self.retention_seconds * 1_000_000),
            self.ttl_ms,
        ]
        result = self._publish_outcome(keys=keys, args=args)
        if result[0] == 0:
            return "stale", 0, None
        if result[0] == 2:
            return "unchanged", int(result[1]), None
        # For the dispatcher: this tenant has an outcome to turn into deliveries.
        self.redis.zadd(OUTCOMES_DUE_KEY, {tenant_id: time.time()}, lt=True)
        return "published", int(result[1]), _text(result[2])

    def claim_timers(
        self, tenant_id: str, now: float, lease_until: float, limit: int = 200
    ) -> list[str]:
        """Claim the tenant's due timers until ``lease_until`` (at most ``limit`` per
        timers key); return the call uuids."""
        calls = [
            (self._claim_timers, [timers_key(tenant_id, p, self.spread)], [now, lease_until, limit])
            for p in self.partitions
        ]
        answers = self._raise_first(self._eval_many(calls))
        return [_text(m) for members in answers for m in members]

    def oldest_pending(self, tenant_id: str, partition: int) -> float | None:
        """When the partition's oldest unapplied event was accepted (None: none waits)."""
        pending = pending_key(tenant_id, partition, self.spread)
        oldest = self.redis.zrange(pending, 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    def _timers(self, tenant_id: str, call_uuid: str) -> str:
        return timers_key(tenant_id, partition_for(call_uuid), self.spread)

    def rearm_timer(self, tenant_id: str, call_uuid: str, due: float) -> None:
        """Look at a call again at ``due`` (only if its timer still exists)."""
        if self.redis.zadd(self._timers(tenant_id, call_uuid), {call_uuid: due}, xx=True, ch=True):
            self.redis.zadd(TIMERS_DUE_KEY, {tenant_id: due}, lt=True)

    def release_timer(self, tenant_id: str, call_uuid: str) -> None:
        """Drop a call's timer (the call is gone: expired or never existed)."""
        self.redis.zrem(self._timers(tenant_id, call_uuid), call_uuid)

    def drop_live(self, tenant_id: str, call_uuid: str) -> None:
        self.redis.zrem(live_key(tenant_id, partition_for(call_uuid), self.spread), call_uuid)

    # -- plain logs (SMS, unknown events) ---------------------------------------

    def conversation_key(self, tenant_id: str, conversation_id: str) -> str:
        return conversation_key(tenant_id, conversation_id, self.spread)

    def other_events_key(self, tenant_id: str) -> str:
        return other_events_key(tenant_id, self.spread)

    def append_log(
        self,
        base: str,
        records: Sequence[dict[str, Any]],
        tenant_id: str,
        pending_done: Iterable[str] = (),
        partition: int = 0,
        log_partition: int | None = None,
    ) -> int:
        """Append records to a plain log; returns how many were new.

        ``log_partition``: the partition whose tag ``base`` carries, when it may
        differ from the pending ``partition`` (on a cluster the pending marks
        are then cleared in a second step)."""
        log, records_key = log_keys(base)
        done = list(pending_done)
        elsewhere = log_partition is not None and self.spread and log_partition != partition
        home = log_partition if elsewhere and log_partition is not None else partition
        args: list[Any] = [self.ttl_ms, len(records)]
        for record in records:
            args += [record["id"], to_micros(record["received_at"]), dumps(record)]
        args += [0] if elsewhere else [len(done), *done]
        keys = [
            log,
            records_key,
            pending_key(tenant_id, home, self.spread),
            pending_events_key(tenant_id, home, self.spread),
        ]
        added = int(self._append_log(keys=keys, args=args))
        if elsewhere:
            self._clear_pending(tenant_id, partition, done)
        return added

    def read_log(self, base: str, limit: int = 1000) -> list[dict[str, Any]]:
        """A plain log's records, oldest first."""
        log, records_key = log_keys(base)
        ids = [_text(i) for i in self.redis.zrange(log, 0, limit - 1)]
        if not ids:
            return []
        raw = self.redis.hmget(records_key, ids)
        return [json.loads(r) for r in raw if r is not None]

    # -- reads ------------------------------------------------------------------

    def live_calls(self, tenant_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The views of every live call of the given tenants, oldest first.

        Costs one round trip (per node) for the indexes and one for the views:
        time grows with live calls, not with calls ever seen.
        """
        indexes = [(t, live_key(t, p, self.spread)) for t in tenant_ids for p in self.partitions]
        with self.redis.pipeline(transaction=False) as pipe:
            for _, key in indexes:
                pipe.zrange(key, 0, -1, withscores=True)
            found = pipe.execute()
        wanted = [
            (tenant, _text(uuid), score)
            for (tenant, _), index in zip(indexes, found, strict=True)
            for uuid, score in index
        ]
        if not wanted:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, uuid, _ in wanted:
                pipe.hget(call_key(tenant, uuid, self.spread), "view")
            views = pipe.execute()
        calls = [
            (score, json.loads(view))
            for (_, _, score), view in zip(wanted, views, strict=True)
            if view is not None
        ]
        calls.sort(key=lambda item: (item[0], item[1]["call_uuid"]))
        return [view for _, view in calls]

    def call_tenants(self, call_uuid: str) -> list[str]:
        """The tenants that posted events of ``call_uuid`` within retention (almost
        always one): an every-tenant reader's way to a call without asking each."""
        return sorted(_text(t) for t in self.redis.smembers(call_tenants_key(call_uuid)))

    def start_call_index(self, now: float) -> None:
        """Note, once, when the call and conversation indexes cover every call kept:
        at once on a fresh install, one retention period from now where tenants
        already have data (calls accepted before the indexes existed)."""
        if self.redis.exists(CALL_INDEX_COMPLETE_KEY):
            return
        complete = now + self.retention_seconds if self.redis.scard(TENANTS_KEY) else now
        self.redis.set(CALL_INDEX_COMPLETE_KEY, repr(complete), nx=True)

    def call_index_complete(self, now: float) -> bool:
        """Whether every call and conversation kept is in the indexes (else a
        reader must also ask each tenant)."""
        raw = self.redis.get(CALL_INDEX_COMPLETE_KEY)
        return raw is not None and now >= float(raw)

    def conversation_tenants(self, conversation_id: str) -> list[str]:
        """The tenants that posted messages of ``conversation_id`` within retention."""
        key = conversation_tenants_key(conversation_id)
        return sorted(_text(t) for t in self.redis.smembers(key))

    def get_call(self, tenant_id: str, call_uuid: str) -> dict[str, Any] | None:
        """The call's view with its outcome and events, or None if unknown."""
        log = self.load_call(tenant_id, call_uuid)
        if not log.records:
            return None
        view = self.redis.hget(call_key(tenant_id, call_uuid, self.spread), "view")
        return {
            **(json.loads(view) if view else {}),
            "outcome": log.outcome,
            "events": [
                {
                    "event_type": r["event_type"],
                    "received_at": r["received_at"],
                    "fields": r["fields"],
                }
                for r in log.records
            ],
        }

    def server_time_us(self) -> int:
        """Redis's clock in microseconds: on a cluster, the earliest of every master's.

        Outcome ids are the clock of the master that wrote them, so every
        record written after this read has a larger id, whichever master.
        """
        times = []
        for _, client in self._servers():
            seconds, micros = client.time()
            times.append(int(seconds) * 1_000_000 + int(micros))
        return min(times)

    def _outcome_streams(self, tenant_ids: Sequence[str]) -> list[str]:
        return [outcomes_key(t, p, self.spread) for t in tenant_ids for p in self.partitions]

    def read_outcomes(
        self,
        tenant_ids: Sequence[str],
        *,
        after: str | None,
        limit: int,
        outcome: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Outcome records after ``after``, oldest first, across tenants (and
        partitions: a cluster keeps one stream per tenant and partition).

        Returns (records, cursor) where cursor is the id to resume after (the
        last id looked at, even if filtered out), or ``after`` if nothing new.

        Ids are server microseconds. A record is returned only if its id is at
        most the server time read *before* the streams (on a cluster the
        earliest master's): anything written later gets a larger id, so
        resuming from the last id returned can never skip a record. Records of
        two streams may share an id; a page never ends between them (it may
        then hold a few more than ``limit``).
        """
        horizon = self.server_time_us()
        start = f"({after}" if after else "-"
        found: list[tuple[OutcomeId, str, dict[str, Any]]] = []
        batch = max(limit, 100)
        streams = self._outcome_streams(tenant_ids)
        cursors = dict.fromkeys(streams, start)
        exhausted: set[str] = set()
        while True:
            with self.redis.pipeline(transaction=False) as pipe:
                active = [k for k in streams if k not in exhausted]
                for stream in active:
                    pipe.xrange(stream, min=cursors[stream], max="+", count=batch)
                results = pipe.execute() if active else []
            for stream, entries in zip(active, results, strict=True):
                if len(entries) < batch:
                    exhausted.add(stream)
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    cursors[stream] = f"({entry_id}"
                    key = OutcomeId.parse(entry_id)
                    if key.micros > horizon:
                        exhausted.add(stream)
                        break
                    record = json.loads(
                        fields[b"record"] if b"record" in fields else fields["record"]
                    )
                    found.append((key, entry_id, record))
            found.sort(key=lambda item: item[0])
            matching = [item for item in found if outcome is None or item[2]["outcome"] == outcome]
            if len(matching) >= limit or len(exhausted) == len(streams):
                break
        # Take the first `limit` matches; the cursor is the last record looked
        # at up to there, so filtered-out records are not read twice.
        out: list[dict[str, Any]] = []
        cursor = after
        for _, entry_id, record in found:
            if len(out) >= limit and entry_id != cursor:
                break
            cursor = entry_id
            if outcome is None or record["outcome"] == outcome:
                out.append({"id": entry_id, **record})
        return out, cursor

    def read_outcome_window(
        self,
        tenant_ids: Sequence[str],
        start_us: int,
        end_us: int,
        *,
        max_records: int = 100_000,
    ) -> tuple[list[dict[str, Any]], int]:
        """Outcome records decided from ``start_us`` to ``end_us`` (server
        microseconds, both included), oldest first, across tenants.

        Ids are ``<us>-<seq>``, so a time window is an id range. ``end_us`` is
        capped at the server time read before the streams, as in
        ``read_outcomes``: returns (records, the capped end), and every record
        decided later has a larger id than the capped end. Raises
        OverflowError if the window holds more than ``max_records`` records.
        """
        end = min(end_us, self.server_time_us())
        if end < start_us:
            return [], end
        batch = 1000
        found: list[tuple[OutcomeId, dict[str, Any]]] = []
        active = self._outcome_streams(tenant_ids)
        cursors = dict.fromkeys(active, str(start_us))
        while active:
            with self.redis.pipeline(transaction=False) as pipe:
                for stream in active:
                    pipe.xrange(stream, min=cursors[stream], max=str(end), count=batch)
                results = pipe.execute()
            more: list[str] = []
            for stream, entries in zip(active, results, strict=True):
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    record = json.loads(
                        fields[b"record"] if b"record" in fields else fields["record"]
                    )
                    found.append((OutcomeId.parse(entry_id), {"id": entry_id, **record}))
                    cursors[stream] = f"({entry_id}"
                if len(entries) == batch:
                    more.append(stream)
            if len(found) > max_records:
                raise OverflowError(f"more than {max_records} outcome records in the window")
            active = more
        found.sort(key=lambda item: item[0])
        return [record for _, record in found], end

    def messages(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        return self.read_log(self.conversation_key(tenant_id, conversation_id))

    def scan_calls(self, tenant_id: str) -> Iterator[str]:
        """Every call uuid of a tenant still in Redis (for rebuilds; one SCAN of
        every master, whichever partition: ``?`` is the partition's digit, and
        a tenant's part never holds a glob character, _part quotes them)."""
        tag = f"{PREFIX}:{{t:{_part(tenant_id)}:?}}" if self.spread else tenant_tag(tenant_id)
        for key in self.redis.scan_iter(match=f"{tag}:call:*:log", count=500):
            name = _text(key)
            yield _unpart(name.split("}:call:", 1)[1][: -len(":log")])

    def replace_view(self, tenant_id: str, call_uuid: str, view: dict[str, Any]) -> None:
        """Overwrite a stored view (rebuild found it differs from the log's fold)."""
        self.redis.hset(call_key(tenant_id, call_uuid, self.spread), "view", dumps(view))


def _unpart(value: str) -> str:
    return unquote(value)


def pending_field(envelope: dict[str, Any]) -> str:
    """Name an accepted delivery: the event id plus when this copy arrived."""
    return f"{envelope['id']}@{to_micros(envelope['received_at'])}"


# -- subscriptions and deliveries -----------------------------------------------
#
#   cs:{t:T}:subs                hash   subscription id -> json (T = "*" for all-tenant ones)
#   cs:{t:T}:breakers            hash   subscription id -> its circuit breaker (json)
#   cs:{t:T}:dispatch-cursor     string last outcome id turned into deliveries
#   cs:{t:T}:delivery:<id>       string delivery json (expires with RETENTION_SECONDS)
#   cs:{t:T}:deliveries:<sub>    zset   delivery id -> created at (listing order)
#   cs:{t:T}:delivery-queue:<sub> zset  delivery id -> when to (re)try, or its lease end
#   cs:{t:T}:delivery-due        zset   subscription id -> earliest score of its queue
#                                       (never later than it: the claimer's way in)
#   cs:{t:T}:delivery-timers     zset   "<sub>/<delivery>" -> when (before per-subscription
#                                       queues; moved into them by migrate_delivery_timers)
#
# One queue per (tenant, subscription) lets the delivery process take a
# subscription's due attempts, or skip them all while its breaker is open,
# without walking past another receiver's backlog.


def subs_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:subs"


def breakers_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:breakers"


def dispatch_cursor_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:dispatch-cursor"


def delivery_key(tenant_id: str, delivery_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:delivery:{_part(delivery_id)}"


def deliveries_index_key(tenant_id: str, subscription_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:deliveries:{_part(subscription_id)}"


def delivery_queue_key(tenant_id: str, subscription_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:delivery-queue:{_part(subscription_id)}"


def delivery_due_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:delivery-due"


def delivery_timers_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:delivery-timers"


@functools.cache
def _claim_deliveries_source() -> str:
    return _script("claim_deliveries")


@dataclass(frozen=True)
class SubscriptionState:
    """What the delivery process reads about a subscription before claiming for it."""

    subscription: dict[str, Any] | None  # None: deleted
    breaker: str | None  # its breaker's json, None while it never failed
    stored_under: str  # the tenant (or "*") it is stored under


class SubscriptionStore:
    """Subscriptions, their deliveries, queues and breakers, over the same Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis = store.redis
        self._claim: Script = self.redis.register_script(_claim_deliveries_source())

    # -- subscriptions --------------------------------------------------------

    def save_subscription(self, subscription: dict[str, Any]) -> None:
        """Store a subscription, remembering its tenant: an admin must find it even
        for a tenant that has not sent an event yet. Two slots on a cluster, so no
        MULTI: the tenant is remembered first (a tenant without one is harmless)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(SUBSCRIPTION_TENANTS_KEY, subscription["tenant_id"])
            pipe.hset(subs_key(subscription["tenant_id"]), subscription["id"], dumps(subscription))
            pipe.execute()

    def subscription_tenants(self) -> list[str]:
        """Tenants (``*`` included) that have or had a subscription."""
        return sorted(_text(t) for t in self.redis.smembers(SUBSCRIPTION_TENANTS_KEY))

    def subscriptions(self, tenant_id: str) -> list[dict[str, Any]]:
        """Subscriptions stored under ``tenant_id`` (``*`` for all-tenant ones), oldest first."""
        raw = self.redis.hvals(subs_key(tenant_id))
        return sorted((json.loads(r) for r in raw), key=lambda s: (s["created_at"], s["id"]))

    def subscription(self, tenant_id: str, subscription_id: str) -> dict[str, Any] | None:
        raw = self.redis.hget(subs_key(tenant_id), subscription_id)
        return json.loads(raw) if raw is not None else None

    def delete_subscription(self, tenant_id: str, subscription_id: str) -> bool:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(subs_key(tenant_id), subscription_id)
            pipe.hdel(breakers_key(tenant_id), subscription_id)
            deleted, _ = pipe.execute()
        return bool(deleted)

    # -- breakers ---------------------------------------------------------------

    def breakers(self, tenant_id: str, subscription_ids: Sequence[str]) -> list[str | None]:
        """The breaker json of each subscription stored under ``tenant_id`` (None: none yet)."""
        if not subscription_ids:
            return []
        raw = self.redis.hmget(breakers_key(tenant_id), list(subscription_ids))
        return [_text(r) if r is not None else None for r in raw]

    def clear_breaker(self, tenant_id: str, subscription_id: str) -> str | None:
        """Forget a breaker (a success: closed and clean); returns the json it had."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(breakers_key(tenant_id), subscription_id)
            pipe.hdel(breakers_key(tenant_id), subscription_id)
            before, _ = pipe.execute()
        return _text(before) if before is not None else None

    def update_breaker(
        self, tenant_id: str, subscription_id: str, change: Callable[[str | None], str | None]
    ) -> tuple[str | None, str | None]:
        """Apply ``change`` to a breaker's json atomically (optimistic, retried on a race).

        ``change`` gets the stored json (None if none) and returns the new json,
        or None to leave it. Returns (before, after).
        """
        key = breakers_key(tenant_id)
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.hget(key, subscription_id)
                    before = _text(raw) if raw is not None else None
                    after = change(before)
                    if after is None or after == before:
                        pipe.unwatch()
                        return before, before
                    pipe.multi()
                    pipe.hset(key, subscription_id, after)
                    pipe.execute()
                    return before, after
                except redis.WatchError:
                    continue

    # -- dispatch ---------------------------------------------------------------

    def dispatch_cursor(self, tenant_id: str) -> str | None:
        raw = self.redis.get(dispatch_cursor_key(tenant_id))
        return _text(raw) if raw is not None else None

    def add_deliveries(
        self, tenant_id: str, deliveries: Sequence[dict[str, Any]], cursor: str, now: float
    ) -> None:
        """Create deliveries (once each, by id), queue them, move the cursor: one MULTI.

        A dispatcher that dies before EXEC leaves the cursor where it was; the
        next one creates the same delivery ids, which SET NX ignores.
        """
        ttl = int(self.store.retention_seconds * 1000)
        with self.redis.pipeline(transaction=True) as pipe:
            for delivery in deliveries:
                pipe.set(delivery_key(tenant_id, delivery["id"]), dumps(delivery), nx=True, px=ttl)
                index = deliveries_index_key(tenant_id, delivery["subscription_id"])
                pipe.zadd(index, {delivery["id"]: now}, nx=True)
                pipe.zremrangebyscore(index, "-inf", now - self.store.retention_seconds)
                pipe.pexpire(index, ttl)
                self._queue(pipe, tenant_id, delivery["subscription_id"], delivery["id"], now, True)
            pipe.set(dispatch_cursor_key(tenant_id), cursor)
            pipe.execute()
        if deliveries:
            self.mark_due(tenant_id, now)

    # -- deliveries -----------------------------------------------------------

    def delivery(self, tenant_id: str, delivery_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(delivery_key(tenant_id, delivery_id))
        return json.loads(raw) if raw is not None else None

    def save_delivery(self, tenant_id: str, delivery: dict[str, Any]) -> None:
        ttl = int(self.store.retention_seconds * 1000)
        self.redis.set(delivery_key(tenant_id, delivery["id"]), dumps(delivery), px=ttl)

    def deliveries(
        self, tenant_id: str, subscription_id: str, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A subscription's deliveries in this tenant, newest first."""
        ids = [
            _text(i)
            for i in self.redis.zrevrange(
                deliveries_index_key(tenant_id, subscription_id), 0, limit - 1
            )
        ]
        if not ids:
            return []
        raw = self.redis.mget([delivery_key(tenant_id, i) for i in ids])
        return [json.loads(r) for r in raw if r is not None]

    @staticmethod
    def _queue(
        pipe: Any, tenant_id: str, subscription_id: str, delivery_id: str, due: float, new: bool
    ) -> None:
        queue = delivery_queue_key(tenant_id, subscription_id)
        if new:
            pipe.zadd(queue, {delivery_id: due}, nx=True)
        else:
            pipe.zadd(queue, {delivery_id: due})
        # LT: the index entry only ever moves earlier here; the claimer moves it later.
        pipe.zadd(delivery_due_key(tenant_id), {subscription_id: due}, lt=True)

    def schedule_delivery(
        self, tenant_id: str, subscription_id: str, delivery_id: str, due: float
    ) -> None:
        """(Re)arm a delivery's next attempt at ``due``."""
        with self.redis.pipeline(transaction=True) as pipe:
            self._queue(pipe, tenant_id, subscription_id, delivery_id, due, False)
            pipe.execute()
        self.mark_due(tenant_id, due)

    def mark_due(self, tenant_id: str, due: float) -> None:
        """Note in the cross-tenant index that the tenant has an attempt due at
        ``due`` (after the tenant's own keys say so: never inside their MULTI,
        the index lives in another slot)."""
        self.redis.zadd(DELIVERIES_DUE_KEY, {tenant_id: due}, lt=True)

    def earliest_due(self, tenant_id: str) -> float | None:
        """When the tenant's earliest attempt is due (or its lease ends); None: none."""
        first = self.redis.zrange(delivery_due_key(tenant_id), 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def finish_delivery_timer(self, tenant_id: str, subscription_id: str, delivery_id: str) -> None:
        """Take a delivery out of its queue: no attempt is due any more."""
        self.redis.zrem(delivery_queue_key(tenant_id, subscription_id), delivery_id)

    def due_subscriptions(self, tenant_ids: Sequence[str], now: float) -> dict[str, list[str]]:
        """Per tenant, the subscriptions with an attempt due by ``now`` (one round trip)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                pipe.zrangebyscore(delivery_due_key(tenant), "-inf", now)
            answers = pipe.execute()
        return {
            tenant: [_text(s) for s in subs]
            for tenant, subs in zip(tenant_ids, answers, strict=True)
            if subs
        }

    def subscription_states(
        self, wanted: Sequence[tuple[str, str]]
    ) -> dict[str, SubscriptionState]:
        """For (tenant, subscription id) pairs, each subscription (looked up under the
        tenant, then under ``*``) and its breaker, in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, subscription_id in wanted:
                for under in (tenant, "*"):
                    pipe.hget(subs_key(under), subscription_id)
                    pipe.hget(breakers_key(under), subscription_id)
            answers = pipe.execute()
        states: dict[str, SubscriptionState] = {}
        for position, (tenant, subscription_id) in enumerate(wanted):
            own, own_breaker, star, star_breaker = answers[4 * position : 4 * position + 4]
            if own is not None:
                found, breaker, under = own, own_breaker, tenant
            elif star is not None:
                found, breaker, under = star, star_breaker, "*"
            else:
                found, breaker, under = None, None, tenant
            states[subscription_id] = SubscriptionState(
                json.loads(found) if found is not None else None,
                _text(breaker) if breaker is not None else None,
                under,
            )
        return states

    def claim_deliveries(
        self, tenant_id: str, now: float, lease_until: float, quotas: Sequence[tuple[str, int]]
    ) -> dict[str, list[str]]:
        """Claim due attempts until ``lease_until``: at most ``quota`` per subscription.

        Returns subscription id -> claimed delivery ids.
        """
        if not quotas:
            return {}
        keys = [delivery_due_key(tenant_id)]
        args: list[Any] = [now, lease_until]
        for subscription_id, quota in quotas:
            keys.append(delivery_queue_key(tenant_id, subscription_id))
            args += [subscription_id, quota]
        claimed = self._claim(keys=keys, args=args)
        return {
            subscription_id: [_text(d) for d in ids]
            for (subscription_id, _), ids in zip(quotas, claimed, strict=True)
        }

    def migrate_delivery_timers(self, tenant_ids: Sequence[str], batch: int = 1000) -> int:
        """Move timers of the single per-tenant zset (older releases) into the
        per-subscription queues, keeping their times and leases; returns how many."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                pipe.exists(delivery_timers_key(tenant))
            present = [t for t, n in zip(tenant_ids, pipe.execute(), strict=True) if n]
        moved = 0
        for tenant in present:
            old = delivery_timers_key(tenant)
            members = cast(
                list[tuple[bytes, float]], self.redis.zrange(old, 0, batch - 1, withscores=True)
            )
            with self.redis.pipeline(transaction=True) as pipe:
                for member, when in members:
                    subscription_id, _, delivery_id = _text(member).partition("/")
                    self._queue(pipe, tenant, subscription_id, delivery_id, float(when), True)
                    pipe.zrem(old, member)
                pipe.execute()
            if members:
                self.mark_due(tenant, min(float(when) for _, when in members))
            moved += len(members)
        return moved


def _call_log(meta: list[Any], raw_records: list[bytes]) -> CallLog:
    version, revision, outcome, outcome_id = meta
    records = sorted(
        (json.loads(raw) for raw in raw_records),
        key=lambda r: (to_micros(r["received_at"]), r["id"]),
    )
    decided = None
    if outcome is not None:
        decided = {"id": _text(outcome_id), **json.loads(outcome)}
    return CallLog(int(version or 0), records, int(revision or 0), decided)


# -- per-token rate limit ---------------------------------------------------------
#
#   cs:rate:<digest>              hash   a webhook token's bucket {tokens, at}
#
# One key alone (any cluster slot): named by a digest of the token, never the
# token itself (key names show in SCAN, MONITOR and slow logs).


def rate_key(token: str) -> str:
    return f"{PREFIX}:rate:{hashlib.sha256(token.encode('utf-8')).hexdigest()[:24]}"


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


# -- the supervisor's view: extension legs, callback contacts, manual resolutions -------
#
#   cs:{t:T}:sv:calls      zset   call uuid -> when its part in the view last changed
#                                 (its end, us; +inf while a leg is open): the read
#                                 window of the board and what retention prunes
#   cs:{t:T}:sv:versions   hash   call uuid -> the log version the entries below were
#                                 derived from (an older fold never overwrites a newer)
#   cs:{t:T}:sv:legs       hash   call uuid -> json list of the call's legs
#   cs:{t:T}:sv:contacts   hash   call uuid -> json contact (missed / called back / answered)
#   cs:{t:T}:sv:manual     hash   callback item id -> json {at, note}: resolved by hand
#   cs:{t:T}:sv:stamp      string a counter each write above moves: readers that poll
#                                 (the streams) recompute only when it moved
#
# Every entry is derived from one call's fold and replaced whole each time the
# call is folded again, so the board and the callbacks are order-free like the
# call itself, and `flask rebuild` writes them again from the logs. Only manual
# resolutions are facts of their own (never rebuilt, never derived). Each
# operation touches keys of one tenant only, never in a script with a call's
# own keys.


def supervisor_calls_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:calls"


def supervisor_versions_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:versions"


def legs_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:legs"


def contacts_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:contacts"


def manual_resolutions_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:manual"


def supervisor_stamp_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:sv:stamp"


def _supervisor_keys(tenant_id: str) -> list[str]:
    return [
        supervisor_calls_key(tenant_id),
        supervisor_versions_key(tenant_id),
        legs_key(tenant_id),
        contacts_key(tenant_id),
        supervisor_stamp_key(tenant_id),
    ]


@dataclass(frozen=True)
class CallPart:
    """What one call, folded at ``version``, tells the supervisor's view."""

    call_uuid: str
    version: int
    legs: Sequence[dict[str, Any]]  # Leg.as_json() of each extension's leg
    contact: dict[str, Any] | None  # Contact.as_json(), or None
    settled_us: int | None  # when the call's part stopped changing (us); None: still live


@functools.cache
def _save_parts_source() -> str:
    return _script("save_call_parts")


class SupervisorStore:
    """The supervisor's view in Redis: per-call parts, replaced whole, and manual facts."""

    PRUNE_BATCH = 100

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis = store.redis
        self._save: Script = self.redis.register_script(_save_parts_source())

    def save_parts(self, tenant_id: str, parts: Sequence[CallPart], now: float) -> None:
        """Replace the stored parts of these calls (one round trip), unless a newer
        fold of a call is stored already; prune calls settled before retention."""
        if not parts:
            return
        prune_before = int((now - self.store.retention_seconds) * 1_000_000)
        keys = _supervisor_keys(tenant_id)
        calls = [
            (
                self._save,
                keys,
                [
                    part.call_uuid,
                    part.version,
                    dumps(list(part.legs)) if part.legs else "",
                    dumps(part.contact) if part.contact is not None else "",
                    "+inf" if part.settled_us is None else part.settled_us,
                    prune_before,
                    self.PRUNE_BATCH,
                ],
            )
            for part in parts
        ]
        # Through the store's script runner: a cluster's pipeline refuses scripts.
        for answer in self.store._eval_many(calls):
            if isinstance(answer, Exception):
                raise answer

    def part(self, tenant_id: str, call_uuid: str) -> tuple[list[dict[str, Any]], Any, int]:
        """A call's stored legs, contact (None if none) and version (-1 if never stored)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(legs_key(tenant_id), call_uuid)
            pipe.hget(contacts_key(tenant_id), call_uuid)
            pipe.hget(supervisor_versions_key(tenant_id), call_uuid)
            legs, contact, version = pipe.execute()
        return (
            json.loads(legs) if legs is not None else [],
            json.loads(contact) if contact is not None else None,
            int(version) if version is not None else -1,
        )

    def legs_since(self, tenant_id: str, since_us: int) -> list[dict[str, Any]]:
        """The legs of every call live now or settled at or after ``since_us``."""
        return [leg for raw in self.raw_legs_since(tenant_id, since_us) for leg in json.loads(raw)]

    def raw_legs_since(self, tenant_id: str, since_us: int) -> list[bytes]:
        """:meth:`legs_since`, as each call's stored JSON list (for a reader that caches)."""
        uuids = cast(
            list[bytes], self.redis.zrangebyscore(supervisor_calls_key(tenant_id), since_us, "+inf")
        )
        if not uuids:
            return []
        raw = cast(list[bytes | None], self.redis.hmget(legs_key(tenant_id), uuids))
        return [legs for legs in raw if legs is not None]

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every stored callback contact of the tenant (within retention)."""
        return [json.loads(raw) for raw in self.raw_contacts(tenant_id)]

    def raw_contacts(self, tenant_id: str) -> list[bytes]:
        """:meth:`contacts`, each as its stored JSON (for a reader that caches)."""
        return cast(list[bytes], self.redis.hvals(contacts_key(tenant_id)))

    def manual_resolutions(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        """Item id -> {at, note} of every item resolved by hand."""
        raw = self.redis.hgetall(manual_resolutions_key(tenant_id))
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def resolve_by_hand(self, tenant_id: str, item_id: str, resolution: dict[str, Any]) -> bool:
        """Record a manual resolution unless the item has one; False if it had."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(manual_resolutions_key(tenant_id), item_id, dumps(resolution))
            pipe.incr(supervisor_stamp_key(tenant_id))
            written, _ = pipe.execute()
        return bool(written)

    def stamps(self, tenant_ids: Sequence[str]) -> list[int]:
        """Each tenant's change counter (one round trip): equal stamps, equal view."""
        if not tenant_ids:
            return []
        # GETs in a pipeline, not MGET: on a cluster each tenant's stamp is in its own slot.
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant_id in tenant_ids:
                pipe.get(supervisor_stamp_key(tenant_id))
            raw = pipe.execute()
        return [int(r) if r is not None else 0 for r in raw]

    def outcome_revisions(
        self, tenant_id: str, call_uuid: str, start_us: int, last_id: str, cap: int = 20_000
    ) -> list[tuple[str, dict[str, Any]]]:
        """The call's outcome records (id, record), from the tenant's outcome stream
        between ``start_us`` and ``last_id`` (its latest revision's id), reading at
        most ``cap`` entries of other calls on the way."""
        found: list[tuple[str, dict[str, Any]]] = []
        # On a cluster a call's records go to its partition's stream.
        stream = outcomes_key(tenant_id, partition_for(call_uuid), self.store.spread)
        cursor, read, batch = str(max(start_us, 0)), 0, 1000
        while read < cap:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                self.redis.xrange(stream, min=cursor, max=last_id, count=batch),
            )
            for raw_id, fields in entries:
                record = json.loads(fields[b"record"])
                if record.get("call_uuid") == call_uuid:
                    found.append((_text(raw_id), record))
            read += len(entries)
            if len(entries) < batch:
                break
            cursor = f"({_text(entries[-1][0])}"
        return found


# -- cross-tenant due indexes ----------------------------------------------------------
#
#   cs:due:timers                 zset   tenant -> no later than its earliest call timer
#   cs:due:pending                zset   tenant -> no later than its oldest unapplied event
#   cs:due:outcomes               zset   tenant -> when it published outcomes not yet dispatched
#   cs:due:deliveries             zset   tenant -> no later than its earliest delivery attempt
#   cs:call-tenants:<uuid>        set    tenants that posted events of that call (expires
#                                        with RETENTION_SECONDS after its last event)
#   cs:conversation-tenants:<id>  set    the same for an SMS conversation
#   cs:call-index-complete-at     string when those two cover every call kept (set once
#                                        by a worker: now, or one retention later on an
#                                        upgrade); before it, readers also ask each tenant
#
# Periodic work reads these instead of walking every tenant: an idle engine
# with a thousand tenants looks at none of them. Each index is one key outside
# every tenant's slot, so no script touches both: writers mark a tenant with a
# separate ZADD LT after the script that armed its work (a mark only ever
# moves earlier: idempotent); a reader takes a due tenant by pushing its mark
# a lease ahead, does the work, then (release_due.lua) sets the mark to what
# is left, unless a writer moved it meanwhile. A marker lost on the way (a
# crash between script and mark) is healed by ``DueIndexes.sweep``.

TIMERS_DUE_KEY = f"{PREFIX}:due:timers"
PENDING_DUE_KEY = f"{PREFIX}:due:pending"
OUTCOMES_DUE_KEY = f"{PREFIX}:due:outcomes"
DELIVERIES_DUE_KEY = f"{PREFIX}:due:deliveries"
# When cs:call-tenants / cs:conversation-tenants cover every call kept (unix s).
CALL_INDEX_COMPLETE_KEY = f"{PREFIX}:call-index-complete-at"
DUE_LEASE_SECONDS = 15.0


def call_tenants_key(call_uuid: str) -> str:
    return f"{PREFIX}:call-tenants:{_part(call_uuid)}"


def conversation_tenants_key(conversation_id: str) -> str:
    return f"{PREFIX}:conversation-tenants:{_part(conversation_id)}"


class DueIndexes:
    """The cross-tenant due indexes: which tenants have work, and when."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redis = store.redis
        self._release: Script = self.redis.register_script(_script("release_due"))

    def mark(self, index: str, tenant_id: str, when: float) -> None:
        """Note that ``tenant_id`` has work in ``index`` at ``when`` (or earlier)."""
        self.redis.zadd(index, {tenant_id: when}, lt=True)

    def take(
        self, index: str, until: float, now: float, limit: int = 500
    ) -> list[tuple[str, float]]:
        """Tenants due by ``until``, each taken for a lease (its mark pushed to
        ``now`` + DUE_LEASE_SECONDS, so a holder that dies hands it on); returns
        (tenant, the lease mark) pairs for :meth:`release`."""
        due = [_text(t) for t in self.redis.zrangebyscore(index, "-inf", until, 0, limit)]
        if not due:
            return []
        lease = round(now + DUE_LEASE_SECONDS, 3)
        self.redis.zadd(index, {tenant: lease for tenant in due}, xx=True)
        return [(tenant, lease) for tenant in due]

    def release(self, index: str, tenant_id: str, lease: float, next_due: float | None) -> None:
        """Set the tenant's mark to ``next_due`` (None: drop it) unless it moved since
        :meth:`take` set it to ``lease``."""
        args = [tenant_id, repr(lease), "" if next_due is None else repr(next_due)]
        self._release(keys=[index], args=args)

    def earliest_timers(self, tenant_ids: Sequence[str]) -> dict[str, float | None]:
        """Each tenant's earliest call timer (None: no timer), in one round trip."""
        keys = [
            (t, timers_key(t, p, self.store.spread))
            for t in tenant_ids
            for p in self.store.partitions
        ]
        return self._earliest(tenant_ids, keys)

    def oldest_pending(self, tenant_ids: Sequence[str]) -> dict[str, float | None]:
        """Each tenant's oldest unapplied event's acceptance time (None: none)."""
        keys = [
            (t, pending_key(t, p, self.store.spread)) for t in tenant_ids for p in range(PARTITIONS)
        ]
        return self._earliest(tenant_ids, keys)

    def _earliest(
        self, tenant_ids: Sequence[str], keys: Sequence[tuple[str, str]]
    ) -> dict[str, float | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for _, key in keys:
                pipe.zrange(key, 0, 0, withscores=True)
            answers = pipe.execute()
        earliest: dict[str, float | None] = dict.fromkeys(tenant_ids)
        for (tenant, _), first in zip(keys, answers, strict=True):
            if first:
                score = float(first[0][1])
                known = earliest[tenant]
                earliest[tenant] = score if known is None else min(known, score)
        return earliest

    def _undispatched(self, tenant_ids: Sequence[str]) -> list[str]:
        """The tenants whose newest outcome record is past their dispatch cursor."""
        partitions = list(self.store.partitions)
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                pipe.get(dispatch_cursor_key(tenant))
                for p in partitions:
                    pipe.xrevrange(outcomes_key(tenant, p, self.store.spread), count=1)
            answers = pipe.execute()
        found = []
        step = 1 + len(partitions)
        for index, tenant in enumerate(tenant_ids):
            cursor, *newest = answers[index * step : (index + 1) * step]
            ids = [_text(entries[0][0]) for entries in newest if entries]
            newest_id = max(map(OutcomeId.parse, ids)) if ids else None
            if newest_id is not None and (
                cursor is None or newest_id > OutcomeId.parse(_text(cursor))
            ):
                found.append(tenant)
        return found

    def sweep(self, batch: int = 200) -> int:
        """Mark every tenant's timers, pending events and delivery attempts afresh
        (ZADD LT: never later than they are), and for the dispatcher every tenant
        where outcomes wait to be dispatched; returns how many tenants have timers
        or pending events.
        Heals a mark lost on the way (a crash between a script and its mark);
        costs a few commands per tenant, so it runs rarely."""
        tenants = self.store.tenants()
        marked = 0
        for start in range(0, len(tenants), batch):
            chunk = tenants[start : start + batch]
            timers, pending = self.earliest_timers(chunk), self.oldest_pending(chunk)
            with self.redis.pipeline(transaction=False) as pipe:
                for tenant in chunk:
                    timer, oldest = timers[tenant], pending[tenant]
                    if timer is not None:
                        pipe.zadd(TIMERS_DUE_KEY, {tenant: timer}, lt=True)
                    if oldest is not None:
                        pipe.zadd(PENDING_DUE_KEY, {tenant: oldest}, lt=True)
                    marked += timer is not None or oldest is not None
                for tenant in chunk:
                    pipe.zrange(delivery_due_key(tenant), 0, 0, withscores=True)
                firsts = pipe.execute()[-len(chunk) :]
                for tenant, first in zip(chunk, firsts, strict=True):
                    if first:
                        pipe.zadd(DELIVERIES_DUE_KEY, {tenant: float(first[0][1])}, lt=True)
                pipe.execute()
                undispatched = self._undispatched(chunk)
                if undispatched:
                    self.redis.zadd(
                        OUTCOMES_DUE_KEY, dict.fromkeys(undispatched, time.time()), lt=True
                    )
        return marked
