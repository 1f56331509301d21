"""Live call events: the steps a call has passed, derived from its fold.

A call goes ``call.started`` → ``call.queued`` → ``call.ringing`` (once per
extension) → ``call.answered`` → ``call.ended``; a call skips the steps it never
took. Each step has a rank in that order. What has been sent is remembered per
call as the highest rank sent and the steps sent (core/store/live_events.py):
a step is sent when its rank is above the highest sent, or equal to it and not
sent yet (another extension ringing). So each transition goes out once, in
order per call, and a late or repeated webhook whose step the call has passed
sends nothing. The steps are a function of the call's view, never of the
webhook that arrived last: folding any log of the call gives the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from statemachine.events import isoformat
from statemachine.state import CallView


class LiveEventType(str, Enum):
    STARTED = "call.started"
    QUEUED = "call.queued"
    RINGING = "call.ringing"
    ANSWERED = "call.answered"
    ENDED = "call.ended"


LIVE_EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in LiveEventType)
RANKS = {event_type: rank for rank, event_type in enumerate(LiveEventType)}


@dataclass(frozen=True)
class Step:
    """One transition of a call: its rank, a key unique within the call, its body."""

    rank: int
    key: str  # "call.ringing:101": one ringing step per extension
    body: dict[str, Any]


def _step(
    view: CallView, event_type: LiveEventType, at: datetime | None, **extra: Any
) -> Step:
    caller, did = view.caller, view.did
    body = {
        "type": event_type.value,
        "tenant_id": view.facts.tenant_id,
        "call_uuid": view.facts.call_uuid,
        "container_id": view.container_id,
        "direction": view.direction.value,
        "at": isoformat(at),
        "caller": caller.as_json() if caller else None,
        "did": did.as_json() if did else None,
        "number_dialed": view.number_dialed,
        "queue": view.queue,
        "ring_group": view.ring_group,
        **extra,
    }
    key = event_type.value
    if event_type is LiveEventType.RINGING:
        key += ":" + str(extra["extension"]["number"])
    return Step(RANKS[event_type], key, body)


def live_steps(view: CallView) -> list[Step]:
    """Every step the call has passed, in order (sending them is the store's)."""
    facts = view.facts
    steps: list[Step] = []
    if view.started_at is None:
        return steps
    steps.append(_step(view, LiveEventType.STARTED, view.started_at))
    if facts.queue is not None:
        steps.append(_step(view, LiveEventType.QUEUED, facts.queue.at))
    for extension in view.rang:
        at = facts.rings.get(extension.number)
        steps.append(_step(view, LiveEventType.RINGING, at, extension=extension.as_json()))
    answered_by = view.answered_by
    if answered_by is not None:
        steps.append(
            _step(view, LiveEventType.ANSWERED, view.answered_at, answered_by=answered_by.as_json())
        )
    if view.ended_at is not None:
        steps.append(_step(view, LiveEventType.ENDED, view.ended_at))
    return steps
