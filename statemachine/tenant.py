"""The facts of many calls of one tenant, merged call by call.

The supervisor's view (the extension board, the callbacks) is a fold over the
events of *many* calls, not one. Rather than inventing facts of its own, it
keeps each call's :class:`CallFacts` — already merged order-free — side by side
and merges them call by call. A mapping merged pointwise with an order-free
merge is itself order-free (commutative, associative, idempotent), so the
whole tenant's facts are too, and everything derived from them on read (legs,
the board, callback items) does not depend on arrival order or duplicates.

A store does not need to keep this object: whatever it derives from one call's
facts (that call's legs, its callback contact) it can keep per call and
replace each time it folds that call again, which is exactly what merging the
call's newer facts in here means.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from statemachine.events import CallEvent
from statemachine.state import EMPTY, CallFacts, CallView, facts_of, fold


def _no_calls() -> Mapping[str, CallFacts]:
    return EMPTY


@dataclass(frozen=True)
class TenantFacts:
    """Every call of one tenant, by ``call_uuid``, each call's facts merged order-free."""

    tenant_id: str
    calls: Mapping[str, CallFacts] = field(default_factory=_no_calls)

    def merge(self, other: TenantFacts) -> TenantFacts:
        """Return the facts of both; the order of the two does not matter.

        Raises ValueError for another tenant's facts: tenants never mix.
        """
        if other.tenant_id != self.tenant_id:
            raise ValueError(f"cannot merge tenant {other.tenant_id!r} into {self.tenant_id!r}")
        if not other.calls:
            return self
        merged = dict(self.calls)
        for call_uuid, facts in other.calls.items():
            mine = merged.get(call_uuid)
            merged[call_uuid] = facts if mine is None else mine.merge(facts)
        return TenantFacts(self.tenant_id, MappingProxyType(merged))

    def views(self) -> Iterator[CallView]:
        """Each call's view, in ``call_uuid`` order (so derived lists come out the same)."""
        for call_uuid in sorted(self.calls):
            yield CallView(self.calls[call_uuid])


def tenant_facts_of(event: CallEvent) -> TenantFacts:
    """What one event tells about its tenant's calls."""
    return TenantFacts(event.tenant_id, MappingProxyType({event.call_uuid: facts_of(event)}))


def fold_tenant(tenant_id: str, events: Iterable[CallEvent]) -> TenantFacts:
    """Fold the events of many calls (any order, duplicates allowed) into a tenant's facts.

    Raises ValueError if an event belongs to another tenant.
    """
    by_call: dict[str, list[CallEvent]] = {}
    for event in events:
        if event.tenant_id != tenant_id:
            raise ValueError(f"an event of tenant {event.tenant_id!r} is not {tenant_id!r}'s")
        by_call.setdefault(event.call_uuid, []).append(event)
    # One fold per call, not one merge per event: the same facts (merging is
    # order-free), without copying the tenant's mapping once per event.
    calls = {uuid: fold(tenant_id, uuid, call_events) for uuid, call_events in by_call.items()}
    return TenantFacts(tenant_id, MappingProxyType(calls))
