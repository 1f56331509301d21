"""The one place that knows Redis: key names, Lua scripts, every read and write.

``Store`` is one object per process, composed of one part per concept; the
key layout is ``keys.py``. RQ's own keys (``rq:*``) live on the Redis that
``RQ_REDIS_URL`` names, never on a cluster: its multi-key commands span slots.

    keys.py           every key name (and the layout, in its docstring)
    values.py         JSON and text as stored; the Lua sources (core/store/lua/)
    connection.py     clients, pools, cluster detection (open_redis)
    base.py           what the parts share; the script runner (_eval_many)
    health.py         readiness: ping, cluster state, server settings
    pending.py        accepted events, doorbells, wake tokens, poisoned events
    calls.py          call logs, views, live calls, timers
    logs.py           plain logs (SMS conversations, events without a call)
    outcomes.py       outcome streams
    housekeeping.py   counters, locks, heartbeats, RQ job status
    subscriptions.py  subscriptions, deliveries, breakers (SubscriptionStore)
    supervisor.py     the supervisor's view (SupervisorStore)
    due.py            the cross-tenant due indexes (DueIndexes)
    rate_limit.py     the per-token webhook rate limit (RateLimiter)
"""

from __future__ import annotations

from redis.cluster import RedisCluster

from core.store.calls import CallCommit, CallLog, CallStore
from core.store.connection import (
    POOL_WAIT_SECONDS,
    BudgetedPool,
    Connections,
    NotReplicated,
    PoolExhausted,
    Redis,
    SignalSafeLifoQueue,
    connect,
    is_cluster,
    open_redis,
)
from core.store.due import DUE_LEASE_SECONDS, DueIndexes
from core.store.group_commit import GroupCommit
from core.store.health import HealthChecks
from core.store.housekeeping import Housekeeping
from core.store.keys import (
    CALL_INDEX_COMPLETE_KEY,
    DELIVERIES_DUE_KEY,
    DISPATCH_LOCK_KEY,
    OUTCOMES_DUE_KEY,
    PARTITIONS,
    PENDING_DUE_KEY,
    PREFIX,
    REAPER_LOCK_KEY,
    STATS_KEY,
    SUBSCRIPTION_TENANTS_KEY,
    TENANTS_KEY,
    TIMERS_DUE_KEY,
    alive_key,
    breakers_key,
    call_key,
    call_tenants_key,
    contacts_key,
    conversation_key,
    conversation_tenants_key,
    deliveries_index_key,
    delivery_due_key,
    delivery_key,
    delivery_queue_key,
    delivery_timers_key,
    dispatch_cursor_key,
    doorbell_key,
    legs_key,
    live_key,
    log_keys,
    manual_resolutions_key,
    other_events_key,
    outcomes_key,
    partition_for,
    partition_of,
    partition_tag,
    pending_events_key,
    pending_field,
    pending_key,
    poisoned_key,
    rate_key,
    subs_key,
    supervisor_calls_key,
    supervisor_stamp_key,
    supervisor_versions_key,
    tenant_tag,
    timers_key,
    wake_key,
)
from core.store.logs import PlainLogs
from core.store.outcomes import Outcomes
from core.store.pending import Partition, PendingEvents, _accepts_busy
from core.store.rate_limit import RateLimiter
from core.store.subscriptions import SubscriptionState, SubscriptionStore
from core.store.supervisor import CallPart, SupervisorStore
from core.store.values import _script, dumps, to_micros


class Store(CallStore, Outcomes, PlainLogs, PendingEvents, HealthChecks, Housekeeping):
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
        self.cluster = client if isinstance(client, RedisCluster) else None
        self.queues = queues if queues is not None else client
        self.spread = self.cluster is not None if spread is None else spread
        self._nodes = self.cluster
        self._wake_listener = None
        self._wake_channels = set()
        self.retention_seconds = retention_seconds
        self.durable_replicas = durable_replicas
        self.durable_wait_ms = max(1, int(durable_wait_seconds * 1000))
        # The web process's many request threads share round trips (group_commit.py).
        self._group_commit = (
            GroupCommit(self.accept_many, queue_wait=POOL_WAIT_SECONDS, gave_up=_accepts_busy)
            if group_commit
            else None
        )
        self._commit_call = client.register_script(_script("commit_call"))
        self._append_log = client.register_script(_script("append_log"))
        self._publish_outcome = client.register_script(_script("publish_outcome"))
        self._claim_timers = client.register_script(_script("claim_timers"))
        self._accept = client.register_script(_script("accept_events"))
        self._finish_drain = client.register_script(_script("finish_drain"))
        self._swap_doorbell = client.register_script(_script("swap_doorbell"))
        self._take_pending = client.register_script(_script("take_pending"))
        self._claim_doorbells = client.register_script(_script("claim_doorbells"))


__all__ = [
    "CALL_INDEX_COMPLETE_KEY",
    "DELIVERIES_DUE_KEY",
    "DISPATCH_LOCK_KEY",
    "DUE_LEASE_SECONDS",
    "OUTCOMES_DUE_KEY",
    "PARTITIONS",
    "PENDING_DUE_KEY",
    "POOL_WAIT_SECONDS",
    "PREFIX",
    "REAPER_LOCK_KEY",
    "STATS_KEY",
    "SUBSCRIPTION_TENANTS_KEY",
    "TENANTS_KEY",
    "TIMERS_DUE_KEY",
    "BudgetedPool",
    "CallCommit",
    "CallLog",
    "CallPart",
    "Connections",
    "DueIndexes",
    "NotReplicated",
    "Partition",
    "PoolExhausted",
    "RateLimiter",
    "Redis",
    "SignalSafeLifoQueue",
    "Store",
    "SubscriptionState",
    "SubscriptionStore",
    "SupervisorStore",
    "alive_key",
    "breakers_key",
    "call_key",
    "call_tenants_key",
    "connect",
    "contacts_key",
    "conversation_key",
    "conversation_tenants_key",
    "deliveries_index_key",
    "delivery_due_key",
    "delivery_key",
    "delivery_queue_key",
    "delivery_timers_key",
    "dispatch_cursor_key",
    "doorbell_key",
    "dumps",
    "is_cluster",
    "legs_key",
    "live_key",
    "log_keys",
    "manual_resolutions_key",
    "open_redis",
    "other_events_key",
    "outcomes_key",
    "partition_for",
    "partition_of",
    "partition_tag",
    "pending_events_key",
    "pending_field",
    "pending_key",
    "poisoned_key",
    "rate_key",
    "subs_key",
    "supervisor_calls_key",
    "supervisor_stamp_key",
    "supervisor_versions_key",
    "tenant_tag",
    "timers_key",
    "to_micros",
    "wake_key",
]
