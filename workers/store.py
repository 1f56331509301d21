"""The one place that knows Redis: key names, Lua scripts, every read and write.

Key layout. Every key of a tenant carries the hash tag ``{t:<tenant>}``, so a
tenant's keys live in one Redis Cluster slot (or can be moved whole to another
Redis) and every Lua script touches one slot only::

    cs:{t:T}:call:<uuid>:log       zset   event id -> received_at (us)
    cs:{t:T}:call:<uuid>:records   hash   event id -> record json
    cs:{t:T}:call:<uuid>           hash   v (log version), view, outcome, revision
    cs:{t:T}:conv:<id>:log|records        an SMS conversation, same shape
    cs:{t:T}:other:log|records            unknown events without a callUuid
    cs:{t:T}:live                  zset   live call uuid -> started_at (us)
    cs:{t:T}:timers                zset   call uuid -> when to look at it next
    cs:{t:T}:pending:<p>           zset   accepted, not yet applied -> accepted at
    cs:{t:T}:pending:<p>:events    hash   pending field -> envelope
    cs:{t:T}:drain:<p>             string who drains partition p: job:<id> | worker:<name>
    cs:{t:T}:wake:<p>              list   one token: partition p got events while a worker held it
    cs:{t:T}:poisoned              hash   events that cannot be applied -> {envelope, error}
    cs:{t:T}:outcomes              stream outcome records
    cs:tenants                     set    tenants seen (a cross-tenant read iterates it)
    cs:alive:<worker>              string a worker's heartbeat (short TTL)
"""

from __future__ import annotations

import functools
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
from redis.commands.core import Script
from redis.retry import Retry

from statemachine.events import micros, parse_time
from workers.exceptions import ConcurrentUpdate
from workers.group_commit import GroupCommit

PREFIX = "cs"
TENANTS_KEY = f"{PREFIX}:tenants"
STATS_KEY = f"{PREFIX}:stats"
SUBSCRIPTION_TENANTS_KEY = f"{PREFIX}:subscription-tenants"

Redis = redis.Redis


# -- connection -----------------------------------------------------------


class PoolExhausted(redis.ConnectionError):
    """Every Redis connection of this process's budget stayed busy for the whole wait.

    Redis itself may be fine: the caller should answer "busy, retry shortly"
    (the web answers 503 with Retry-After), not "Redis is down".
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


def _accepts_busy() -> PoolExhausted:
    return PoolExhausted(
        f"events waiting to be written stayed queued for {POOL_WAIT_SECONDS} s behind a busy Redis"
    )


def connect(
    url: str,
    *,
    max_connections: int | None = None,
    pool_wait: float = POOL_WAIT_SECONDS,
    **options: Any,
) -> Redis:
    """Open a client for ``url`` (redis://, rediss://, unix://).

    With ``max_connections`` the client never holds more than that many
    connections (BudgetedPool; a caller waits up to ``pool_wait`` seconds for
    one, then gets PoolExhausted); without, redis-py's unbounded default.
    Heroku Redis serves TLS with a self-signed certificate, so rediss:// URLs
    verify nothing unless the URL asks (``?ssl_cert_reqs=required``).
    """
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
    if max_connections is None:
        client: Redis = redis.Redis.from_url(url, **options)
        return client
    pool = BudgetedPool.from_url(url, max_connections=max_connections, timeout=pool_wait, **options)
    budgeted: Redis = redis.Redis(connection_pool=pool)
    budgeted.auto_close_connection_pool = True
    return budgeted


# -- keys -----------------------------------------------------------------


def _part(value: str) -> str:
    """Make an outside value safe inside a key: no braces, colons or spaces."""
    return quote(value, safe="._@+=-")


def tenant_tag(tenant_id: str) -> str:
    return f"{PREFIX}:{{t:{_part(tenant_id)}}}"


def call_key(tenant_id: str, call_uuid: str) -> str:
    return f"{tenant_tag(tenant_id)}:call:{_part(call_uuid)}"


def conversation_key(tenant_id: str, conversation_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:conv:{_part(conversation_id)}"


def other_events_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:other"


def live_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:live"


def timers_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:timers"


# Accepted events wait in one of PARTITIONS pending sets per tenant, by call:
# one drainer at a time per partition, several partitions in parallel.
PARTITIONS = 8


def partition_of(envelope: dict[str, Any]) -> int:
    """The partition of an event: all events of one call (or conversation) share one."""
    data = envelope.get("data") or {}
    return partition_for(data.get("call_uuid") or data.get("conversation_id") or "")


def partition_for(call_or_conversation: str) -> int:
    return zlib.crc32(call_or_conversation.encode("utf-8", "surrogatepass")) % PARTITIONS


def pending_key(tenant_id: str, partition: int) -> str:
    return f"{tenant_tag(tenant_id)}:pending:{partition}"


def pending_events_key(tenant_id: str, partition: int) -> str:
    return f"{tenant_tag(tenant_id)}:pending:{partition}:events"


def doorbell_key(tenant_id: str, partition: int) -> str:
    return f"{tenant_tag(tenant_id)}:drain:{partition}"


def wake_key(tenant_id: str, partition: int) -> str:
    return f"{tenant_tag(tenant_id)}:wake:{partition}"


def poisoned_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:poisoned"


def outcomes_key(tenant_id: str) -> str:
    return f"{tenant_tag(tenant_id)}:outcomes"


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
    ) -> None:
        self.redis = client
        self.retention_seconds = retention_seconds
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

    # -- health -------------------------------------------------------------

    def ping(self) -> bool:
        """True if Redis answers. Never raises."""
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False

    def server_warnings(self) -> list[str]:
        """Settings of the Redis server that put accepted events at risk. Raises RedisError."""
        warnings: list[str] = []
        try:
            config = cast(dict[str, str], self.redis.config_get("maxmemory-policy"))
            config.update(cast(dict[str, str], self.redis.config_get("appendonly")))
        except redis.ResponseError:
            return ["cannot read Redis CONFIG (managed Redis): check persistence and eviction"]
        if config.get("maxmemory-policy", "noeviction") != "noeviction":
            warnings.append("maxmemory-policy is not noeviction: Redis may drop accepted events")
        if config.get("appendonly") != "yes":
            warnings.append("appendonly is off: events accepted since the last save die with Redis")
        return warnings

    def connection_warnings(self, needed: int) -> list[str]:
        """Redis's client limit against the connections our processes may hold
        (``needed``: one web and one worker dyno at the configured budget). Raises RedisError."""
        try:
            clients: dict[str, Any] = self.redis.info("clients")
            if "maxclients" not in clients:  # before Redis 7, INFO does not say
                config = cast(dict[str, str], self.redis.config_get("maxclients"))
                clients["maxclients"] = int(config["maxclients"])
        except (redis.ResponseError, KeyError, ValueError):
            return []  # a stand-in or a managed Redis that will not tell
        limit, connected = int(clients["maxclients"]), int(clients["connected_clients"])
        warnings = []
        if limit < needed:
            warnings.append(
                f"Redis accepts {limit} clients but one web and one worker dyno may hold "
                f"{needed}: lower WEB_REDIS_CONNECTIONS / WORKER_REDIS_CONNECTIONS "
                "or use a larger Redis plan"
            )
        if connected >= 0.9 * limit:
            warnings.append(
                f"{connected} of Redis's {limit} client connections are in use: "
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
        """Accept several events in one round trip; per event, rung or its error.

        One script call per tenant (a tenant's keys share one slot). Raises
        redis.RedisError when the round trip itself failed (none taken).
        """
        by_tenant: dict[str, list[int]] = {}
        for index, (envelope, _) in enumerate(items):
            by_tenant.setdefault(envelope["tenant_id"], []).append(index)
        calls = [self._accept_call(t, [items[i] for i in ix]) for t, ix in by_tenant.items()]
        for _ in range(2):
            with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(self._accept.sha, len(keys), *keys, *args)
                # The tenants set lives outside the tenant's slot, so not in the script.
                pipe.sadd(TENANTS_KEY, *by_tenant)
                answers = pipe.execute(raise_on_error=False)[: len(calls)]
            if not any(isinstance(a, redis.exceptions.NoScriptError) for a in answers):
                break
            self.redis.script_load(self._accept.script)
        else:
            raise redis.exceptions.NoScriptError("accept_events script could not be loaded")
        results: list[bool | redis.RedisError] = [False] * len(items)
        for indexes, answer in zip(by_tenant.values(), answers, strict=True):
            for position, index in enumerate(indexes):
                results[index] = (
                    answer if isinstance(answer, redis.RedisError) else bool(answer[position])
                )
        return results

    @staticmethod
    def _accept_call(
        tenant: str, items: Sequence[tuple[dict[str, Any], str]]
    ) -> tuple[list[str], list[Any]]:
        """Keys and arguments of accept_events.lua for one tenant's events."""
        keys: list[str] = []
        slots: dict[int, int] = {}
        args: list[Any] = [time.time()]
        for envelope, ring_as in items:
            partition = partition_of(envelope)
            if partition not in slots:
                slots[partition] = len(slots)
                keys += [
                    pending_key(tenant, partition),
                    pending_events_key(tenant, partition),
                    doorbell_key(tenant, partition),
                    wake_key(tenant, partition),
                ]
            args += [slots[partition], pending_field(envelope), dumps(envelope), ring_as]
        return keys, args

    def take_pending(
        self, tenant_id: str, partition: int, limit: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """The partition's oldest pending events (they stay pending until applied)."""
        fields = [
            _text(f) for f in self.redis.zrange(pending_key(tenant_id, partition), 0, limit - 1)
        ]
        if not fields:
            return []
        payloads = self.redis.hmget(pending_events_key(tenant_id, partition), fields)
        taken: list[tuple[str, dict[str, Any]]] = []
        orphans: list[str] = []
        for field, payload in zip(fields, payloads, strict=True):
            if payload is None:
                orphans.append(field)  # its event was applied; only the mark was left
            else:
                taken.append((field, json.loads(payload)))
        if orphans:
            self.redis.zrem(pending_key(tenant_id, partition), *orphans)
        return taken

    def take_pending_many(
        self, partitions: Sequence[tuple[str, int]], limit: int
    ) -> dict[tuple[str, int], list[tuple[str, dict[str, Any]]]]:
        """The oldest pending events of several partitions, in one round trip;
        clears their wake tokens. Partitions with nothing pending are left out."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, number in partitions:
                keys = [
                    pending_key(tenant, number),
                    pending_events_key(tenant, number),
                    wake_key(tenant, number),
                ]
                self._take_pending(keys=keys, args=[limit], client=pipe)
            answers = pipe.execute()
        taken: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = {}
        for part, flat in zip(partitions, answers, strict=True):
            if flat:
                taken[part] = [
                    (_text(f), json.loads(e)) for f, e in zip(flat[::2], flat[1::2], strict=True)
                ]
        return taken

    def wait_for_wake(
        self, partitions: Sequence[tuple[str, int]], timeout: float
    ) -> tuple[str, int] | None:
        """Block until one of the partitions has a wake token, and take it; return
        that partition, or None when ``timeout`` passed first.

        A wake token says events arrived while a worker held the partition.
        Needs every key on one Redis (not Cluster-ready: keys of several tenants).
        """
        if not partitions:
            time.sleep(timeout)
            return None
        keys = {wake_key(t, n): (t, n) for t, n in partitions}
        popped = self.redis.blpop(list(keys), timeout=max(timeout, 0.001))
        return None if popped is None else keys[_text(popped[0])]

    def claim_doorbells(
        self, partitions: Sequence[tuple[str, int]], me: str, take_over: Sequence[str] = ()
    ) -> list[tuple[str, int]]:
        """Make ``me`` the drainer of each partition whose doorbell is free, is
        ``me`` already, or names one of ``take_over``; returns those it holds."""
        by_tenant: dict[str, list[int]] = {}
        for tenant, number in partitions:
            by_tenant.setdefault(tenant, []).append(number)
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, numbers in by_tenant.items():
                keys = [doorbell_key(tenant, n) for n in numbers]
                self._claim_doorbells(keys=keys, args=[me, *take_over], client=pipe)
            answers = pipe.execute()
        return [
            (tenant, number)
            for (tenant, numbers), flags in zip(by_tenant.items(), answers, strict=True)
            for number, flag in zip(numbers, flags, strict=True)
            if flag
        ]

    def hand_over(
        self, partitions: Sequence[tuple[str, int]], me: str, successor: str | None
    ) -> list[tuple[str, int]]:
        """Let go of partitions ``me`` holds: to ``successor`` (a job named in
        their doorbells), or, with no successor, only those with nothing
        pending (checked atomically). Returns the partitions still to be
        drained by someone: handed over, or refused because events wait."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, number in partitions:
                if successor is None:
                    keys = [pending_key(tenant, number), doorbell_key(tenant, number)]
                    self._finish_drain(keys=keys, args=[me], client=pipe)
                else:
                    keys = [doorbell_key(tenant, number)]
                    self._swap_doorbell(keys=keys, args=[me, successor], client=pipe)
            answers = pipe.execute()
        if successor is None:
            return [part for part, done in zip(partitions, answers, strict=True) if not done]
        return [part for part, swapped in zip(partitions, answers, strict=True) if swapped]

    def finish_drain(self, tenant_id: str, partition: int, holder: str) -> bool:
        """Let go of the partition if it is empty; False if there is more to drain."""
        keys = [pending_key(tenant_id, partition), doorbell_key(tenant_id, partition)]
        return bool(self._finish_drain(keys=keys, args=[holder]))

    def claim_doorbell(self, tenant_id: str, partition: int, holder: str) -> None:
        """Say who drains the partition now (a drain job starting)."""
        self.redis.set(doorbell_key(tenant_id, partition), holder)

    def doorbell(self, tenant_id: str, partition: int) -> str | None:
        raw = self.redis.get(doorbell_key(tenant_id, partition))
        return _text(raw) if raw is not None else None

    def swap_doorbell(
        self, tenant_id: str, partition: int, expected: str | None, new: str | None
    ) -> bool:
        """Compare-and-set the partition's doorbell (None = absent)."""
        keys = [doorbell_key(tenant_id, partition)]
        return bool(self._swap_doorbell(keys=keys, args=[expected or "", new or ""]))

    def busy_partitions(self, tenant_ids: Sequence[str]) -> list[Partition]:
        """Every partition with pending events, with its oldest event's acceptance time."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                for number in range(PARTITIONS):
                    pipe.zrange(pending_key(tenant, number), 0, 0, withscores=True)
                    pipe.zcard(pending_key(tenant, number))
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
                poisoned_key(tenant_id),
                field,
                dumps({"envelope": envelope, "error": error[:2000], "at": time.time()}),
            )
            pipe.zrem(pending_key(tenant_id, partition), field)
            pipe.hdel(pending_events_key(tenant_id, partition), field)
            pipe.execute()

    def poisoned(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        return {
            _text(k): json.loads(v) for k, v in self.redis.hgetall(poisoned_key(tenant_id)).items()
        }

    def unpoison(self, tenant_id: str, field: str) -> dict[str, Any] | None:
        """Take an event off the poisoned list (to accept it again); None if not there."""
        raw = self.redis.hget(poisoned_key(tenant_id), field)
        if raw is None:
            return None
        self.redis.hdel(poisoned_key(tenant_id), field)
        envelope: dict[str, Any] = json.loads(raw)["envelope"]
        return envelope

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
                    pipe.zcard(pending_key(tenant, number))
            return sum(cast(list[int], pipe.execute()))

    def add_stats(self, increments: dict[str, float]) -> None:
        """Add to the engine-wide counters that /metrics reports (all processes share them)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for name, amount in increments.items():
                pipe.hincrbyfloat(STATS_KEY, name, amount)
            pipe.execute()

    def stats(self) -> dict[str, float]:
        return {_text(k): float(v) for k, v in self.redis.hgetall(STATS_KEY).items()}

    def heartbeat(self, worker_name: str, ttl_seconds: float) -> None:
        self.redis.set(alive_key(worker_name), "1", px=int(ttl_seconds * 1000))

    def is_alive(self, worker_name: str) -> bool:
        return bool(self.redis.exists(alive_key(worker_name)))

    def job_status(self, job_id: str) -> tuple[str | None, str | None]:
        """RQ's status of a job and the worker running it; (None, None) if gone.

        Read straight from RQ's job hash: one round trip, no deserialising.
        """
        status, worker = self.redis.hmget(f"rq:job:{job_id}", ["status", "worker_name"])
        return (
            _text(status) if status is not None else None,
            _text(worker) if worker is not None else None,
        )

    # -- calls ----------------------------------------------------------------

    def load_call(self, tenant_id: str, call_uuid: str) -> CallLog:
        """Read a call's log, version and last outcome in one atomic snapshot."""
        return self.load_calls(tenant_id, [call_uuid])[call_uuid]

    def load_calls(self, tenant_id: str, call_uuids: Sequence[str]) -> dict[str, CallLog]:
        """Read several calls at once: one round trip, one atomic snapshot."""
        with self.redis.pipeline(transaction=True) as pipe:
            for call_uuid in call_uuids:
                base = call_key(tenant_id, call_uuid)
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
        """Commit several calls in one round trip; None for each that conflicted."""
        calls = [self._commit_keys_args(tenant_id, c) for c in commits]
        if len(calls) == 1:
            answers = [self._commit_call(keys=calls[0][0], args=calls[0][1])]
        else:
            with self.redis.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    self._commit_call(keys=keys, args=args, client=pipe)
                answers = pipe.execute()
        return [(int(a[1]), bool(a[2])) if a[0] else None for a in answers]

    def _commit_keys_args(self, tenant_id: str, commit: CallCommit) -> tuple[list[str], list[Any]]:
        base = call_key(tenant_id, commit.call_uuid)
        log, records = log_keys(base)
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
        args += [len(commit.pending_done), *commit.pending_done]
        keys = [
            log,
            records,
            base,
            live_key(tenant_id),
            timers_key(tenant_id),
            pending_key(tenant_id, commit.partition),
            pending_events_key(tenant_id, commit.partition),
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
        keys = [call_key(tenant_id, call_uuid), timers_key(tenant_id), outcomes_key(tenant_id)]
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
        return "published", int(result[1]), _text(result[2])

    def claim_timers(
        self, tenant_id: str, now: float, lease_until: float, limit: int = 200
    ) -> list[str]:
        """Claim the tenant's due timers until ``lease_until``; return the call uuids."""
        members = self._claim_timers(keys=[timers_key(tenant_id)], args=[now, lease_until, limit])
        return [_text(m) for m in members]

    def oldest_pending(self, tenant_id: str, partition: int) -> float | None:
        """When the partition's oldest unapplied event was accepted (None: none waits)."""
        oldest = self.redis.zrange(pending_key(tenant_id, partition), 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    def rearm_timer(self, tenant_id: str, call_uuid: str, due: float) -> None:
        """Look at a call again at ``due`` (only if its timer still exists)."""
        self.redis.zadd(timers_key(tenant_id), {call_uuid: due}, xx=True)

    def release_timer(self, tenant_id: str, call_uuid: str) -> None:
        """Drop a call's timer (the call is gone: expired or never existed)."""
        self.redis.zrem(timers_key(tenant_id), call_uuid)

    def drop_live(self, tenant_id: str, call_uuid: str) -> None:
        self.redis.zrem(live_key(tenant_id), call_uuid)

    # -- plain logs (SMS, unknown events) ---------------------------------------

    def append_log(
        self,
        base: str,
        records: Sequence[dict[str, Any]],
        tenant_id: str,
        pending_done: Iterable[str] = (),
        partition: int = 0,
    ) -> int:
        """Append records to a plain log; returns how many were new."""
        log, records_key = log_keys(base)
        done = list(pending_done)
        args: list[Any] = [self.ttl_ms, len(records)]
        for record in records:
            args += [record["id"], to_micros(record["received_at"]), dumps(record)]
        args += [len(done), *done]
        keys = [
            log,
            records_key,
            pending_key(tenant_id, partition),
            pending_events_key(tenant_id, partition),
        ]
        return int(self._append_log(keys=keys, args=args))

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

        Costs one round trip for the indexes and one for the views: time grows
        with live calls, not with calls ever seen.
        """
        tenants = list(tenant_ids)
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.zrange(live_key(tenant), 0, -1, withscores=True)
            indexes = pipe.execute()
        wanted = [
            (tenant, _text(uuid), score)
            for tenant, index in zip(tenants, indexes, strict=True)
            for uuid, score in index
        ]
        if not wanted:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant, uuid, _ in wanted:
                pipe.hget(call_key(tenant, uuid), "view")
            views = pipe.execute()
        calls = [
            (score, json.loads(view))
            for (_, _, score), view in zip(wanted, views, strict=True)
            if view is not None
        ]
        calls.sort(key=lambda item: (item[0], item[1]["call_uuid"]))
        return [view for _, view in calls]

    def get_call(self, tenant_id: str, call_uuid: str) -> dict[str, Any] | None:
        """The call's view with its outcome and events, or None if unknown."""
        log = self.load_call(tenant_id, call_uuid)
        if not log.records:
            return None
        view = self.redis.hget(call_key(tenant_id, call_uuid), "view")
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
        seconds, micros = self.redis.time()
        return int(seconds) * 1_000_000 + int(micros)

    def read_outcomes(
        self,
        tenant_ids: Sequence[str],
        *,
        after: str | None,
        limit: int,
        outcome: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Outcome records after ``after``, oldest first, across tenants.

        Returns (records, cursor) where cursor is the id to resume after (the
        last id looked at, even if filtered out), or ``after`` if nothing new.

        Ids are server microseconds shared by all tenants' streams. A record is
        returned only if its id is at most the server time read *before* the
        streams: anything written later gets a larger id, so resuming from the
        last id returned can never skip a record.
        """
        horizon = self.server_time_us()
        start = f"({after}" if after else "-"
        found: list[tuple[tuple[int, int], str, dict[str, Any]]] = []
        batch = max(limit, 100)
        cursors = dict.fromkeys(tenant_ids, start)
        exhausted: set[str] = set()
        while True:
            with self.redis.pipeline(transaction=False) as pipe:
                active = [t for t in tenant_ids if t not in exhausted]
                for tenant in active:
                    pipe.xrange(outcomes_key(tenant), min=cursors[tenant], max="+", count=batch)
                results = pipe.execute() if active else []
            for tenant, entries in zip(active, results, strict=True):
                if len(entries) < batch:
                    exhausted.add(tenant)
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    cursors[tenant] = f"({entry_id}"
                    key = _id_key(entry_id)
                    if key[0] > horizon:
                        exhausted.add(tenant)
                        break
                    record = json.loads(
                        fields[b"record"] if b"record" in fields else fields["record"]
                    )
                    found.append((key, entry_id, record))
            found.sort(key=lambda item: item[0])
            matching = [item for item in found if outcome is None or item[2]["outcome"] == outcome]
            if len(matching) >= limit or len(exhausted) == len(tenant_ids):
                break
        # Take the first `limit` matches; the cursor is the last record looked
        # at up to there, so filtered-out records are not read twice.
        out: list[dict[str, Any]] = []
        cursor = after
        for _, entry_id, record in found:
            if len(out) >= limit:
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
        found: list[tuple[tuple[int, int], dict[str, Any]]] = []
        cursors = dict.fromkeys(tenant_ids, str(start_us))
        active = list(tenant_ids)
        while active:
            with self.redis.pipeline(transaction=False) as pipe:
                for tenant in active:
                    key = outcomes_key(tenant)
                    pipe.xrange(key, min=cursors[tenant], max=str(end), count=batch)
                results = pipe.execute()
            more: list[str] = []
            for tenant, entries in zip(active, results, strict=True):
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    record = json.loads(
                        fields[b"record"] if b"record" in fields else fields["record"]
                    )
                    found.append((_id_key(entry_id), {"id": entry_id, **record}))
                    cursors[tenant] = f"({entry_id}"
                if len(entries) == batch:
                    more.append(tenant)
            if len(found) > max_records:
                raise OverflowError(f"more than {max_records} outcome records in the window")
            active = more
        found.sort(key=lambda item: item[0])
        return [record for _, record in found], end

    def messages(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        return self.read_log(conversation_key(tenant_id, conversation_id))

    def scan_calls(self, tenant_id: str) -> Iterator[str]:
        """Every call uuid of a tenant still in Redis (for rebuilds)."""
        pattern = f"{tenant_tag(tenant_id)}:call:*:log"
        for key in self.redis.scan_iter(match=pattern, count=500):
            name = _text(key)
            yield _unpart(name[len(tenant_tag(tenant_id)) + len(":call:") : -len(":log")])

    def replace_view(self, tenant_id: str, call_uuid: str, view: dict[str, Any]) -> None:
        """Overwrite a stored view (rebuild found it differs from the log's fold)."""
        self.redis.hset(call_key(tenant_id, call_uuid), "view", dumps(view))


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


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
        for a tenant that has not sent an event yet."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(subs_key(subscription["tenant_id"]), subscription["id"], dumps(subscription))
            pipe.sadd(SUBSCRIPTION_TENANTS_KEY, subscription["tenant_id"])
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
        with self.redis.pipeline(transaction=False) as pipe:
            for part in parts:
                args: list[Any] = [
                    part.call_uuid,
                    part.version,
                    dumps(list(part.legs)) if part.legs else "",
                    dumps(part.contact) if part.contact is not None else "",
                    "+inf" if part.settled_us is None else part.settled_us,
                    prune_before,
                    self.PRUNE_BATCH,
                ]
                self._save(keys=keys, args=args, client=pipe)
            pipe.execute()

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
        uuids = cast(
            list[bytes], self.redis.zrangebyscore(supervisor_calls_key(tenant_id), since_us, "+inf")
        )
        if not uuids:
            return []
        raw = self.redis.hmget(legs_key(tenant_id), uuids)
        return [leg for legs in raw if legs is not None for leg in json.loads(legs)]

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every stored callback contact of the tenant (within retention)."""
        return [json.loads(raw) for raw in self.redis.hvals(contacts_key(tenant_id))]

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
        raw = self.redis.mget([supervisor_stamp_key(t) for t in tenant_ids])
        return [int(r) if r is not None else 0 for r in raw]

    def outcome_revisions(
        self, tenant_id: str, call_uuid: str, start_us: int, last_id: str, cap: int = 20_000
    ) -> list[tuple[str, dict[str, Any]]]:
        """The call's outcome records (id, record), from the tenant's outcome stream
        between ``start_us`` and ``last_id`` (its latest revision's id), reading at
        most ``cap`` entries of other calls on the way."""
        found: list[tuple[str, dict[str, Any]]] = []
        cursor, read, batch = str(max(start_us, 0)), 0, 1000
        while read < cap:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                self.redis.xrange(outcomes_key(tenant_id), min=cursor, max=last_id, count=batch),
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
