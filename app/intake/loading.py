"""A raw PrimeVOX body in, a typed event out: which schema checks it, and loading it.

The schemas themselves, one per event declared in :mod:`statemachine.primevox`,
are in :mod:`app.intake.event_schemas`. A body goes to its schema by ``eventType``,
matched without regard to case (so a PBX that changes its casing does not lose
us events), and by ``eventTarget`` where several events share a type; a type
nobody declared goes to a catch-all, so it is kept rather than refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from app.intake.event_schemas import (
    CONTROL_CHARACTERS,
    MAX_ID_LENGTH,
    RECEIVED_AT,
    SCHEMAS,
    EventSchema,
    fold_spellings,
)
from statemachine.events import Event
from statemachine.primevox import EVENTS
from statemachine.registry import Declared
from statemachine.wire import Text

UNKNOWN_CALL_SCHEMA = SCHEMAS[EVENTS.unknown(with_call=True).title]
UNKNOWN_SCHEMA = SCHEMAS[EVENTS.unknown(with_call=False).title]
_BY_LOWER = {name.lower(): name for name in EVENTS.known_types}
# The engine writes these types itself; a sender may not.
_RESERVED = {name.lower() for name in EVENTS.reserved_types}


class BadEvent(ValueError):
    """The body is not an event we can accept; ``details`` says which fields."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


def canonical_type(raw: str) -> str:
    """The PBX's spelling of a known event type, or ``raw`` for unknown ones."""
    return _BY_LOWER.get(raw.strip().lower(), raw)


def _declared_for(event_type: str, body: dict[str, Any]) -> Declared | None:
    """The declared event a body is, or None for a type nobody declared."""
    candidates = EVENTS.for_type(event_type)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    # Several events share this eventType (ringAttempt): eventTarget says which...
    target = str(body.get("eventTarget", "")).strip().lower()
    for declared in candidates:
        if (declared.target or "").lower() == target:
            return declared
    # ...and without a known one, the first whose own field is filled.
    for declared in candidates:
        if body.get(declared.tells_apart):
            return declared
    return candidates[0]


def _schema_for(event_type: str, body: dict[str, Any]) -> EventSchema:
    declared = _declared_for(event_type, body)
    if declared is not None:
        return SCHEMAS[declared.title]
    return UNKNOWN_CALL_SCHEMA if body.get("callUuid") else UNKNOWN_SCHEMA


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out: list[str] = []
        for key, value in errors.items():
            out += _flatten(value, f"{key}")
        return out
    if isinstance(errors, list):
        return [f"{prefix}: {message}" if prefix else str(message) for message in errors]
    return [f"{prefix}: {errors}"]


def load_event(body: dict[str, Any], received_at: datetime) -> tuple[str, Event]:
    """Validate a decoded body and build its event.

    Returns (event type as the PBX spells it, event). Raises BadEvent with a
    message a person can act on.
    """
    raw_type = body.get("eventType")
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise BadEvent("not an event: eventType is missing")
    if len(raw_type) > MAX_ID_LENGTH or CONTROL_CHARACTERS.search(raw_type):
        raise BadEvent("eventType is not a plausible event type")
    event_type = canonical_type(raw_type)
    if event_type.lower() in _RESERVED:
        raise BadEvent(f"eventType {raw_type!r} is reserved for the engine")
    schema = _schema_for(event_type, body)
    event = _quick_load(schema, body, received_at)
    if event is not None:
        return event_type, event
    try:
        event = schema.load({**body, RECEIVED_AT: received_at.isoformat()})
    except ValidationError as exc:
        problems = _flatten(exc.messages)
        raise BadEvent(
            f"invalid {event_type} event: " + "; ".join(problems), {"fields": exc.messages}
        ) from exc
    assert isinstance(event, Event)
    return event_type, event


# -- the quick path ---------------------------------------------------------------
#
# marshmallow's Schema.load is generic: hooks, field objects, error collection.
# For the bodies PrimeVOX sends every second, every field is text that passes
# its checks at a glance. The quick path checks each body field as its
# declaration says (statemachine.wire's Text, through the event's EventShape:
# the same source the schema's fields are made from) and builds the event as
# the schema does (EventShape.build). A body it is not sure of -- a missing or
# non-text field, a length or character out of bounds -- goes to Schema.load,
# which refuses it in marshmallow's words (or, should the two ever differ,
# decides). So it accepts nothing Schema.load refuses and builds the same event
# (tests/app/intake/test_schemas_quick.py).


def _fits(text: Text, value: str) -> bool:
    """Whether ``value`` is what the body field ``text`` must be."""
    if text.max_length is not None and len(value) > text.max_length:
        return False
    if text.identifier:
        # A required identifier must be filled; any identifier, free of control characters.
        return bool(value or not text.required) and not CONTROL_CHARACTERS.search(value)
    return True


def _quick_load(schema: EventSchema, body: dict[str, Any], received_at: datetime) -> Event | None:
    """The event, if every field is plainly valid; None means "ask Schema.load"."""
    shape = schema.shape
    data = fold_spellings(body)
    values: dict[str, Any] = {shape.received: received_at}
    for name, text in shape.texts:
        value = data.get(text.key)
        if value is None:
            if text.required or text.key in data:
                return None
            values[name] = ""
        elif type(value) is str and _fits(text, value):
            values[name] = value
        else:
            return None
    return shape.build(values)
