"""The supervisor's view: extension legs, callback contacts, manual resolutions.

Every entry is derived from one call's fold and replaced whole each time the
call is folded again, so the board and the callbacks are order-free like the
call itself, and `flask rebuild` writes them again from the logs. Only manual
resolutions are facts of their own (never rebuilt, never derived). Each
operation touches keys of one tenant only, never in a script with a call's
own keys (the keys: ``keys.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.commands.core import Script

from core.store.backend import Backend, Part
from core.store.keys import (
    _supervisor_keys,
    contacts_key,
    legs_key,
    manual_resolutions_key,
    outcomes_key,
    partition_for,
    supervisor_calls_key,
    supervisor_stamp_key,
    supervisor_versions_key,
)
from core.store.values import _text, dumps
from statemachine.outcome import OutcomeRecord


@dataclass(frozen=True)
class CallPart:
    """What one call, folded at ``version``, tells the supervisor's view."""

    call_uuid: str
    version: int
    legs: Sequence[dict[str, Any]]  # Leg.as_json() of each extension's leg
    contact: dict[str, Any] | None  # Contact.as_json(), or None
    settled_us: int | None  # when the call's part stopped changing (us); None: still live


class SupervisorView(Part):
    """The supervisor's view in Redis: per-call parts, replaced whole, and manual facts."""

    PRUNE_BATCH = 100

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._save: Script = backend.script("save_call_parts")

    def save_parts(self, tenant_id: str, parts: Sequence[CallPart], now: float) -> None:
        """Replace the stored parts of these calls (one round trip), unless a newer
        fold of a call is stored already; prune calls settled before retention."""
        if parts:
            # Through the backend's script runner: a cluster's pipeline refuses scripts.
            self.backend.eval_all(self.save_calls(tenant_id, parts, now))

    def save_calls(
        self, tenant_id: str, parts: Sequence[CallPart], now: float
    ) -> list[tuple[Script, Sequence[str], Sequence[Any]]]:
        """The script calls of :meth:`save_parts`, to send with others in one round trip."""
        prune_before = int((now - self.backend.retention_seconds) * 1_000_000)
        keys = _supervisor_keys(tenant_id)
        calls: list[tuple[Script, Sequence[str], Sequence[Any]]] = [
            (
                self._save,
                keys,
                [
                    part.call_uuid,
                    part.version,
                    dumps(list(part.legs)) if part.legs else "",
                    dumps(part.contact) if part.contact is not None else "",
                    "+inf" if part.settled_us is None else part.settled_us,
                    prune_before,
                    self.PRUNE_BATCH,
                ],
            )
            for part in parts
        ]
        return calls

    def part(self, tenant_id: str, call_uuid: str) -> tuple[list[dict[str, Any]], Any, int]:
        """A call's stored legs, contact (None if none) and version (-1 if never stored)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(legs_key(tenant_id), call_uuid)
            pipe.hget(contacts_key(tenant_id), call_uuid)
            pipe.hget(supervisor_versions_key(tenant_id), call_uuid)
            legs, contact, version = pipe.execute()
        return (
            json.loads(legs) if legs is not None else [],
            json.loads(contact) if contact is not None else None,
            int(version) if version is not None else -1,
        )

    def legs_since(self, tenant_id: str, since_us: int) -> list[dict[str, Any]]:
        """The legs of every call live now or settled at or after ``since_us``."""
        return [leg for raw in self.raw_legs_since(tenant_id, since_us) for leg in json.loads(raw)]

    def raw_legs_since(self, tenant_id: str, since_us: int) -> list[bytes]:
        """:meth:`legs_since`, as each call's stored JSON list (for a reader that caches)."""
        uuids = cast(
            list[bytes], self.redis.zrangebyscore(supervisor_calls_key(tenant_id), since_us, "+inf")
        )
        if not uuids:
            return []
        raw = cast(list[bytes | None], self.redis.hmget(legs_key(tenant_id), uuids))
        return [legs for legs in raw if legs is not None]

    def contacts(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every stored callback contact of the tenant (within retention)."""
        return [json.loads(raw) for raw in self.raw_contacts(tenant_id)]

    def raw_contacts(self, tenant_id: str) -> list[bytes]:
        """:meth:`contacts`, each as its stored JSON (for a reader that caches)."""
        return cast(list[bytes], self.redis.hvals(contacts_key(tenant_id)))

    def manual_resolutions(self, tenant_id: str) -> dict[str, dict[str, Any]]:
        """Item id -> {at, note} of every item resolved by hand."""
        raw = self.redis.hgetall(manual_resolutions_key(tenant_id))
        return {_text(k): json.loads(v) for k, v in raw.items()}

    def resolve_by_hand(self, tenant_id: str, item_id: str, resolution: dict[str, Any]) -> bool:
        """Record a manual resolution unless the item has one; False if it had."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(manual_resolutions_key(tenant_id), item_id, dumps(resolution))
            pipe.incr(supervisor_stamp_key(tenant_id))
            written, _ = pipe.execute()
        return bool(written)

    def stamps(self, tenant_ids: Sequence[str]) -> list[int]:
        """Each tenant's change counter (one round trip): equal stamps, equal view."""
        if not tenant_ids:
            return []
        # GETs in a pipeline, not MGET: on a cluster each tenant's stamp is in its own slot.
        with self.redis.pipeline(transaction=False) as pipe:
            for tenant_id in tenant_ids:
                pipe.get(supervisor_stamp_key(tenant_id))
            raw = pipe.execute()
        return [int(r) if r is not None else 0 for r in raw]

    def outcome_revisions(
        self, tenant_id: str, call_uuid: str, start_us: int, last_id: str, cap: int = 20_000
    ) -> list[tuple[str, OutcomeRecord]]:
        """The call's outcome records (id, record), from the tenant's outcome stream
        between ``start_us`` and ``last_id`` (its latest revision's id), reading at
        most ``cap`` entries of other calls on the way."""
        found: list[tuple[str, OutcomeRecord]] = []
        # On a cluster a call's records go to its partition's stream.
        stream = outcomes_key(tenant_id, partition_for(call_uuid), self.spread)
        cursor, read, batch = str(max(start_us, 0)), 0, 1000
        while read < cap:
            entries = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                self.redis.xrange(stream, min=cursor, max=last_id, count=batch),
            )
            for raw_id, fields in entries:
                record = json.loads(fields[b"record"])
                if record.get("call_uuid") == call_uuid:
                    found.append((_text(raw_id), record))
            read += len(entries)
            if len(entries) < batch:
                break
            cursor = f"({_text(entries[-1][0])}"
        return found
