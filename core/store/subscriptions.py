"""Subscriptions, their deliveries, delivery queues and circuit breakers.

One queue per (tenant, subscription) lets the delivery process take a
subscription's due attempts, or skip them all while its breaker is open,
without walking past another receiver's backlog (keys: ``keys.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.commands.core import Script

from core.deliveries.records import Delivery, Subscription
from core.store.backend import Backend, Part
from core.store.keys import (
    DELIVERIES_DUE_KEY,
    SUBSCRIPTION_TENANTS_KEY,
    breakers_key,
    deliveries_index_key,
    delivery_due_key,
    delivery_key,
    delivery_queue_key,
    delivery_timers_key,
    dispatch_cursor_key,
    events_cursor_key,
    subs_key,
)
from core.store.values import _text, dumps


@dataclass(frozen=True)
class SubscriptionState:
    """What the delivery process reads about a subscription before claiming for it."""

    subscription: Subscription | None  # None: deleted
    breaker: str | None  # its breaker's json, None while it never failed
    stored_under: str  # the tenant (or "*") it is stored under


class Subscriptions(Part):
    """Subscriptions, their deliveries, queues and breakers."""

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._claim: Script = backend.script("claim_deliveries")

    # -- subscriptions --------------------------------------------------------

    def save_subscription(self, subscription: Subscription) -> None:
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

    def subscriptions(self, tenant_id: str) -> list[Subscription]:
        """Subscriptions stored under ``tenant_id`` (``*`` for all-tenant ones), oldest first."""
        raw = self.redis.hvals(subs_key(tenant_id))
        return sorted((json.loads(r) for r in raw), key=lambda s: (s["created_at"], s["id"]))

    def subscriptions_of(self, tenant_ids: Sequence[str]) -> dict[str, list[Subscription]]:
        """The subscriptions stored under each tenant (``*`` too), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                pipe.hvals(subs_key(tenant))
            answers = pipe.execute()
        return {
            tenant: [json.loads(r) for r in raw]
            for tenant, raw in zip(tenant_ids, answers, strict=True)
        }

    def subscription(self, tenant_id: str, subscription_id: str) -> Subscription | None:
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
        self,
        tenant_id: str,
        deliveries: Sequence[Delivery],
        cursor: str,
        now: float,
        feed: str = "outcomes",
    ) -> None:
        """Create deliveries (once each, by id), queue them, move the cursor of the
        ``feed`` they come from ("outcomes" or "events"): one MULTI.

        A dispatcher that dies before EXEC leaves the cursor where it was; the
        next one creates the same delivery ids, which SET NX ignores.
        """
        ttl = self.backend.ttl_ms
        with self.redis.pipeline(transaction=True) as pipe:
            for delivery in deliveries:
                pipe.set(delivery_key(tenant_id, delivery["id"]), dumps(delivery), nx=True, px=ttl)
                index = deliveries_index_key(tenant_id, delivery["subscription_id"])
                pipe.zadd(index, {delivery["id"]: now}, nx=True)
                pipe.zremrangebyscore(index, "-inf", now - self.backend.retention_seconds)
                pipe.pexpire(index, ttl)
                self._queue(pipe, tenant_id, delivery["subscription_id"], delivery["id"], now, True)
            by_feed = {"outcomes": dispatch_cursor_key, "events": events_cursor_key}
            pipe.set(by_feed[feed](tenant_id), cursor)
            pipe.execute()
        if deliveries:
            self.mark_due(tenant_id, now)

    # -- deliveries -----------------------------------------------------------

    def delivery(self, tenant_id: str, delivery_id: str) -> Delivery | None:
        raw = self.redis.get(delivery_key(tenant_id, delivery_id))
        return json.loads(raw) if raw is not None else None

    def save_delivery(self, tenant_id: str, delivery: Delivery) -> None:
        ttl = self.backend.ttl_ms
        self.redis.set(delivery_key(tenant_id, delivery["id"]), dumps(delivery), px=ttl)

    def deliveries(self, tenant_id: str, subscription_id: str, limit: int = 100) -> list[Delivery]:
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
