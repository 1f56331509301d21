"""The supervisor's view over the store: what the workers keep of each call, and
what the API reads back (the extension board, the callback items).

The rules live in the pure model (statemachine/extensions.py, callbacks.py);
this module only turns a call's fold into the stored :class:`CallPart` and the
stored parts back into the board and the items. No Flask here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.local_time import UTC_ZONE, local_midnight
from core.store import CallPart, SupervisorView
from statemachine.callbacks import (
    CallbackItem,
    Contact,
    ManualResolution,
    ResolutionKind,
    callback_items,
    contact_from_json,
    contact_of,
)
from statemachine.events import isoformat, micros, parse_time
from statemachine.extensions import (
    ExtensionStatus,
    Leg,
    extension_board,
    leg_from_json,
    legs_of,
)
from statemachine.state import CallView

# The board shows every extension with a leg live now or ended within this
# long (or since the tenant's midnight, if that is earlier): an extension idle for
# longer drops off the board until its next call.
BOARD_WINDOW = timedelta(hours=24)


def call_part(view: CallView, version: int, default_country: str) -> CallPart:
    """What the call folded at ``version`` tells the board and the callbacks.

    Raises ValueError for a bad ``default_country``.
    """
    legs = legs_of(view)
    contact = contact_of(view, default_country)
    settled: int | None = None
    if not view.is_live and not any(leg.is_open for leg in legs):
        times = [view.ended_at, view.facts.last_at, *(leg.ended_at for leg in legs)]
        if contact is not None:
            times.append(contact.at)
        settled = max((micros(t) for t in times if t is not None), default=0)
    return CallPart(
        call_uuid=view.facts.call_uuid,
        version=version,
        legs=[leg.as_json() for leg in legs],
        contact=contact.as_json() if contact is not None else None,
        settled_us=settled,
    )


def day_start(now: datetime, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """Midnight of ``now``'s day in ``zone`` (the tenant's), as a UTC instant:
    where "today's" figures start."""
    return local_midnight(now, zone)


# Each call's legs as read from Redis, by their stored JSON: a call's legs are
# parsed once per process, not on every read of the board (most of its cost).
_parsed: dict[bytes, tuple[Leg, ...]] = {}
PARSED_MAX = 200_000


def _legs_of(raw: bytes) -> tuple[Leg, ...]:
    legs = _parsed.get(raw)
    if legs is None:
        legs = tuple(leg_from_json(leg) for leg in json.loads(raw))
        if len(_parsed) >= PARSED_MAX:
            _parsed.clear()
        _parsed[raw] = legs
    return legs


def board(
    store: SupervisorView, tenant_id: str, now: datetime, zone: ZoneInfo = UTC_ZONE
) -> list[ExtensionStatus]:
    """The tenant's extension board at ``now`` (UTC), in extension-number order, with
    today's figures from midnight in ``zone`` (the tenant's time zone)."""
    start = day_start(now, zone)
    since = min(start, now - BOARD_WINDOW)
    raw = store.raw_legs_since(tenant_id, micros(since))
    return list(extension_board((leg for r in raw for leg in _legs_of(r)), start).values())


def manual_of(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, ManualResolution]:
    return {
        item_id: ManualResolution(parse_time(value["at"]), value["note"])
        for item_id, value in raw.items()
    }


_contacts: dict[bytes, Contact] = {}


def _contact_of(raw: bytes) -> Contact:
    contact = _contacts.get(raw)
    if contact is None:
        contact = contact_from_json(json.loads(raw))
        if len(_contacts) >= PARSED_MAX:
            _contacts.clear()
        _contacts[raw] = contact
    return contact


def callbacks(store: SupervisorView, tenant_id: str) -> list[CallbackItem]:
    """Every callback item of the tenant, oldest miss first."""
    contacts = [_contact_of(raw) for raw in store.raw_contacts(tenant_id)]
    manual = manual_of(store.manual_resolutions(tenant_id))
    return callback_items(tenant_id, contacts, manual)


def callback_json(item: CallbackItem, tenant_id: str) -> dict[str, Any]:
    """An item as the API answers it: ``resolved_by`` is the resolving call's uuid or
    the note given by hand (``resolved_by_kind`` says which)."""
    resolution = item.resolution
    resolved_by: str | None = None
    if resolution is not None:
        if resolution.kind is ResolutionKind.MANUAL:
            resolved_by = resolution.note
        else:
            resolved_by = resolution.call_uuid
    return {
        "id": item.id,
        "tenant_id": tenant_id,
        "number": item.number,
        "missed_call_uuid": item.missed_call_uuid,
        "missed_at": isoformat(item.missed_at),
        "missed_reason": item.missed_reason.value,
        "status": item.status.value,
        "resolved_at": isoformat(resolution.at) if resolution else None,
        "resolved_by": resolved_by,
        "resolved_by_kind": resolution.kind.value if resolution else None,
        "resolved_by_call_uuid": resolution.call_uuid if resolution else None,
        "note": resolution.note if resolution else None,
    }
