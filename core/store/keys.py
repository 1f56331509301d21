"""Every Redis key name, built by small functions here: nobody else builds a key.

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
    cs:{P}:call:<uuid>             hash   v (log version), view, facts, outcome, revision
    cs:{P}:call:<uuid>:unfolded    zset   events past MAX_EVENTS_PER_CALL, kept unfolded
    cs:{P}:call:<uuid>:unfolded-records  hash   their records
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
    cs:due:<kind>                  zset   tenant -> when it next has periodic work (below)
    cs:call-tenants:<uuid>         set    tenants that posted that call (below)
    cs:rate:<digest>               hash   a webhook token's rate-limit bucket (below)
    cs:alive:<worker>              string a worker's heartbeat (short TTL)

On one Redis the per-partition indexes (live, timers, poisoned, outcomes) are
one key per tenant; on a cluster, eight, and the reads that span them fan out
(``Backend.partitions``) and merge. RQ's own keys (``rq:*``) live on the Redis
that ``RQ_REDIS_URL`` names, never on a cluster: its multi-key commands span
slots.

The keys of subscriptions and deliveries, of the rate limit, of the
supervisor's view and of the cross-tenant due indexes are listed beside their
functions below.
"""

from __future__ import annotations

import hashlib
import zlib
from urllib.parse import quote, unquote

from core.store.values import to_micros
from statemachine.envelope import Envelope

PREFIX = "cs"
TENANTS_KEY = f"{PREFIX}:tenants"
STATS_KEY = f"{PREFIX}:stats"
# Cross-process locks: one reaper, one dispatcher at a time among all workers.
REAPER_LOCK_KEY = f"{PREFIX}:reaper-lock"
DISPATCH_LOCK_KEY = f"{PREFIX}:dispatch-lock"
SUBSCRIPTION_TENANTS_KEY = f"{PREFIX}:subscription-tenants"


def _part(value: str) -> str:
    """Make an outside value safe inside a key: no braces, colons or spaces."""
    return quote(value, safe="._@+=-")


def _unpart(value: str) -> str:
    return unquote(value)


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


def partition_of(envelope: Envelope) -> int:
    """The partition of an event: all events of one call (or conversation) share one."""
    data = envelope.get("data") or {}
    return partition_for(data.get("call_uuid") or data.get("conversation_id") or "")


def partition_for(call_or_conversation: str) -> int:
    return zlib.crc32(call_or_conversation.encode("utf-8", "surrogatepass")) % PARTITIONS


def call_key(tenant_id: str, call_uuid: str, spread: bool = False) -> str:
    tag = partition_tag(tenant_id, partition_for(call_uuid), spread)
    return f"{tag}:call:{_part(call_uuid)}"


def call_logs_pattern(tenant_id: str, spread: bool = False) -> str:
    """A SCAN pattern matching the log key of each call of a tenant, every
    partition: ``?`` is the partition's digit, and a tenant's part never holds
    a glob character (_part quotes them)."""
    tag = f"{PREFIX}:{{t:{_part(tenant_id)}:?}}" if spread else tenant_tag(tenant_id)
    return f"{tag}:call:*:log"


def call_of_log_key(key: str) -> str:
    """The call uuid of a key that ``call_logs_pattern`` matched."""
    return _unpart(key.split("}:call:", 1)[1][: -len(":log")])


def conversation_key(tenant_id: str, conversation_id: str, spread: bool = False) -> str:
    tag = partition_tag(tenant_id, partition_for(conversation_id), spread)
    return f"{tag}:conv:{_part(conversation_id)}"


def conversations_keys(tenant_id: str, partition: int, spread: bool = False) -> tuple[str, str]:
    """One partition's index of a tenant's SMS conversations (in the slot of the
    conversations it indexes): a zset by last message time, and a hash of each
    conversation's numbers and message count."""
    tag = partition_tag(tenant_id, partition, spread)
    return f"{tag}:convs", f"{tag}:convs:meta"


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


def live_events_key(tenant_id: str, partition: int = 0, spread: bool = False) -> str:
    """A partition's live call events (call.started...), a stream like the outcomes'."""
    return f"{partition_tag(tenant_id, partition, spread)}:live-events"


def live_sent_key(tenant_id: str, call_uuid: str, spread: bool = False) -> str:
    """Which live steps of a call were sent: a hash beside the call's own keys."""
    tag = partition_tag(tenant_id, partition_for(call_uuid), spread)
    return f"{tag}:live-sent:{_part(call_uuid)}"


def open_alerts_key(tenant_id: str, spread: bool = False) -> str:
    """The tenant's open alerts (type -> the id it was sent with), in the slot of
    the live events stream alerts go into (partition_for(""))."""
    return f"{partition_tag(tenant_id, partition_for(''), spread)}:open-alerts"


def events_cursor_key(tenant_id: str) -> str:
    """How far the dispatcher has turned the tenant's live events into deliveries."""
    return f"{tenant_tag(tenant_id)}:events-cursor"


def alive_key(worker_name: str) -> str:
    return f"{PREFIX}:alive:{worker_name}"


def log_keys(base: str) -> tuple[str, str]:
    """The two keys of one log: the ordered ids and the records."""
    return f"{base}:log", f"{base}:records"


def unfolded_keys(base: str) -> tuple[str, str]:
    """The two keys of a call's events past its cap: kept for inspection, never folded."""
    return f"{base}:unfolded", f"{base}:unfolded-records"


def pending_field(envelope: Envelope) -> str:
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


# -- per-token rate limit ---------------------------------------------------------
#
#   cs:rate:<digest>              hash   a webhook token's bucket {tokens, at}
#
# One key alone (any cluster slot): named by a digest of the token, never the
# token itself (key names show in SCAN, MONITOR and slow logs).


def rate_key(token: str) -> str:
    return f"{PREFIX}:rate:{hashlib.sha256(token.encode('utf-8')).hexdigest()[:24]}"


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

TIMERS_DUE_KEY = f"{PREFIX}:due:timers"
PENDING_DUE_KEY = f"{PREFIX}:due:pending"
OUTCOMES_DUE_KEY = f"{PREFIX}:due:outcomes"
ALERTS_LOCK_KEY = f"{PREFIX}:alerts-lock"
# Tenants with live call events or alerts not yet turned into deliveries.
EVENTS_DUE_KEY = f"{PREFIX}:due:events"
DELIVERIES_DUE_KEY = f"{PREFIX}:due:deliveries"
# When cs:call-tenants / cs:conversation-tenants cover every call kept (unix s).
CALL_INDEX_COMPLETE_KEY = f"{PREFIX}:call-index-complete-at"


def call_tenants_key(call_uuid: str) -> str:
    return f"{PREFIX}:call-tenants:{_part(call_uuid)}"


def conversation_tenants_key(conversation_id: str) -> str:
    return f"{PREFIX}:conversation-tenants:{_part(conversation_id)}"


# -- tenants and credentials as data (directory.py) -------------------------------------
#
#   cs:{dir}:tenants       hash   tenant id -> json record (name, settings, disabled)
#   cs:{dir}:credentials   hash   sha256 hex of a token or key -> json credential
#   cs:{dir}:credential-ids hash  credential id -> that sha256 hex (to revoke by id)
#   cs:{dir}:last-used     hash   credential id -> when it was last used (epoch s)
#   cs:{dir}:version       string a counter every write above moves: each process
#                                 reloads its copy when it sees it move
#
# One hash tag for all of them, so a change and its version move in one MULTI on
# a cluster too. The raw secret is in no key and no value: only its digest.

DIRECTORY_TAG = f"{PREFIX}:{{dir}}"
DIRECTORY_TENANTS_KEY = f"{DIRECTORY_TAG}:tenants"
CREDENTIALS_KEY = f"{DIRECTORY_TAG}:credentials"
CREDENTIAL_IDS_KEY = f"{DIRECTORY_TAG}:credential-ids"
CREDENTIALS_USED_KEY = f"{DIRECTORY_TAG}:last-used"
DIRECTORY_VERSION_KEY = f"{DIRECTORY_TAG}:version"
