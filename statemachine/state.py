"""A call's state as a fold over its events, the same in any arrival order.

Webhooks of one call come from up to four PBX configurations and race each
other, so the fold must not care in which order it sees them. Every field of
:class:`CallFacts` is therefore *merged*, never overwritten: the earliest of
two sightings wins (ties broken by value), sets only grow, the latest time is
the maximum. Merging is commutative, associative and idempotent, which is what
makes ``fold(log)`` equal to applying the same events one by one, in any order,
with any duplicates. What a person wants to read (state name, who answered,
when it ended) is derived from the facts by :class:`CallView`.

Past 400 lines on purpose: each fact, the rule that merges it and the view
that reads it sit in one module, so a new fact is added in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from functools import singledispatch
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from statemachine.events import (
    CallEvent,
    CallTimedOut,
    Did,
    ExtensionAnswered,
    ExtensionCallEnded,
    ExtensionRinging,
    HangupCall,
    InboundCall,
    OutboundCallPlaced,
    Party,
    QueueEntered,
    RingGroupEntered,
    UnknownCallEvent,
    VoicemailLeft,
    isoformat,
)

T = TypeVar("T")


class CallStatus(str, Enum):
    """The live state names of the contract, plus ``ended``."""

    NEW = "new"
    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    DIALING = "dialing"
    ENDED = "ended"


class Direction(str, Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EndedBy(str, Enum):
    HANGUP = "hangup"
    TIMEOUT = "timeout"


@dataclass(frozen=True, order=True)
class Seen(Generic[T]):
    """A value with the moment it was first seen."""

    at: datetime
    value: T


def _earliest(a: Seen[Any] | None, b: Seen[Any] | None) -> Seen[Any] | None:
    # Comparing the whole Seen breaks ties between equal times by value, so the
    # winner does not depend on which one we met first.
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


Times = Mapping[str, datetime]
Names = Mapping[str, Seen[str]]
EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return EMPTY


def _merge_times(a: Times, b: Times, pick: Any = min) -> Times:
    if not b:
        return a
    merged = dict(a)
    for key, moment in b.items():
        merged[key] = pick(merged[key], moment) if key in merged else moment
    return MappingProxyType(merged)


def _merge_names(a: Names, b: Names) -> Names:
    if not b:
        return a
    merged = dict(a)
    for key, seen in b.items():
        merged[key] = _earliest(merged.get(key), seen)  # type: ignore[assignment]
    return MappingProxyType(merged)


@dataclass(frozen=True)
class CallFacts:
    """Everything the events of one call have told us, merged order-free."""

    tenant_id: str
    call_uuid: str
    container: Seen[str] | None = None
    first_at: datetime | None = None
    last_at: datetime | None = None
    inbound: Seen[tuple[Party, Did]] | None = None
    caller_number: Seen[str] | None = None
    caller_name: Seen[str] | None = None
    outbound: Seen[tuple[str, str]] | None = None  # (extension number, number dialed)
    queue: Seen[str] | None = None
    ring_group: Seen[str] | None = None
    extension_names: Names = field(default_factory=_empty)
    rings: Times = field(default_factory=_empty)  # first ring of each extension
    last_rings: Times = field(default_factory=_empty)  # latest ring of each extension
    answers: Times = field(default_factory=_empty)
    voicemails: Times = field(default_factory=_empty)
    extension_ends: Times = field(default_factory=_empty)
    hangup: Seen[str] | None = None  # value: extension named by HangupCall, or ""
    timed_out_at: datetime | None = None

    def merge(self, other: CallFacts) -> CallFacts:
        """Return the facts of both; order of the two does not matter."""
        return CallFacts(
            tenant_id=self.tenant_id,
            call_uuid=self.call_uuid,
            container=_earliest(self.container, other.container),
            first_at=_earliest_time(self.first_at, other.first_at),
            last_at=_latest(self.last_at, other.last_at),
            inbound=_earliest(self.inbound, other.inbound),
            caller_number=_earliest(self.caller_number, other.caller_number),
            caller_name=_earliest(self.caller_name, other.caller_name),
            outbound=_earliest(self.outbound, other.outbound),
            queue=_earliest(self.queue, other.queue),
            ring_group=_earliest(self.ring_group, other.ring_group),
            extension_names=_merge_names(self.extension_names, other.extension_names),
            rings=_merge_times(self.rings, other.rings),
            last_rings=_merge_times(self.last_rings, other.last_rings, max),
            answers=_merge_times(self.answers, other.answers),
            voicemails=_merge_times(self.voicemails, other.voicemails),
            extension_ends=_merge_times(self.extension_ends, other.extension_ends, max),
            hangup=_earliest(self.hangup, other.hangup),
            timed_out_at=_earliest_time(self.timed_out_at, other.timed_out_at),
        )


def _earliest_time(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _seen(at: datetime, value: str) -> Seen[str] | None:
    """A sighting of a non-empty value; empty values tell us nothing."""
    return Seen(at, value) if value else None


def _named(at: datetime, *parties: Party) -> Names:
    return MappingProxyType({p.number: Seen(at, p.name) for p in parties if p.number and p.name})


@singledispatch
def facts_of(event: CallEvent) -> CallFacts:
    """Return what one event tells about its call (its facts alone)."""
    raise TypeError(f"not a call event: {type(event).__name__}")


def _base(event: CallEvent) -> CallFacts:
    at = event.received_at
    return CallFacts(
        tenant_id=event.tenant_id,
        call_uuid=event.call_uuid,
        container=_seen(at, event.container_id),
        first_at=at,
        last_at=at,
        caller_number=_seen(at, event.caller.number),
        caller_name=_seen(at, event.caller.name),
    )


@facts_of.register
def _(event: InboundCall) -> CallFacts:
    return replace(_base(event), inbound=Seen(event.received_at, (event.caller, event.did)))


@facts_of.register
def _(event: HangupCall) -> CallFacts:
    at = event.received_at
    number = event.extension.number
    return replace(
        _base(event),
        hangup=Seen(at, number),
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: ExtensionRinging) -> CallFacts:
    at = event.received_at
    number = event.extension.number
    return replace(
        _base(event),
        rings=MappingProxyType({number: at}) if number else EMPTY,
        last_rings=MappingProxyType({number: at}) if number else EMPTY,
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: RingGroupEntered) -> CallFacts:
    return replace(_base(event), ring_group=_seen(event.received_at, event.ring_group))


@facts_of.register
def _(event: QueueEntered) -> CallFacts:
    return replace(_base(event), queue=_seen(event.received_at, event.queue))


@facts_of.register
def _(event: ExtensionAnswered) -> CallFacts:
    at = event.received_at
    number = event.extension.number
    return replace(
        _base(event),
        # An answer with no extension number still means a person answered.
        answers=MappingProxyType({number: at}),
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: ExtensionCallEnded) -> CallFacts:
    at = event.received_at
    return replace(
        _base(event),
        extension_ends=MappingProxyType({event.extension.number: at}),
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: VoicemailLeft) -> CallFacts:
    at = event.received_at
    number = event.extension.number
    return replace(
        _base(event),
        voicemails=MappingProxyType({number: at}),
        extension_ends=MappingProxyType({number: at}),
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: OutboundCallPlaced) -> CallFacts:
    at = event.received_at
    return replace(
        _base(event),
        outbound=Seen(at, (event.extension.number, event.number_dialed)),
        extension_names=_named(at, event.extension),
    )


@facts_of.register
def _(event: CallTimedOut) -> CallFacts:
    # The engine's own verdict is not a sign of life from the PBX: it must not
    # move first_at/last_at, or the timeout would push the call's end forward.
    return CallFacts(event.tenant_id, event.call_uuid, timed_out_at=event.received_at)


@facts_of.register
def _(event: UnknownCallEvent) -> CallFacts:
    # Kept in the log for inspection; an event we do not understand must not
    # change what we say about the call.
    return CallFacts(event.tenant_id, event.call_uuid)


def apply(facts: CallFacts, event: CallEvent) -> CallFacts:
    """Fold one event into a call's facts."""
    return facts.merge(facts_of(event))


def fold(tenant_id: str, call_uuid: str, events: Iterable[CallEvent]) -> CallFacts:
    """Fold a whole log (any order, duplicates allowed) into the call's facts."""
    facts = CallFacts(tenant_id, call_uuid)
    for event in events:
        facts = apply(facts, event)
    return facts


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


@dataclass(frozen=True)
class CallView:
    """What the facts mean: the call as the API and the outcome rules see it."""

    facts: CallFacts

    # -- identity ---------------------------------------------------------
    @property
    def container_id(self) -> str:
        return self.facts.container.value if self.facts.container else ""

    @property
    def direction(self) -> Direction:
        return Direction.OUTBOUND if self.facts.outbound else Direction.INBOUND

    def party(self, number: str) -> Party:
        seen = self.facts.extension_names.get(number)
        return Party(number, seen.value if seen else "")

    @property
    def caller(self) -> Party | None:
        if self.facts.inbound and self.facts.inbound.value[0].number:
            return self.facts.inbound.value[0]
        if self.direction is Direction.OUTBOUND:
            return None  # the "caller" fields of an outbound call's events are the extension
        number = self.facts.caller_number.value if self.facts.caller_number else ""
        name = self.facts.caller_name.value if self.facts.caller_name else ""
        return Party(number, name) if number or name else None

    @property
    def did(self) -> Did | None:
        return self.facts.inbound.value[1] if self.facts.inbound else None

    @property
    def extension(self) -> Party | None:
        """The extension that placed an outbound call."""
        return self.party(self.facts.outbound.value[0]) if self.facts.outbound else None

    @property
    def number_dialed(self) -> str | None:
        return self.facts.outbound.value[1] if self.facts.outbound else None

    @property
    def queue(self) -> str | None:
        return self.facts.queue.value if self.facts.queue else None

    @property
    def ring_group(self) -> str | None:
        return self.facts.ring_group.value if self.facts.ring_group else None

    # -- what happened ----------------------------------------------------
    @property
    def rang(self) -> list[Party]:
        """Extensions that rang, in the order they first rang, no repeats."""
        order = sorted(self.facts.rings.items(), key=lambda item: (item[1], item[0]))
        return [self.party(number) for number, _ in order]

    @property
    def answered_by(self) -> Party | None:
        """The first extension to answer; failing that, the one HangupCall names."""
        if self.facts.answers:
            number = min(self.facts.answers.items(), key=lambda item: (item[1], item[0]))[0]
            return self.party(number)
        if self.facts.hangup and self.facts.hangup.value:
            return self.party(self.facts.hangup.value)
        return None

    @property
    def answered_at(self) -> datetime | None:
        """When the call was answered.

        Without an ExtensionAnswered event (only HangupCall names the answerer)
        the best estimate is when that extension first rang; without that, we
        do not know and say so (None).
        """
        answered: datetime | None
        if self.facts.answers:
            answered = min(self.facts.answers.values())
        else:
            answerer = self.answered_by
            answered = self.facts.rings.get(answerer.number) if answerer else None
        # An answer webhook can lose the race with the hangup's; a call is not
        # answered after it ended.
        ended = self.ended_at
        if answered is not None and ended is not None and answered > ended:
            return ended
        return answered

    @property
    def voicemail_box(self) -> Party | None:
        if not self.facts.voicemails:
            return None
        number = min(self.facts.voicemails.items(), key=lambda item: (item[1], item[0]))[0]
        return self.party(number)

    @property
    def started_at(self) -> datetime | None:
        return self.facts.first_at

    @property
    def _ended_by_extension(self) -> datetime | None:
        """The end told by an extension event, for calls that get no HangupCall.

        Only outbound calls and calls whose phone number sends no webhooks (no
        InboundCall seen) end this way, once every extension that answered has
        ended its leg (another extension's ring ending says nothing about the
        conversation). The rule looks at which events exist, never at their
        order, so events racing each other cannot change it. The price: in an
        extension-only configuration, a transfer (101 hangs up, 102 rings)
        looks ended until 102 answers; the outcome is then revised.
        """
        ends = self.facts.extension_ends
        if not ends or (self.facts.inbound and not self.facts.outbound):
            return None
        for number in self.facts.answers:
            if number and number not in ends:
                return None
        return max(ends.values())

    @property
    def ended_at(self) -> datetime | None:
        if self.facts.hangup:
            return self.facts.hangup.at
        by_extension = self._ended_by_extension
        if by_extension is not None:
            return by_extension
        if self.facts.timed_out_at is not None:
            # The last sign of life, not the moment we gave up waiting.
            return self.facts.last_at or self.facts.timed_out_at
        return None

    @property
    def ended_by(self) -> EndedBy | None:
        if self.facts.hangup or self._ended_by_extension is not None:
            return EndedBy.HANGUP
        if self.facts.timed_out_at is not None:
            return EndedBy.TIMEOUT
        return None

    @property
    def status(self) -> CallStatus:
        if self.ended_at is not None:
            return CallStatus.ENDED
        if self.answered_by is not None or self.facts.answers:
            return CallStatus.ANSWERED
        if self.direction is Direction.OUTBOUND:
            return CallStatus.DIALING
        if self.facts.rings or self.facts.ring_group:
            return CallStatus.RINGING
        if self.facts.queue:
            return CallStatus.QUEUED
        return CallStatus.NEW

    @property
    def ringing(self) -> list[Party]:
        """Extensions ringing now.

        The PBX sends no "stopped ringing" event, so while the call is in the
        ringing state this is every extension that rang and has not ended its
        leg since; once answered or ended, nobody is ringing.
        """
        if self.status is not CallStatus.RINGING:
            return []
        ends = self.facts.extension_ends
        last_rings = self.facts.last_rings
        return [
            p for p in self.rang if p.number not in ends or ends[p.number] < last_rings[p.number]
        ]

    @property
    def is_live(self) -> bool:
        return self.started_at is not None and self.ended_at is None

    def as_json(self) -> dict[str, Any]:
        """The call as the contract's live-call object (plus ended_at and rang)."""
        answered_by = self.answered_by
        return {
            "call_uuid": self.facts.call_uuid,
            "tenant_id": self.facts.tenant_id,
            "container_id": self.container_id,
            "direction": self.direction.value,
            "state": self.status.value,
            "caller": self.caller.as_json() if self.caller else None,
            "did": self.did.as_json() if self.did else None,
            "number_dialed": self.number_dialed,
            "extension": self.extension.as_json() if self.extension else None,
            "queue": self.queue,
            "ring_group": self.ring_group,
            "ringing": [p.as_json() for p in self.ringing],
            "rang": [p.as_json() for p in self.rang],
            "answered_by": answered_by.as_json() if answered_by else None,
            "started_at": isoformat(self.started_at),
            "answered_at": isoformat(self.answered_at),
            "ended_at": isoformat(self.ended_at),
            "last_event_at": isoformat(self.facts.last_at),
        }


def wait_and_talk(view: CallView) -> tuple[float | None, float | None]:
    """Seconds waited (start to answer, else start to end) and talked.

    None where the answer time is unknown (only HangupCall told us who
    answered, and that extension never rang through a webhook).
    """
    end = view.ended_at
    if view.answered_by is None:
        return _seconds(view.started_at, end), 0.0
    answered_at = view.answered_at
    return _seconds(view.started_at, answered_at), _seconds(answered_at, end)
