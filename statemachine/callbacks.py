"""Callbacks: missed callers, kept open until somebody reaches them.

Each call tells callbacks at most one thing, its :class:`Contact` with a
number: it was missed (an inbound call, abandoned or no_answer), it dialled the
number (an outbound call), or the caller got through (an inbound call that was
answered). Items are derived on read from the set of contacts, comparing their
times — never the order they arrived in — so a call-back that is known before
the miss is decided still resolves it, and a rebuild gives the same items with
the same ids. Manual resolutions are facts of their own, merged earliest-first.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any

from statemachine.events import isoformat, parse_time
from statemachine.outcome import MissedReason, Outcome, classify
from statemachine.phone_numbers import e164
from statemachine.state import EMPTY, CallView, Direction
from statemachine.tenant import TenantFacts

# Unrouted calls never reached a queue or an extension (an IVR hang-up, after
# hours): nobody was there to miss them, so they open no callback.
CALLBACK_REASONS = frozenset({MissedReason.ABANDONED, MissedReason.NO_ANSWER})


class ContactKind(str, Enum):
    MISSED = "missed"  # an inbound call from the number was missed: opens an item
    CALLED_BACK = "called_back"  # an outbound call dialled the number
    ANSWERED = "answered"  # the number called in and was answered


class ResolutionKind(str, Enum):
    CALLED_BACK = "called_back"
    ANSWERED = "answered"
    MANUAL = "manual"


class CallbackStatus(str, Enum):
    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Contact:
    """What one call tells callbacks: its kind, the other party's number, when."""

    call_uuid: str
    kind: ContactKind
    number: str  # E.164
    at: datetime  # missed: the call's end; called back: placed; answered: the answer
    missed_reason: MissedReason | None = None

    def as_json(self) -> dict[str, Any]:
        """The contact as JSON values, for a store to keep (:func:`contact_from_json`)."""
        return {
            "call_uuid": self.call_uuid,
            "kind": self.kind.value,
            "number": self.number,
            "at": isoformat(self.at),
            "missed_reason": self.missed_reason.value if self.missed_reason else None,
        }


def contact_from_json(data: Mapping[str, Any]) -> Contact:
    """Read back :meth:`Contact.as_json`. Raises KeyError/ValueError on a malformed one."""
    reason = data["missed_reason"]
    return Contact(
        call_uuid=data["call_uuid"],
        kind=ContactKind(data["kind"]),
        number=data["number"],
        at=parse_time(data["at"]),
        missed_reason=MissedReason(reason) if reason is not None else None,
    )


def contact_of(view: CallView, default_country: str) -> Contact | None:
    """The call's contact, if it has one; live calls can already count.

    An outbound call counts from the moment it is placed, answered or not; an
    inbound call once it is answered (the caller got through) or, once it has
    ended unanswered, as a miss. Raises ValueError for a bad default country.
    """
    uuid = view.facts.call_uuid
    if view.direction is Direction.OUTBOUND:
        dialled = e164(view.number_dialed or "", default_country)
        if dialled is None or view.started_at is None:
            return None
        return Contact(uuid, ContactKind.CALLED_BACK, dialled, view.started_at)
    caller = e164(view.caller.number if view.caller else "", default_country)
    if caller is None:
        return None
    if view.answered_by is not None:
        # Known only from HangupCall with no ring seen: it got through by the end.
        got_through = view.answered_at or view.ended_at
        if got_through is None:
            return None
        return Contact(uuid, ContactKind.ANSWERED, caller, got_through)
    if view.ended_at is None:
        return None
    outcome, reason = classify(view)
    if outcome is Outcome.MISSED and reason in CALLBACK_REASONS:
        return Contact(uuid, ContactKind.MISSED, caller, view.ended_at, reason)
    return None


def contact_of_record(record: Mapping[str, Any], default_country: str) -> Contact | None:
    """The contact of a call from its outcome record (any revision): as :func:`contact_of`.

    For a store that follows outcomes rather than folds. Raises KeyError or
    ValueError on a record that is not an outcome record.
    """
    uuid = record["call_uuid"]
    outcome = Outcome(record["outcome"])

    def when(*names: str) -> datetime | None:
        for name in names:
            if record.get(name):
                return parse_time(record[name])
        return None

    if outcome is Outcome.OUTBOUND:
        dialled = e164(record.get("number_dialed") or "", default_country)
        placed = when("started_at")
        if dialled is None or placed is None:
            return None
        return Contact(uuid, ContactKind.CALLED_BACK, dialled, placed)
    caller = e164((record.get("caller") or {}).get("number", ""), default_country)
    if caller is None:
        return None
    if outcome is Outcome.ANSWERED:
        got_through = when("answered_at", "ended_at")
        return Contact(uuid, ContactKind.ANSWERED, caller, got_through) if got_through else None
    reason = MissedReason(record["missed_reason"]) if record.get("missed_reason") else None
    ended = when("ended_at")
    if outcome is Outcome.MISSED and reason in CALLBACK_REASONS and ended is not None:
        return Contact(uuid, ContactKind.MISSED, caller, ended, reason)
    return None


def callback_id(tenant_id: str, missed_call_uuid: str) -> str:
    """The item's id: a function of the missed call alone, so a rebuild gives the same id."""
    digest = hashlib.sha256(f"{tenant_id}\x00{missed_call_uuid}".encode("utf-8", "surrogatepass"))
    return "cb_" + digest.hexdigest()[:24]


@dataclass(frozen=True)
class ManualResolution:
    """Somebody marked an item resolved by hand, at ``at``, saying ``note``."""

    at: datetime
    note: str


def merge_manual(
    a: Mapping[str, ManualResolution], b: Mapping[str, ManualResolution]
) -> Mapping[str, ManualResolution]:
    """Manual resolutions of both, by item id; the earliest of two for one item wins."""
    if not b:
        return a
    merged = dict(a)
    for item_id, resolution in b.items():
        known = merged.get(item_id)
        if known is None or (resolution.at, resolution.note) < (known.at, known.note):
            merged[item_id] = resolution
    return MappingProxyType(merged)


@dataclass(frozen=True)
class Resolution:
    """How and when an item was resolved: by a call (``call_uuid``) or by hand (``note``)."""

    kind: ResolutionKind
    at: datetime
    call_uuid: str | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "call_uuid": self.call_uuid, "note": self.note}


@dataclass(frozen=True)
class CallbackItem:
    """A missed caller to call back: open until resolved."""

    id: str
    number: str
    missed_call_uuid: str
    missed_at: datetime
    missed_reason: MissedReason
    resolution: Resolution | None

    @property
    def status(self) -> CallbackStatus:
        return CallbackStatus.RESOLVED if self.resolution else CallbackStatus.OPEN

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "missed_call_uuid": self.missed_call_uuid,
            "missed_at": isoformat(self.missed_at),
            "missed_reason": self.missed_reason.value,
            "status": self.status.value,
            "resolved_at": isoformat(self.resolution.at) if self.resolution else None,
            "resolved_by": self.resolution.as_json() if self.resolution else None,
        }


_BY_CALL = {
    ContactKind.CALLED_BACK: ResolutionKind.CALLED_BACK,
    ContactKind.ANSWERED: ResolutionKind.ANSWERED,
}
_RANK = {ResolutionKind.CALLED_BACK: 0, ResolutionKind.ANSWERED: 1, ResolutionKind.MANUAL: 2}


def _first(resolutions: Sequence[Resolution]) -> Resolution | None:
    # The earliest wins; at the same moment, a call before a note (the call is
    # what reached the caller), then by call and note so the winner is unique.
    if len(resolutions) == 1:  # nearly always (no note by hand): min of one, faster
        return resolutions[0]
    return min(
        resolutions,
        key=lambda r: (r.at, _RANK[r.kind], r.call_uuid or "", r.note or ""),
        default=None,
    )


def callback_items(
    tenant_id: str,
    contacts: Iterable[Contact],
    manual: Mapping[str, ManualResolution] = EMPTY,
) -> list[CallbackItem]:
    """Every missed caller's item, oldest miss first, resolved where someone reached them.

    A miss is resolved by the first call that reached its number at or after
    the miss (an outbound call to it, or an inbound call from it that was
    answered), or by a manual resolution, whichever came first. A contact
    given twice counts once; raises ValueError if two contacts name one call
    differently.
    """
    by_call: dict[str, Contact] = {}
    for contact in contacts:
        known = by_call.setdefault(contact.call_uuid, contact)
        if known != contact:
            raise ValueError(f"two different contacts for call {contact.call_uuid!r}")
    reached: dict[str, list[tuple[datetime, str, ContactKind]]] = {}
    for contact in by_call.values():
        if contact.kind is not ContactKind.MISSED:
            reached.setdefault(contact.number, []).append(
                (contact.at, contact.call_uuid, contact.kind)
            )
    for times in reached.values():
        times.sort()
    items = []
    for miss in by_call.values():
        if miss.kind is not ContactKind.MISSED or miss.missed_reason is None:
            continue
        item_id = callback_id(tenant_id, miss.call_uuid)
        candidates: list[Resolution] = []
        later = reached.get(miss.number, [])
        # A call placed before the miss is no call-back, however late it ended.
        index = bisect.bisect_left(later, (miss.at,))
        if index < len(later):
            at, call_uuid, kind = later[index]
            candidates.append(Resolution(_BY_CALL[kind], at, call_uuid=call_uuid))
        by_hand = manual.get(item_id)
        if by_hand is not None:
            candidates.append(Resolution(ResolutionKind.MANUAL, by_hand.at, note=by_hand.note))
        items.append(
            CallbackItem(
                item_id,
                miss.number,
                miss.call_uuid,
                miss.at,
                miss.missed_reason,
                _first(candidates),
            )
        )
    items.sort(key=lambda item: (item.missed_at, item.id))
    return items


def tenant_callbacks(
    facts: TenantFacts,
    default_country: str,
    manual: Mapping[str, ManualResolution] = EMPTY,
) -> list[CallbackItem]:
    """The callback items of a tenant's calls, as :func:`callback_items` derives them."""
    contacts = (contact_of(view, default_country) for view in facts.views())
    return callback_items(facts.tenant_id, (c for c in contacts if c is not None), manual)
