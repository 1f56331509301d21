"""The one place that knows Redis: key names, Lua scripts, every read and write.

``Store`` is one object per process, made of parts, one per concept, each a
small class over the shared ``Backend`` (clients, one Redis or a cluster, the
script runner). A caller names the part: ``store.calls.load_call(...)``,
``store.subscriptions.delivery(...)``. To find a method, find its part below
(or ``git grep "def <name>" core/store``). A part that needs another is handed
it when the Store is made (``Calls`` clears marks through ``store.pending``).
The key layout is ``keys.py``. RQ's own keys (``rq:*``) live on the Redis
that ``RQ_REDIS_URL`` names, never on a cluster: its multi-key commands span
slots.

    store.<part>        module            what it holds
    tenants             tenants.py        the tenants, which posted a call or conversation;
                                          each tenant's own settings
    directory           directory.py      tenant records, webhook tokens and API keys (by
                                          digest), this process's copy of them
    pending             pending.py        accepted events, doorbells, wake tokens
    poisoned            poisoned.py       events set aside as poisoned
    calls               calls.py          call logs, views, live calls, timers
    logs                logs.py           plain logs (SMS conversations, events without a call)
    outcomes            outcomes.py       outcome streams
    live_events         live_events.py    live call events (call.started...), sent once each
    call_effects        call_effects.py   a commit's supervisor parts and live steps, sent together
    subscriptions       subscriptions.py  subscriptions, deliveries, breakers
    supervisor          supervisor.py     the supervisor's view
    due                 due.py            the cross-tenant due indexes
    health              health.py         readiness: ping, cluster state, server settings
    stats, locks,       housekeeping.py   counters; cross-process locks; heartbeats
      workers                             and what RQ's keys say of a job
    rate_limit          rate_limit.py     the per-token webhook rate limit
    backend             backend.py        what the parts share; the script runner

    keys.py           every key name (and the layout, in its docstring)
    values.py         JSON and text as stored; the Lua sources (lua/, lua/shared/)
    log_merge.py      the log merge rule the engine folds by (Redis's: lua/shared/)
    connection.py     clients, pools, cluster detection (open_redis)
    group_commit.py   many request threads' accepts in one round trip
"""

from __future__ import annotations

from core.store.backend import Backend
from core.store.call_effects import CallEffects
from core.store.calls import CallCommit, CallHead, CallLog, Calls
from core.store.connection import (
    POOL_WAIT_SECONDS,
    BudgetedPool,
    NotReplicated,
    PoolExhausted,
    Redis,
    connect,
    open_redis,
)
from core.store.directory import (
    CHECK_SECONDS,
    EVERY_TENANT,
    MISS_CHECK_SECONDS,
    Credential,
    CredentialKind,
    Directory,
    Scope,
    TenantExists,
    TenantRecord,
    digest,
    new_credential_id,
    new_secret,
)
from core.store.due import DueIndexes
from core.store.group_commit import GroupCommit
from core.store.health import Health
from core.store.housekeeping import Locks, Stats, Workers
from core.store.keys import (
    ALERTS_LOCK_KEY,
    CALL_INDEX_COMPLETE_KEY,
    DELIVERIES_DUE_KEY,
    DISPATCH_LOCK_KEY,
    EVENTS_DUE_KEY,
    OUTCOMES_DUE_KEY,
    PARTITIONS,
    PENDING_DUE_KEY,
    REAPER_LOCK_KEY,
    STATS_KEY,
    TENANTS_KEY,
    TIMERS_DUE_KEY,
    call_key,
    call_tenants_key,
    contacts_key,
    delivery_due_key,
    delivery_queue_key,
    delivery_timers_key,
    dispatch_cursor_key,
    doorbell_key,
    legs_key,
    live_key,
    log_keys,
    outcomes_key,
    partition_for,
    partition_of,
    partition_tag,
    pending_events_key,
    pending_field,
    pending_key,
    supervisor_calls_key,
    supervisor_stamp_key,
    supervisor_versions_key,
    tenant_tag,
    timers_key,
    wake_key,
)
from core.store.live_events import LiveEvents
from core.store.log_merge import log_order, merge_log
from core.store.logs import Conversation, PlainLogs
from core.store.outcomes import Outcomes
from core.store.pending import Partition, PendingEvents
from core.store.poisoned import Poisoned
from core.store.rate_limit import RateLimit
from core.store.subscriptions import Subscriptions, SubscriptionState
from core.store.supervisor import CallPart, SupervisorView
from core.store.tenants import Tenants
from core.store.values import dumps, loads, to_micros


class Store:
    """Reads and writes of the engine, by part; one per process, thread-safe like redis-py."""

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
        durable_mode: str = "available",
    ) -> None:
        """``queues``: the Redis of RQ's queues (default: ``client``). ``spread``:
        per-partition hash tags (default: whether ``client`` is a cluster client).
        ``durable_replicas``: accepting an event waits until that many replicas
        have it (WAIT), at most ``durable_wait_seconds``; ``durable_mode``
        (available, strict): with fewer replicas left, wait for those (see
        core/store/durability.py) or refuse. ``group_commit``: the
        web process's request threads share round trips to accept events."""
        backend = Backend(
            client,
            queues=queues,
            spread=spread,
            retention_seconds=retention_seconds,
            durable_replicas=durable_replicas,
            durable_wait_seconds=durable_wait_seconds,
            durable_mode=durable_mode,
        )
        self.backend = backend
        self.directory = Directory(backend)
        self.tenants = Tenants(backend, self.directory)
        self.pending = PendingEvents(backend, self.tenants, group_commit=group_commit)
        self.poisoned = Poisoned(backend)
        self.calls = Calls(backend, self.pending)
        self.logs = PlainLogs(backend, self.pending)
        self.outcomes = Outcomes(backend)
        self.live_events = LiveEvents(backend, self.outcomes)
        self.subscriptions = Subscriptions(backend)
        self.supervisor = SupervisorView(backend)
        self.call_effects = CallEffects(backend, self.supervisor, self.live_events)
        self.due = DueIndexes(backend, self.tenants)
        self.health = Health(backend)
        self.stats = Stats(backend)
        self.locks = Locks(backend)
        self.workers = Workers(backend)
        self.rate_limit = RateLimit(backend)


# What code outside core/store imports; it imports nothing else, and only from here.
__all__ = [
    "ALERTS_LOCK_KEY",
    "CALL_INDEX_COMPLETE_KEY",
    "CHECK_SECONDS",
    "DELIVERIES_DUE_KEY",
    "DISPATCH_LOCK_KEY",
    "EVENTS_DUE_KEY",
    "EVERY_TENANT",
    "MISS_CHECK_SECONDS",
    "OUTCOMES_DUE_KEY",
    "PARTITIONS",
    "PENDING_DUE_KEY",
    "POOL_WAIT_SECONDS",
    "REAPER_LOCK_KEY",
    "STATS_KEY",
    "TENANTS_KEY",
    "TIMERS_DUE_KEY",
    "BudgetedPool",
    "CallCommit",
    "CallHead",
    "CallLog",
    "CallPart",
    "Conversation",
    "Credential",
    "CredentialKind",
    "Directory",
    "GroupCommit",
    "NotReplicated",
    "Partition",
    "PoolExhausted",
    "Scope",
    "Store",
    "SubscriptionState",
    "Subscriptions",
    "SupervisorView",
    "TenantExists",
    "TenantRecord",
    "call_key",
    "call_tenants_key",
    "connect",
    "contacts_key",
    "delivery_due_key",
    "delivery_queue_key",
    "delivery_timers_key",
    "digest",
    "dispatch_cursor_key",
    "doorbell_key",
    "dumps",
    "legs_key",
    "live_key",
    "loads",
    "log_keys",
    "log_order",
    "merge_log",
    "new_credential_id",
    "new_secret",
    "open_redis",
    "outcomes_key",
    "partition_for",
    "partition_of",
    "partition_tag",
    "pending_events_key",
    "pending_field",
    "pending_key",
    "supervisor_calls_key",
    "supervisor_stamp_key",
    "supervisor_versions_key",
    "tenant_tag",
    "timers_key",
    "to_micros",
    "wake_key",
]
