"""Events set aside as poisoned: an event that cannot be applied leaves its
pending set for this one (in one MULTI: both are in the partition's slot), so
it no longer blocks its partition, and waits for an operator."""

from __future__ import annotations

import json
import time
from typing import Any

from core.store.backend import Part
from core.store.keys import pending_events_key, pending_key, poisoned_key
from core.store.values import _text, dumps
from statemachine.envelope import Envelope


class Poisoned(Part):
    """The events set aside, per tenant and partition."""

    def set_aside(
        self, tenant_id: str, partition: int, field: str, envelope: Envelope, error: str
    ) -> None:
        """Set aside an event that cannot be applied, for an operator; it no longer blocks."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                poisoned_key(tenant_id, partition, self.spread),
                field,
                dumps({"envelope": envelope, "error": error[:2000], "at": time.time()}),
            )
            pipe.zrem(pending_key(tenant_id, partition, self.spread), field)
            pipe.hdel(pending_events_key(tenant_id, partition, self.spread), field)
            pipe.execute()

    def _keys(self, tenant_id: str) -> list[str]:
        return [poisoned_key(tenant_id, p, self.spread) for p in self.backend.partitions]

    def read(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        """Pending field -> {envelope, error, at} of every event the tenant has set aside."""
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self._keys(tenant_id):
                pipe.hgetall(key)
            found = pipe.execute()
        return {_text(k): json.loads(v) for each in found for k, v in each.items()}

    def take_back(self, tenant_id: str, field: str) -> Envelope | None:
        """Take an event off the poisoned list (to accept it again); None if not there."""
        for key in self._keys(tenant_id):
            raw = self.redis.hget(key, field)
            if raw is not None:
                self.redis.hdel(key, field)
                envelope: Envelope = json.loads(raw)["envelope"]
                return envelope
        return None
