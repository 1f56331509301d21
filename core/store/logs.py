"""Plain logs: SMS conversations and events without a call, appended, never folded."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    conversation_key,
    log_keys,
    other_events_key,
    pending_events_key,
    pending_key,
)
from core.store.pending import PendingEvents
from core.store.values import _text, dumps, to_micros
from statemachine.envelope import Envelope


class PlainLogs(Part):
    """Logs that are only appended and read back."""

    def __init__(self, backend: Backend, pending: PendingEvents) -> None:
        super().__init__(backend)
        # An append clears its events' pending marks, through this part when
        # they live in another slot than the log.
        self.pending = pending
        self._append_log: Script = backend.script("append_log")

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

    def read_log(self, base: str, limit: int = 1000) -> list[Envelope]:
        """A plain log's records, oldest first."""
        log, records_key = log_keys(base)
        ids = [_text(i) for i in self.redis.zrange(log, 0, limit - 1)]
        if not ids:
            return []
        raw = self.redis.hmget(records_key, ids)
        return [json.loads(r) for r in raw if r is not None]

    def messages(self, tenant_id: str, conversation_id: str) -> list[Envelope]:
        return self.read_log(self.conversation_key(tenant_id, conversation_id))
