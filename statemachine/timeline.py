"""A call's story, told from its log: each webhook in received order, in words.

Durations come from the call's merged facts, not from neighbouring lines: a
ring lasted until it stopped (its own end, an answer, the call's end) however
the webhooks around it were ordered. The log is in received order, so is the
story; steps no webhook carries (how long a person talked, the outcome and its
revisions) go where their time puts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import singledispatchmethod
from typing import Any

from statemachine.events import (
    CallEvent,
    CallTimedOut,
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
from statemachine.extensions import legs_of, stop_of
from statemachine.state import CallView, fold


class StepKind(str, Enum):
    CALL = "call"  # InboundCall: the call reached the PBX
    OUTBOUND = "outbound"  # an extension placed the call
    QUEUE = "queue"
    RING_GROUP = "ring_group"
    RING = "ring"  # one or more extensions rang
    ANSWER = "answer"
    TALK = "talk"  # how long one extension talked (no webhook of its own)
    LEG_END = "leg_end"  # an extension hung up, or stopped ringing
    VOICEMAIL = "voicemail"
    HANGUP = "hangup"
    TIMEOUT = "timeout"  # the engine ended a silent call
    UNKNOWN = "unknown"  # an event type we do not understand, kept
    OUTCOME = "outcome"  # the outcome, or a revision of it


@dataclass(frozen=True)
class Step:
    """One line of the story."""

    at: datetime
    kind: StepKind
    text: str
    seconds: float | None = None  # how long what this step tells lasted, where it has a length

    def as_json(self) -> dict[str, Any]:
        return {
            "at": isoformat(self.at),
            "kind": self.kind.value,
            "text": self.text,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class OutcomeRevision:
    """An outcome record as the timeline needs it, with when it was decided."""

    revision: int
    decided_at: datetime
    outcome: str
    missed_reason: str | None = None
    answered_by: Party | None = None
    voicemail_box: Party | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], decided_at: datetime) -> OutcomeRevision:
        """Read an outcome record. Raises KeyError on one without revision or outcome."""

        def party(name: str) -> Party | None:
            value = record.get(name)
            return Party(value.get("number", ""), value.get("name", "")) if value else None

        return cls(
            revision=int(record["revision"]),
            decided_at=decided_at,
            outcome=record["outcome"],
            missed_reason=record.get("missed_reason"),
            answered_by=party("answered_by"),
            voicemail_box=party("voicemail_box"),
        )


def duration(seconds: float) -> str:
    """Say a duration the way a person would: "34 s", "3 min 10 s", "1 h 5 min"."""
    if 0 < seconds < 0.5:
        return "under 1 s"
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min" if rest // 60 else f"{hours} h"


def _who(party: Party) -> str:
    return " ".join(part for part in (party.number, party.name) if part) or "someone"


def _labelled(number: str, label: str) -> str:
    """A phone number with its label in brackets: "+15551234567 (Ada Lovelace)"."""
    if number and label:
        return f"{number} ({label})"
    return number or label


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _span(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0), 3)


class _Story:
    """Turns each event of one call into its step, knowing the whole call."""

    def __init__(self, events: Sequence[CallEvent], view: CallView) -> None:
        self.view = view
        self.routing = sorted(
            e.received_at for e in events if isinstance(e, QueueEntered | RingGroupEntered)
        )

    def _next_routing(self, at: datetime) -> datetime | None:
        # A call moved on from this queue or ring group when it entered the next one.
        return next((t for t in self.routing if t > at), None)

    def _routed(self, at: datetime, kind: StepKind, done: str, going: str) -> Step:
        """A queue or ring group: until answered, ended, or routed on to the next one."""
        stop = stop_of(self.view, at, self._next_routing(at))
        seconds = _span(at, stop)
        text = done.format(duration(seconds)) if seconds is not None else going
        return Step(at, kind, text, seconds)

    def rings(self, group: list[ExtensionRinging]) -> Step:
        at = group[0].received_at
        names = _listed(
            list(dict.fromkeys(_who(self.view.party(e.extension.number)) for e in group))
        )
        ends = self.view.facts.extension_ends
        stops = [stop_of(self.view, e.received_at, ends.get(e.extension.number)) for e in group]
        if any(stop is None for stop in stops):
            return Step(at, StepKind.RING, f"ringing {names}")
        seconds = _span(at, max(s for s in stops if s is not None))
        return Step(at, StepKind.RING, f"rang {names} for {duration(seconds or 0.0)}", seconds)

    @singledispatchmethod
    def step(self, event: CallEvent) -> Step:
        """The step of one event (rings received together are told by :meth:`rings`)."""
        # Every declared call event has its own step below (statemachine.primevox
        # checks it at import, through STEPS); this names any other class.
        return Step(event.received_at, StepKind.UNKNOWN, f"{type(event).__name__} received")

    @step.register
    def _(self, event: InboundCall) -> Step:
        caller = _labelled(event.caller.number, event.caller.name) or "an unknown number"
        did = _labelled(event.did.number, event.did.description)
        text = f"call from {caller}" + (f" to {did}" if did else "")
        return Step(event.received_at, StepKind.CALL, text)

    @step.register
    def _(self, event: OutboundCallPlaced) -> Step:
        target = event.number_dialed or "a number"
        return Step(
            event.received_at, StepKind.OUTBOUND, f"{_who(event.extension)} dialled {target}"
        )

    @step.register
    def _(self, event: QueueEntered) -> Step:
        queue = event.queue or "(no number)"
        return self._routed(
            event.received_at,
            StepKind.QUEUE,
            f"waited {{}} in queue {queue}",
            f"waiting in queue {queue}",
        )

    @step.register
    def _(self, event: RingGroupEntered) -> Step:
        group = event.ring_group or "(no number)"
        return self._routed(
            event.received_at,
            StepKind.RING_GROUP,
            f"rang ring group {group} for {{}}",
            f"ringing ring group {group}",
        )

    @step.register
    def _(self, event: ExtensionRinging) -> Step:
        return self.rings([event])

    @step.register
    def _(self, event: ExtensionAnswered) -> Step:
        wait = _span(self.view.started_at, event.received_at)
        text = f"{_who(event.extension)} answered after {duration(wait or 0.0)}"
        return Step(event.received_at, StepKind.ANSWER, text, wait)

    @step.register
    def _(self, event: ExtensionCallEnded) -> Step:
        number = event.extension.number
        placer = self.view.extension
        talked = number in self.view.facts.answers or (
            placer is not None and placer.number == number
        )
        verb = "hung up" if talked else "stopped ringing"
        return Step(event.received_at, StepKind.LEG_END, f"{_who(event.extension)} {verb}")

    @step.register
    def _(self, event: VoicemailLeft) -> Step:
        text = f"caller left a voicemail for {_who(event.extension)}"
        return Step(event.received_at, StepKind.VOICEMAIL, text)

    @step.register
    def _(self, event: HangupCall) -> Step:
        lasted = _span(self.view.started_at, event.received_at)
        if self.view.answered_by is None:
            # PrimeVOX does not say who hung up; unanswered, it was the caller.
            text = f"caller hung up after {duration(lasted or 0.0)}"
        else:
            on_line = f" ({_who(event.extension)} on the line)" if event.extension.number else ""
            text = f"call ended after {duration(lasted or 0.0)}{on_line}"
        return Step(event.received_at, StepKind.HANGUP, text, lasted)

    @step.register
    def _(self, event: CallTimedOut) -> Step:
        silent = _span(self.view.facts.last_at, event.received_at)
        text = f"no webhook for {duration(silent or 0.0)}: ended by the engine"
        return Step(event.received_at, StepKind.TIMEOUT, text, silent)

    @step.register
    def _(self, event: UnknownCallEvent) -> Step:
        text = f"{event.original_type} received (not understood)"
        return Step(event.received_at, StepKind.UNKNOWN, text)

    def talks(self) -> list[Step]:
        """How long each extension that answered (or placed an answered call) talked."""
        steps = []
        for leg in legs_of(self.view):
            talked = leg.answered or (leg.placed and self.view.answered_at is not None)
            if talked and leg.ended_at is not None and leg.talk_seconds is not None:
                text = f"{_who(leg.extension)} talked {duration(leg.talk_seconds)}"
                steps.append(Step(leg.ended_at, StepKind.TALK, text, leg.talk_seconds))
        return steps


# Which event classes have their own step, for the registry's check (the
# singledispatch function behind _Story.step, with its ``registry`` of classes).
STEPS = _Story.__dict__["step"].dispatcher


def _outcome_text(revision: OutcomeRevision) -> str:
    if revision.outcome == "answered" and revision.answered_by:
        what = f"answered by {_who(revision.answered_by)}"
    elif revision.outcome == "voicemail" and revision.voicemail_box:
        what = f"voicemail for {_who(revision.voicemail_box)}"
    elif revision.outcome == "missed" and revision.missed_reason:
        what = f"missed ({revision.missed_reason.replace('_', ' ')})"
    else:
        what = revision.outcome
    if revision.revision <= 1:
        return f"outcome: {what}"
    return f"outcome revised (revision {revision.revision}): {what}"


# Rings received this close together (a ring-all, a queue offering to several
# agents) are told as one step; a ring later than that is a new step (rollover).
RUNG_TOGETHER = timedelta(seconds=1)


def _rung_together(events: Sequence[CallEvent], index: int) -> list[ExtensionRinging]:
    """The rings starting at ``index`` received together, with nothing between them."""
    group: list[ExtensionRinging] = []
    for event in events[index:]:
        if not isinstance(event, ExtensionRinging) or not event.extension.number:
            break
        if group and event.received_at - group[0].received_at > RUNG_TOGETHER:
            break
        group.append(event)
    return group


def timeline(events: Sequence[CallEvent], revisions: Iterable[OutcomeRevision] = ()) -> list[Step]:
    """The story of one call from its log (events in received order) and its outcomes.

    Rings received together become one step ("rang 101 and 102 for 12 s"). A talk
    goes just before the webhook received when it ended; an outcome after
    whatever was received at its decision's moment. Raises ValueError if the
    events belong to more than one call.
    """
    calls = {(e.tenant_id, e.call_uuid) for e in events}
    if len(calls) > 1:
        raise ValueError("a timeline tells one call's story")
    steps: list[tuple[datetime, int, int, Step]] = []
    if events:
        tenant_id, call_uuid = next(iter(calls))
        story = _Story(events, CallView(fold(tenant_id, call_uuid, events)))
        index = 0
        while index < len(events):
            group = _rung_together(events, index)
            step = story.rings(group) if group else story.step(events[index])
            steps.append((events[index].received_at, 1, index, step))
            index += max(len(group), 1)
        steps += [(s.at, 0, 0, s) for s in story.talks()]
    steps += [
        (r.decided_at, 2, r.revision, Step(r.decided_at, StepKind.OUTCOME, _outcome_text(r)))
        for r in revisions
    ]
    steps.sort(key=lambda item: item[:3])
    return [step for *_, step in steps]
