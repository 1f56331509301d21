"""A raw PrimeVOX body in, a typed event out: which schema checks it, and loading it.

The schemas themselves, one per event declared in :mod:`statemachine.primevox`,
are in :mod:`app.intake.event_schemas`. A body goes to its schema by ``eventType``,
matched without regard to case (so a PBX that changes its casing does not lose
us events), and by ``eventTarget`` where several events share a type; a type
nobody declared goes to a catch-all, so it is kept rather than refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from app.intake.event_schemas import (
    CONTROL_CHARACTERS,
    MAX_ID_LENGTH,
    RECEIVED_AT,
    SCHEMAS,
    EventSchema,
    fold_spellings,
    refuse_control_characters,
)
from statemachine.events import Event
from statemachine.primevox import EVENTS
from statemachine.registry import Declared

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
# its checks at a glance. The quick path checks exactly the schema's own
# declarations (read from its fields, so the two cannot drift apart) and
# builds the event with the schema's own post_load; anything it is not sure
# of -- a missing or non-text field, a length or character out of bounds, a
# field kind it does not know -- goes to Schema.load, which gives the answer
# and the error message. So it accepts nothing Schema.load refuses, builds
# the same event (tests/app/test_schemas_quick.py), and every 400 is
# marshmallow's.


@dataclass(frozen=True)
class _Check:
    """One String field of a schema: where it is read and what it must be."""

    attr: str
    key: str
    required: bool
    min_length: int
    max_length: int | None
    identifier: bool


def _checks(schema: Schema) -> tuple[_Check, ...] | None:
    """The quick checks of a schema's fields; None if a field is beyond them."""
    checks: list[_Check] = []
    for attr, field in schema.load_fields.items():
        if attr == "received_at":
            continue
        if type(field) is not fields.String or field.allow_none:
            return None
        if not field.required and field.load_default != "":
            return None
        minimum, maximum, identifier = 0, None, False
        for validator in field.validators:
            if isinstance(validator, validate.Length) and validator.equal is None:
                minimum, maximum = validator.min or 0, validator.max
            elif validator is refuse_control_characters:
                identifier = True
            else:
                return None
        key = field.data_key or attr
        checks.append(_Check(attr, key, field.required, minimum, maximum, identifier))
    return tuple(checks)


_CHECKS: dict[int, tuple[_Check, ...] | None] = {}


def _quick_load(schema: EventSchema, body: dict[str, Any], received_at: datetime) -> Event | None:
    """The event, if every field is plainly valid; None means "ask Schema.load"."""
    key = id(schema)
    if key not in _CHECKS:
        _CHECKS[key] = _checks(schema)
    checks = _CHECKS[key]
    if checks is None:
        return None
    data = fold_spellings(body)
    values: dict[str, Any] = {"received_at": received_at}
    for check in checks:
        value = data.get(check.key)
        if value is None:
            if check.required or check.key in data:
                return None
            values[check.attr] = ""
            continue
        if type(value) is not str:
            return None
        if len(value) < check.min_length or (
            check.max_length is not None and len(value) > check.max_length
        ):
            return None
        if check.identifier and CONTROL_CHARACTERS.search(value):
            return None
        values[check.attr] = value
    event = schema.make(values)
    return event if isinstance(event, Event) else None
