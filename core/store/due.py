"""The cross-tenant due indexes: which tenants have periodic work, and when.

Periodic work reads these instead of walking every tenant: an idle engine
with a thousand tenants looks at none of them. Each index is one key outside
every tenant's slot, so no script touches both: writers mark a tenant with a
separate ZADD LT after the script that armed its work (a mark only ever
moves earlier: idempotent); a reader takes a due tenant by pushing its mark
a lease ahead, does the work, then (release_due.lua) sets the mark to what
is left, unless a writer moved it meanwhile. A marker lost on the way (a
crash between script and mark) is healed by ``DueIndexes.sweep``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    DELIVERIES_DUE_KEY,
    OUTCOMES_DUE_KEY,
    PARTITIONS,
    PENDING_DUE_KEY,
    TIMERS_DUE_KEY,
    delivery_due_key,
    dispatch_cursor_key,
    outcomes_key,
    pending_key,
    timers_key,
)
from core.store.tenants import Tenants
from core.store.values import _text
from statemachine.outcome import OutcomeId

DUE_LEASE_SECONDS = 15.0


class DueIndexes(Part):
    """The cross-tenant due indexes: which tenants have work, and when."""

    def __init__(self, backend: Backend, tenants: Tenants) -> None:
        super().__init__(backend)
        self.tenants = tenants  # the sweep walks every tenant
        self._release: Script = backend.script("release_due")

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
            (t, timers_key(t, p, self.spread)) for t in tenant_ids for p in self.backend.partitions
        ]
        return self._earliest(tenant_ids, keys)

    def oldest_pending(self, tenant_ids: Sequence[str]) -> dict[str, float | None]:
        """Each tenant's oldest unapplied event's acceptance time (None: none)."""
        keys = [(t, pending_key(t, p, self.spread)) for t in tenant_ids for p in range(PARTITIONS)]
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
        partitions = list(self.backend.partitions)
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in tenant_ids:
                pipe.get(dispatch_cursor_key(tenant))
                for p in partitions:
                    pipe.xrevrange(outcomes_key(tenant, p, self.spread), count=1)
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
        tenants = self.tenants.all()
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
