"""The extension board: who is ringing, on a call or idle, derived from call events.

PrimeVOX sends no agent-status events, so an extension's state is read off the
calls it takes part in. Each extension's part in one call is a :class:`Leg`,
derived from that call's merged facts (:class:`CallFacts`); the board is
derived from the legs of every call. Why legs are derived rather than merged
facts of their own: whether 102's ring is still going depends on the call's
end and on *other* extensions' answers — facts of the whole call, which
CallFacts already merges order-free and CallView already interprets (the
call's end above all). A leg is therefore a function of its call's facts: it
is order-free because they are, and a store keeps one leg per (extension,
call), replacing all legs of a call whenever it folds that call again.

PrimeVOX sends no "stopped ringing" either: a ring stops when the extension's
own leg ends, when anyone answers after it began, or when the call ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from statemachine.events import Party, isoformat, parse_time
from statemachine.state import CallView, Direction
from statemachine.tenant import TenantFacts


class LegState(str, Enum):
    """One extension's part in one call."""

    RINGING = "ringing"
    ON_CALL = "on_call"
    ENDED = "ended"


class ExtensionState(str, Enum):
    """An extension on the board: the contract's states, plus ``unknown`` (never seen)."""

    RINGING = "ringing"
    ON_CALL = "on_call"
    IDLE = "idle"
    UNKNOWN = "unknown"


def call_closes(view: CallView, begun_at: datetime | None) -> datetime | None:
    """When the call's end closes a leg (or a phase) that began at ``begun_at``; None if not.

    A HangupCall or the engine's timeout closes everything, even a webhook
    that lost the race with the hangup's (it counts as at the end, as state.py
    counts a late answer). An end told only by
    extension events (a call without HangupCall) closes only what began
    before it: a ring after it is an extension-only transfer (101 hung up its
    leg, 102 rings), which state.py's end rule cannot see yet, and 102 keeps
    ringing on the board until its own end, an answer or the call's next end.
    """
    end = view.ended_at
    if end is None:
        return None
    if begun_at is None or end >= begun_at or view.facts.hangup is not None:
        return end
    if view.facts.timed_out_at is not None:
        # The timeout ends the call at its last sign of life, which is never
        # before anything the call's events began.
        return max(view.facts.last_at or begun_at, begun_at)
    return None


def stop_of(view: CallView, begun_at: datetime, *also: datetime | None) -> datetime | None:
    """When something begun at ``begun_at`` (a ring, a wait) stopped: None while it goes on.

    It stops at the first answer after it began (PBX sends no "stopped
    ringing": anyone answering stops the ringing), at the call's end, or at
    any of ``also`` (the ringing extension's own end, the next queue) that is
    not before it began.
    """
    stops = [t for t in view.facts.answers.values() if t >= begun_at]
    stops += [t for t in also if t is not None and t >= begun_at]
    closed = call_closes(view, begun_at)
    if closed is not None:
        stops.append(closed)
    return min(stops, default=None)


def _seconds(start: datetime, end: datetime) -> float:
    return round(max((end - start).total_seconds(), 0.0), 3)


@dataclass(frozen=True)
class Leg:
    """One extension's part in one call, as the call's facts say now."""

    extension: Party
    call_uuid: str
    direction: Direction
    state: LegState
    placed: bool  # this extension placed the (outbound) call
    answered: bool  # this extension answered a call offered to it
    missed: bool  # it rang, ended unanswered, and nobody answered while it rang
    started_at: datetime | None  # first ring, answer or placing; None if only an end was seen
    since: datetime | None  # when the current state began; the end for an ended leg
    answered_at: datetime | None  # when this extension answered (None if unknown or not)
    ended_at: datetime | None
    talk_seconds: float | None  # an ended leg's talk; None while live or when unknown

    @property
    def is_open(self) -> bool:
        return self.state is not LegState.ENDED

    def as_json(self) -> dict[str, Any]:
        """The leg as JSON values, for a store to keep (:func:`leg_from_json` reads it back)."""
        return {
            "extension": self.extension.as_json(),
            "call_uuid": self.call_uuid,
            "direction": self.direction.value,
            "state": self.state.value,
            "placed": self.placed,
            "answered": self.answered,
            "missed": self.missed,
            "started_at": isoformat(self.started_at),
            "since": isoformat(self.since),
            "answered_at": isoformat(self.answered_at),
            "ended_at": isoformat(self.ended_at),
            "talk_seconds": self.talk_seconds,
        }


def _time(text: str | None) -> datetime | None:
    return parse_time(text) if text is not None else None


def leg_from_json(data: Mapping[str, Any]) -> Leg:
    """Read back :meth:`Leg.as_json`. Raises KeyError/ValueError on a malformed leg."""
    talk = data["talk_seconds"]
    return Leg(
        extension=Party(**data["extension"]),
        call_uuid=data["call_uuid"],
        direction=Direction(data["direction"]),
        state=LegState(data["state"]),
        placed=bool(data["placed"]),
        answered=bool(data["answered"]),
        missed=bool(data["missed"]),
        started_at=_time(data["started_at"]),
        since=_time(data["since"]),
        answered_at=_time(data["answered_at"]),
        ended_at=_time(data["ended_at"]),
        talk_seconds=float(talk) if talk is not None else None,
    )


def legs_of(view: CallView) -> tuple[Leg, ...]:
    """Every extension's part in the call, by extension number.

    An extension takes part if it rang, answered, ended a leg, placed the
    call, or is named by the call's HangupCall. A voicemail left in its box
    alone is no part: the caller spoke to the mailbox, not to the extension.
    """
    facts = view.facts
    placer = facts.outbound.value[0] if facts.outbound else ""
    named = facts.hangup.value if facts.hangup else ""
    took_part = {*facts.rings, *facts.answers, placer, named}
    numbers = took_part | {n for n in facts.extension_ends if n not in facts.voicemails}
    numbers |= {n for n in facts.voicemails if n in took_part}
    numbers.discard("")  # an answer without a number: a person answered, no extension known
    return tuple(_leg(view, number) for number in sorted(numbers))


def _answered_while_ringing(view: CallView, number: str, start: datetime, stop: datetime) -> bool:
    """Did another extension answer while ``number`` rang from ``start`` to ``stop``?

    An answerer known only from HangupCall answered when it first rang (the
    rule state.py uses); if it never rang through a webhook its answer time
    is unknown, and the benefit of the doubt goes to the ringing extension.
    """
    facts = view.facts
    if any(start <= t <= stop for other, t in facts.answers.items() if other != number):
        return True
    named = facts.hangup.value if facts.hangup else ""
    if named and named != number and named not in facts.answers:
        rang = facts.rings.get(named)
        return rang is None or start <= rang <= stop
    return False


def _leg(view: CallView, number: str) -> Leg:
    facts = view.facts
    first_ring = facts.rings.get(number)
    last_ring = facts.last_rings.get(number)
    own_end = facts.extension_ends.get(number)
    # Rung again after its leg ended (a transfer back): a new ring period.
    rerung = own_end is not None and last_ring is not None and own_end < last_ring
    ring_from = first_ring
    if rerung and first_ring is not None and own_end is not None and first_ring <= own_end:
        ring_from = last_ring
    placed_at = facts.outbound.at if facts.outbound and facts.outbound.value[0] == number else None
    named = facts.hangup is not None and facts.hangup.value == number
    answered = number in facts.answers or named
    # Only HangupCall said it answered: it answered when it first rang, or unknown.
    answer = facts.answers.get(number, first_ring if named else None)
    # It answered an earlier ring period of this call, and now rings again.
    answered_earlier = (
        answered and rerung and answer is not None and ring_from is not None and answer < ring_from
    )

    if placed_at is not None:
        state, begun = LegState.ON_CALL, placed_at
    elif answered and answer is not None and not answered_earlier:
        state, begun = LegState.ON_CALL, answer
    elif ring_from is not None:
        state, begun = LegState.RINGING, ring_from
    else:
        state, begun = LegState.ENDED, None  # only an end (or HangupCall) told of it

    if state is LegState.RINGING and ring_from is not None:
        ended_at = stop_of(view, ring_from, own_end)
    else:
        # The completion webhook can race ahead of the answer's: the leg's own
        # end closes it unless the extension rang again after that end.
        closers = [call_closes(view, begun), None if rerung else own_end]
        ended_at = min((t for t in closers if t is not None), default=None)

    starts = [t for t in (first_ring, answer, placed_at) if t is not None]
    started_at = min(starts, default=None)
    if ended_at is not None and started_at is not None:
        # A webhook that lost the race with the end counts as at the end.
        started_at = min(started_at, ended_at)
    answered_at = answer
    if answered_at is not None and ended_at is not None:
        answered_at = min(answered_at, ended_at)

    talk: float | None = None
    if ended_at is not None:
        if placed_at is not None:
            # The placer talks from when the call was answered, by whoever
            # (the far end, or the extension an internal call rang).
            talk = _seconds(view.answered_at, ended_at) if view.answered_at else 0.0
        elif answered:
            talk_end = own_end if answered_earlier and own_end is not None else ended_at
            talk = _seconds(answered_at, talk_end) if answered_at is not None else None
        else:
            talk = 0.0

    missed = (
        ended_at is not None
        and placed_at is None
        and not answered
        and ring_from is not None
        and not _answered_while_ringing(view, number, ring_from, ended_at)
    )
    return Leg(
        extension=view.party(number),
        call_uuid=facts.call_uuid,
        direction=view.direction,
        state=LegState.ENDED if ended_at is not None else state,
        placed=placed_at is not None,
        answered=answered and placed_at is None,
        missed=missed,
        started_at=started_at,
        since=ended_at if ended_at is not None else begun,
        answered_at=answered_at if placed_at is None else None,
        ended_at=ended_at,
        talk_seconds=talk,
    )


# -- the board ------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCounts:
    """An extension's figures for one day (or any window)."""

    answered: int = 0  # calls offered to it that it answered, counted when answered
    missed: int = 0  # rings it let go unanswered, counted when the ring stopped
    talk_seconds: float = 0.0  # talk of its legs that ended in the window, both directions
    outbound: int = 0  # calls it placed, counted when placed


@dataclass(frozen=True)
class ExtensionStatus:
    """One extension on the board."""

    extension: Party
    state: ExtensionState
    since: datetime | None
    call_uuid: str | None  # the current call: the latest leg in the board's state
    calls: tuple[str, ...]  # every call it rings in or is on, oldest first
    today: DayCounts

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.extension.number,
            "name": self.extension.name,
            "state": self.state.value,
            "since": isoformat(self.since),
            "call_uuid": self.call_uuid,
            "calls": list(self.calls),
            "answered": self.today.answered,
            "missed": self.today.missed,
            "talk_seconds": round(self.today.talk_seconds, 3),
            "outbound": self.today.outbound,
        }


def unknown_extension(number: str) -> ExtensionStatus:
    """The status of an extension no call has shown us."""
    return ExtensionStatus(Party(number), ExtensionState.UNKNOWN, None, None, (), DayCounts())


def _within(moment: datetime | None, start: datetime, end: datetime | None) -> bool:
    return moment is not None and start <= moment and (end is None or moment < end)


def _counts(legs: Iterable[Leg], start: datetime, end: datetime | None) -> DayCounts:
    answered = missed = outbound = 0
    talks: list[float] = []
    for leg in legs:
        if leg.answered and _within(leg.answered_at or leg.ended_at, start, end):
            answered += 1
        if leg.missed and _within(leg.ended_at, start, end):
            missed += 1
        if leg.placed and _within(leg.started_at, start, end):
            outbound += 1
        if leg.talk_seconds is not None and _within(leg.ended_at, start, end):
            talks.append(leg.talk_seconds)
    # fsum: the total must not depend on the order the legs come in.
    return DayCounts(answered, missed, math.fsum(talks), outbound)


def _name(legs: list[Leg]) -> str:
    """The name the latest leg gave the extension (a rename shows up)."""
    named = [
        (leg.started_at or leg.ended_at, leg.extension.name) for leg in legs if leg.extension.name
    ]
    return max(named, key=lambda item: (item[0] is not None, item))[1] if named else ""


def _status(number: str, legs: list[Leg], start: datetime, end: datetime | None) -> ExtensionStatus:
    today = _counts(legs, start, end)
    party = Party(number, _name(legs))
    open_legs = sorted(
        (leg for leg in legs if leg.is_open and leg.since is not None),
        key=lambda leg: (leg.since, leg.call_uuid),
    )
    calls = tuple(leg.call_uuid for leg in open_legs)
    # Talking outranks ringing (a call waiting rings an extension already on a
    # call); of several legs in that state, the latest is the current one, so
    # a leg whose end never came does not hide what happens now.
    for leg_state, state in (
        (LegState.ON_CALL, ExtensionState.ON_CALL),
        (LegState.RINGING, ExtensionState.RINGING),
    ):
        current = [leg for leg in open_legs if leg.state is leg_state]
        if current:
            return ExtensionStatus(
                party, state, current[-1].since, current[-1].call_uuid, calls, today
            )
    ends = [leg.ended_at for leg in legs if leg.ended_at is not None]
    return ExtensionStatus(party, ExtensionState.IDLE, max(ends, default=None), None, (), today)


def _number_order(number: str) -> tuple[int, int, str]:
    # 9 before 10 before 101: extensions are numbers to the people reading the board.
    if number.isascii() and number.isdigit():
        return (0, int(number), number)
    return (1, 0, number)


def extension_board(
    legs: Iterable[Leg], day_start: datetime, day_end: datetime | None = None
) -> dict[str, ExtensionStatus]:
    """Every extension the legs show, by number, with its figures from ``day_start`` on.

    ``day_end`` bounds the figures' window (exclusive); None counts up to now.
    A leg given twice counts once.
    """
    by_number: dict[str, set[Leg]] = {}
    for leg in legs:
        by_number.setdefault(leg.extension.number, set()).add(leg)
    return {
        number: _status(number, list(by_number[number]), day_start, day_end)
        for number in sorted(by_number, key=_number_order)
    }


def status_of(board: Mapping[str, ExtensionStatus], number: str) -> ExtensionStatus:
    """The board's entry for ``number``; ``unknown`` if no call has shown it."""
    return board.get(number) or unknown_extension(number)


def tenant_board(
    facts: TenantFacts, day_start: datetime, day_end: datetime | None = None
) -> dict[str, ExtensionStatus]:
    """The board of a tenant's calls: every call's legs, then :func:`extension_board`."""
    legs = (leg for view in facts.views() for leg in legs_of(view))
    return extension_board(legs, day_start, day_end)
