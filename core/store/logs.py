"""Plain logs: SMS conversations and events without a call, appended, never folded;
and the index of each tenant's conversations."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    PARTITIONS,
    conversation_key,
    conversations_keys,
    log_keys,
    other_events_key,
    partition_for,
    pending_events_key,
    pending_key,
)
from core.store.pending import PendingEvents
from core.store.values import _text, dumps, loads, to_micros
from statemachine.envelope import Envelope


@dataclass(frozen=True)
class Conversation:
    """One SMS conversation as the index knows it."""

    conversation_id: str
    tenant_id: str
    numbers: list[str]
    last_message_us: int
    messages: int


class PlainLogs(Part):
    """Logs that are only appended and read back."""

    def __init__(self, backend: Backend, pending: PendingEvents) -> None:
        super().__init__(backend)
        # An append clears its events' pending marks, through this part when
        # they live in another slot than the log.
        self.pending = pending
        self._append_log: Script = backend.script("append_log")
        self._append_messages: Script = backend.script("append_messages")

    def conversation_key(self, tenant_id: str, conversation_id: str) -> str:
        return conversation_key(tenant_id, conversation_id, self.spread)

    def other_events_key(self, tenant_id: str) -> str:
        return other_events_key(tenant_id, self.spread)

    def append_log(
        self,
        base: str,
        records: Sequence[Envelope],
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
        args: list[Any] = [self.backend.ttl_ms, len(records)]
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
            self.pending.clear_applied(tenant_id, partition, done)
        return added

    def append_messages(
        self,
        conversation_id: str,
        records: Sequence[Envelope],
        tenant_id: str,
        pending_done: Iterable[str] = (),
        partition: int = 0,
    ) -> int:
        """Append messages to their conversation's log (as append_log does) and keep
        the conversation index: its last message time, its numbers, how many
        messages it holds. Returns how many were new."""
        home = partition_for(conversation_id)
        base = self.conversation_key(tenant_id, conversation_id)
        log, records_key = log_keys(base)
        done = list(pending_done)
        elsewhere = self.spread and home != partition
        numbers = sorted(
            {
                number
                for record in records
                for number in (record["data"].get("from_number"), record["data"].get("to_number"))
                if number
            }
        )
        args: list[Any] = [self.backend.ttl_ms, len(records)]
        for record in records:
            args += [record["id"], to_micros(record["received_at"]), dumps(record)]
        args += [0] if elsewhere else [len(done), *done]
        cutoff = int((time.time() - self.backend.retention_seconds) * 1_000_000)
        args += [conversation_id, dumps(numbers), cutoff]
        keys = [
            log,
            records_key,
            pending_key(tenant_id, home if elsewhere else partition, self.spread),
            pending_events_key(tenant_id, home if elsewhere else partition, self.spread),
            *conversations_keys(tenant_id, home, self.spread),
        ]
        added = int(self._append_messages(keys=keys, args=args))
        if elsewhere:
            self.pending.clear_applied(tenant_id, partition, done)
        return added

    def conversations(
        self,
        tenant_id: str,
        before: tuple[int, str] | None,
        since_us: int | None,
        until_us: int | None,
        limit: int,
    ) -> list[Conversation]:
        """A tenant's conversations, the last message newest first, from after
        ``before`` (last message us, conversation id) on: up to ``limit`` from
        each partition, merged, cut to ``limit``. Last messages in
        [``since_us``, ``until_us``) only, when given."""
        found: list[Conversation] = []
        high = until_us - 1 if until_us is not None else None
        if before is not None:
            high = before[0] if high is None else min(high, before[0])
        # On one Redis every partition shares the tenant's keys: one index to read.
        for partition in range(PARTITIONS if self.spread else 1):
            index, meta = conversations_keys(tenant_id, partition, self.spread)
            entries = self.redis.zrevrangebyscore(
                index,
                "+inf" if high is None else high,
                "-inf" if since_us is None else since_us,
                start=0,
                num=limit + 1 if before is None else limit + 64,
                withscores=True,
            )
            candidates = [
                (int(score), _text(member))
                for member, score in cast(list[tuple[bytes, float]], entries)
                if before is None or (int(score), _text(member)) < before
            ][:limit]
            if not candidates:
                continue
            raw = self.redis.hmget(meta, [member for _, member in candidates])
            for (last_us, member), value in zip(candidates, raw, strict=True):
                facts = loads(value) if value is not None else {}
                numbers = facts.get("numbers") or []
                found.append(
                    Conversation(
                        conversation_id=member,
                        tenant_id=tenant_id,
                        numbers=list(numbers) if isinstance(numbers, list) else [],
                        last_message_us=last_us,
                        messages=int(facts.get("messages") or 0),
                    )
                )
        found.sort(key=lambda c: (c.last_message_us, c.conversation_id), reverse=True)
        return found[:limit]

    def read_log(self, base: str, limit: int = 1000) -> list[Envelope]:
        """A plain log's records, oldest first."""
        log, records_key = log_keys(base)
        ids = [_text(i) for i in self.redis.zrange(log, 0, limit - 1)]
        if not ids:
            return []
        raw = self.redis.hmget(records_key, ids)
        return [loads(r) for r in raw if r is not None]

    def messages(self, tenant_id: str, conversation_id: str) -> list[Envelope]:
        return self.read_log(self.conversation_key(tenant_id, conversation_id))
