"""Live call events: each call's steps sent once, in order, into per-partition
streams read like the outcome streams (ids are server microseconds)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    EVENTS_DUE_KEY,
    events_cursor_key,
    live_events_key,
    live_sent_key,
    open_alerts_key,
    partition_for,
)
from core.store.outcomes import Outcomes
from core.store.values import _text, dumps
from statemachine.live_events import Step

# Live events are for now (screen-pops, wallboards) and their deliveries: a day
# is kept, not RETENTION_SECONDS, as each call makes several.
LIVE_EVENTS_RETENTION_SECONDS = 24 * 3600


class LiveEvents(Part):
    """Sending live steps (workers) and reading them back (the stream, the dispatcher)."""

    def __init__(self, backend: Backend, outcomes: Outcomes) -> None:
        super().__init__(backend)
        self.outcomes = outcomes
        self._emit: Script = backend.script("emit_live_events")
        self._alert: Script = backend.script("emit_alert")

    def emit(self, tenant_id: str, calls: Sequence[tuple[str, Sequence[Step]]]) -> list[str]:
        """Send the steps of each (call uuid, steps) not sent before, one round trip
        per node; returns the ids added. Safe to repeat: a step goes out once."""
        runs = self.emit_calls(tenant_id, calls)
        if not runs:
            return []
        added = [_text(i) for answer in self.backend.eval_all(runs) for i in answer]
        if added:
            # For the dispatcher: this tenant has events to turn into deliveries.
            self.mark_due(tenant_id)
        return added

    def emit_calls(
        self, tenant_id: str, calls: Sequence[tuple[str, Sequence[Step]]]
    ) -> list[tuple[Script, Sequence[str], Sequence[Any]]]:
        """The script calls of :meth:`emit` (none for a call without steps), to send
        with others in one round trip."""
        return [
            (
                self._emit,
                [
                    live_sent_key(tenant_id, call_uuid, self.spread),
                    live_events_key(tenant_id, partition_for(call_uuid), self.spread),
                ],
                [
                    json.dumps(
                        [{"rank": s.rank, "key": s.key, "body": dumps(s.body)} for s in steps]
                    ),
                    self._retention_us,
                    # The call's sent steps live as long as the call: a straggler
                    # must find them.
                    self.backend.ttl_ms,
                ],
            )
            for call_uuid, steps in calls
            if steps
        ]

    def set_alert(
        self, tenant_id: str, alert: str, holds: bool, body: dict[str, Any]
    ) -> str | None:
        """Open (``holds``) or resolve an alert; it is sent only if that changes its
        state. Returns the id sent, or None."""
        added = self._alert(
            keys=[
                open_alerts_key(tenant_id, self.spread),
                live_events_key(tenant_id, partition_for(""), self.spread),
            ],
            args=[
                alert,
                "1" if holds else "0",
                dumps(body),
                self._retention_us,
                self.backend.ttl_ms,
            ],
        )
        if not added:
            return None
        self.mark_due(tenant_id)
        return _text(added)

    def open_alerts(self, tenant_id: str) -> set[str]:
        return {_text(a) for a in self.redis.hkeys(open_alerts_key(tenant_id, self.spread))}

    @property
    def _retention_us(self) -> int:
        seconds = min(self.backend.retention_seconds, LIVE_EVENTS_RETENTION_SECONDS)
        return int(seconds * 1_000_000)

    def mark_due(self, tenant_id: str, when: float | None = None) -> None:
        self.redis.zadd(EVENTS_DUE_KEY, {tenant_id: time.time() if when is None else when}, lt=True)

    def read(
        self, tenant_ids: Sequence[str], *, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Live events after ``after``, oldest first, across tenants; as read_outcomes."""
        streams = [
            live_events_key(t, p, self.spread) for t in tenant_ids for p in self.backend.partitions
        ]
        return self.outcomes.read_feed(streams, after=after, limit=limit)

    def cursor(self, tenant_id: str) -> str | None:
        raw = self.redis.get(events_cursor_key(tenant_id))
        return _text(raw) if raw is not None else None
