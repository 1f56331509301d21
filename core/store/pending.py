"""Accepted events until they are applied: the pending sets, doorbells and
wake tokens by which one drainer at a time takes a partition.

Past 400 lines on purpose: accepting, waking and handing over are one
protocol over the same keys; apart, their rules could drift.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.connection import POOL_WAIT_SECONDS, PoolExhausted
from core.store.group_commit import GroupCommit
from core.store.keys import (
    PARTITIONS,
    PENDING_DUE_KEY,
    TENANTS_KEY,
    call_tenants_key,
    conversation_tenants_key,
    doorbell_key,
    partition_of,
    pending_events_key,
    pending_field,
    pending_key,
    wake_key,
)
from core.store.tenants import Tenants
from core.store.values import _text, dumps, loads
from statemachine.envelope import Envelope


@dataclass(frozen=True)
class Partition:
    """One pending set with work in it: whose, which, and its oldest event's age."""

    tenant_id: str
    number: int
    oldest: float
    size: int


def _index_key(envelope: Envelope) -> str | None:
    """The cross-tenant index key an accepted event adds its tenant to, if any."""
    data = envelope.get("data") or {}
    if data.get("call_uuid"):
        return call_tenants_key(data["call_uuid"])
    if data.get("conversation_id"):
        return conversation_tenants_key(data["conversation_id"])
    return None


def _needing(items: Sequence[tuple[Envelope, str]], keys: set[str]) -> list[int]:
    """The items whose accept wrote one of ``keys`` (every item needs the shared ones)."""
    if keys & {TENANTS_KEY, PENDING_DUE_KEY}:
        return list(range(len(items)))
    return [i for i, (envelope, _) in enumerate(items) if _index_key(envelope) in keys]


def _accepts_busy() -> PoolExhausted:
    return PoolExhausted(
        f"events waiting to be written stayed queued for {POOL_WAIT_SECONDS} s behind a busy Redis"
    )


class PendingEvents(Part):
    """Accepting events, and handing partitions from drainer to drainer."""

    def __init__(self, backend: Backend, tenants: Tenants, *, group_commit: bool) -> None:
        super().__init__(backend)
        self.tenants = tenants  # pending_count walks every tenant
        # The web process's many request threads share round trips (group_commit.py).
        self._group_commit: GroupCommit[tuple[Envelope, str], bool] | None = (
            GroupCommit(self.accept_many, queue_wait=POOL_WAIT_SECONDS, gave_up=_accepts_busy)
            if group_commit
            else None
        )
        self._accept: Script = backend.script("accept_events")
        self._take_pending: Script = backend.script("take_pending")
        self._claim_doorbells: Script = backend.script("claim_doorbells")
        self._finish_drain: Script = backend.script("finish_drain")
        self._swap_doorbell: Script = backend.script("swap_doorbell")
        # A drain session's wake listener on a cluster (wait_for_wake).
        self._wake_listener: Any = None
        self._wake_channels: set[str] = set()

    def accept(self, envelope: Envelope, ring_as: str) -> bool:
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

    def accept_many(self, items: Sequence[tuple[Envelope, str]]) -> list[bool | redis.RedisError]:
        """Accept several events in one round trip (per node of a cluster); per
        event, rung or its error.

        One script call per partition tag (on one Redis: per tenant). With
        ``durable_replicas``, an event is accepted only once WAIT confirmed it
        on as many replicas as ``backend.durability`` asks (else NotReplicated).
        """
        by_tag: dict[str, list[int]] = {}
        for index, (envelope, _) in enumerate(items):
            tag = self.backend.tag(envelope["tenant_id"], partition_of(envelope))
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
            key = _index_key(envelope)
            if key is not None:
                also += [
                    ("SADD", key, envelope["tenant_id"]),
                    ("PEXPIRE", key, self.backend.ttl_ms),
                ]
        dropped: list[tuple[Any, ...]] = []
        answers = self.backend.eval_many(calls, durable=True, also=also, dropped=dropped)
        results: list[bool | redis.RedisError] = [False] * len(items)
        for indexes, answer in zip(by_tag.values(), answers, strict=True):
            for position, index in enumerate(indexes):
                results[index] = (
                    answer if isinstance(answer, redis.RedisError) else bool(answer[position])
                )
        if dropped:
            # An index the event's readers need (its call -> tenant, the tenants)
            # was not written, its node gone: refuse the event, whose retry
            # (deduplicated) writes the index again.
            for index in _needing(items, {command[1] for command in dropped}):
                if isinstance(results[index], redis.RedisError):
                    continue  # refused already, and why
                results[index] = redis.ConnectionError(
                    "an index of the event could not be written (a Redis node is gone): retry"
                )
        return results

    def _accept_call(self, items: Sequence[tuple[Envelope, str]]) -> tuple[list[str], list[Any]]:
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

    def clear_applied(self, tenant_id: str, partition: int, fields: Sequence[str]) -> None:
        """Drop applied events from a partition's pending set (after a commit that
        could not do it: another slot). Applying them again would change nothing."""
        if not fields:
            return
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(pending_key(tenant_id, partition, self.spread), *fields)
            pipe.hdel(pending_events_key(tenant_id, partition, self.spread), *fields)
            pipe.execute()

    def take_pending(
        self, tenant_id: str, partition: int, limit: int
    ) -> list[tuple[str, Envelope]]:
        """The partition's oldest pending events (they stay pending until applied)."""
        pending = pending_key(tenant_id, partition, self.spread)
        fields = [_text(f) for f in self.redis.zrange(pending, 0, limit - 1)]
        if not fields:
            return []
        payloads = self.redis.hmget(pending_events_key(tenant_id, partition, self.spread), fields)
        taken: list[tuple[str, Envelope]] = []
        orphans: list[str] = []
        for field, payload in zip(fields, payloads, strict=True):
            if payload is None:
                orphans.append(field)  # its event was applied; only the mark was left
            else:
                taken.append((field, loads(payload)))
        if orphans:
            self.redis.zrem(pending, *orphans)
        return taken

    def take_pending_many(
        self, partitions: Sequence[tuple[str, int]], limit: int
    ) -> dict[tuple[str, int], list[tuple[str, Envelope]]]:
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
        answers = self.backend.eval_all(calls)
        taken: dict[tuple[str, int], list[tuple[str, Envelope]]] = {}
        for part, flat in zip(partitions, answers, strict=True):
            if flat:
                taken[part] = [
                    (_text(f), loads(e)) for f, e in zip(flat[::2], flat[1::2], strict=True)
                ]
        return taken

    def wait_for_wake(
        self, partitions: Sequence[tuple[str, int]], timeout: float
    ) -> list[tuple[str, int]]:
        """Block until some of the partitions have a wake token, and take them;
        return those partitions, or none when ``timeout`` passed first.

        A wake token says events arrived while a worker held the partition. On
        one Redis: a BLPOP over every wake list, which answers with the first
        list in its order holding a token (under steady traffic the first
        partitions would always win), so the other lists are popped in the same
        round trip, as soon as it returns. A cluster cannot block on keys of
        several slots: there the drainer listens on the lists' channels (intake
        publishes on them when it leaves a token) and takes the tokens of the
        lists it hears about, and of those it starts to listen to.
        """
        if not partitions:
            time.sleep(timeout)
            return []
        keys = {wake_key(t, n, self.spread): (t, n) for t, n in partitions}
        if self.backend.cluster is None:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.blpop(list(keys), timeout=max(timeout, 0.001))
                for key in keys:
                    pipe.lpop(key)
                popped, *others = pipe.execute()
            woken = [keys[_text(popped[0])]] if popped else []
            tokens = zip(keys.values(), others, strict=True)
            return woken + [part for part, token in tokens if token]
        try:
            return self._listen_for_wake(keys, timeout)
        except redis.RedisError:
            self._forget_wake_listener()
            raise

    def _listen_for_wake(
        self, keys: dict[str, tuple[str, int]], timeout: float
    ) -> list[tuple[str, int]]:
        if self._wake_listener is None:
            self._wake_listener = self.backend.nodes.pubsub(ignore_subscribe_messages=True)
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
            by_tag.setdefault(self.backend.tag(tenant, number), []).append((tenant, number))
        calls = [
            (
                self._claim_doorbells,
                [doorbell_key(t, n, self.spread) for t, n in parts],
                [me, *take_over],
            )
            for parts in by_tag.values()
        ]
        answers = self.backend.eval_all(calls)
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
        answers = self.backend.eval_all(calls)
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

    def oldest_pending(self, tenant_id: str, partition: int) -> float | None:
        """When the partition's oldest unapplied event was accepted (None: none waits)."""
        pending = pending_key(tenant_id, partition, self.spread)
        oldest = self.redis.zrange(pending, 0, 0, withscores=True)
        return float(oldest[0][1]) if oldest else None

    def pending_events(self, tenant_id: str) -> list[tuple[str, Envelope]]:
        """Every pending event of a tenant, all partitions, oldest first in each."""
        found: list[tuple[str, Envelope]] = []
        for number in range(PARTITIONS):
            found += self.take_pending(tenant_id, number, 10_000)
        return found

    def pending_count(self) -> int:
        """Events accepted and not yet applied, all tenants."""
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant in self.tenants.all():
                for number in range(PARTITIONS):
                    pipe.zcard(pending_key(tenant, number, self.spread))
            return sum(cast(list[int], pipe.execute()))
