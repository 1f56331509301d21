"""marshmallow schemas: a raw PrimeVOX body in, a typed event out.

Each schema checks one event kind as the PBX spells it and its ``post_load``
builds the matching dataclass from :mod:`statemachine.events`. The kinds are
the ones declared in :mod:`statemachine.primevox`: ``SCHEMAS`` holds one
schema per declaration, by its title, and importing this module fails if a
declaration has no schema here or a schema no declaration. Spelling
variants (``containerID``, ``extensionNumber``…) are folded onto one spelling
before loading, and ``eventType`` is matched without regard to case, so a PBX
that changes its casing does not lose us events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from statemachine.events import (
    Did,
    Event,
    ExtensionAnswered,
    ExtensionCallEnded,
    ExtensionRinging,
    HangupCall,
    InboundCall,
    MessageEvent,
    OutboundCallPlaced,
    Party,
    QueueEntered,
    RingGroupEntered,
    UnknownCallEvent,
    UnknownEvent,
    VoicemailLeft,
)
from statemachine.primevox import ALIASES, EVENTS
from statemachine.registry import Declared, Registry, RegistryError

RECEIVED_AT = "__received_at"
MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _identifier(value: str) -> None:
    if _CONTROL.search(value):
        raise ValidationError("must not contain control characters")


def _id_field(key: str, *, required: bool) -> fields.String:
    if required:
        return fields.String(
            data_key=key,
            required=True,
            validate=[
                validate.Length(
                    min=1, max=MAX_ID_LENGTH, error=f"{key} must be 1 to {MAX_ID_LENGTH} characters"
                ),
                _identifier,
            ],
            error_messages={"required": f"{key} is missing"},
        )
    return fields.String(
        data_key=key,
        load_default="",
        validate=[validate.Length(max=MAX_ID_LENGTH), _identifier],
    )


def _text(key: str, max_length: int = MAX_TEXT_LENGTH) -> fields.String:
    return fields.String(data_key=key, load_default="", validate=validate.Length(max=max_length))


class EventSchema(Schema):
    """What every event carries: its tenant, its container, when we got it."""

    class Meta:
        unknown = EXCLUDE

    tenant_id = _id_field("tenantId", required=True)
    container_id = _id_field("containerId", required=False)
    received_at = fields.AwareDateTime(data_key=RECEIVED_AT, required=True)

    @pre_load
    def fold_spellings(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return fold_spellings(data)


def fold_spellings(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every spelling variant under its one spelling (that one wins)."""
    folded = dict(data)
    for variant, canonical in ALIASES.items():
        if variant in folded:
            value = folded.pop(variant)
            folded.setdefault(canonical, value)
    return folded


class CallEventSchema(EventSchema):
    call_uuid = _id_field("callUuid", required=True)
    caller_number = _text("callerIdNum", 200)
    caller_name = _text("callerIdName", 200)

    def common(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "tenant_id": data["tenant_id"],
            "container_id": data["container_id"],
            "received_at": data["received_at"],
            "call_uuid": data["call_uuid"],
            "caller": Party(data["caller_number"], data["caller_name"]),
        }


class ExtensionEventSchema(CallEventSchema):
    ext_number = _text("extNumber", 200)
    ext_name = _text("extName", 200)

    def extension(self, data: dict[str, Any]) -> Party:
        return Party(data["ext_number"], data["ext_name"])


class InboundCallSchema(CallEventSchema):
    did_number = _text("didNumber", 200)
    did_description = _text("didDescription")
    did_group = _text("didGroup")
    cid_prefix = _text("cidPrefix", 200)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> InboundCall:
        did = Did(data["did_number"], data["did_description"], data["did_group"])
        return InboundCall(**self.common(data), did=did, cid_prefix=data["cid_prefix"])


class HangupCallSchema(ExtensionEventSchema):
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> HangupCall:
        return HangupCall(**self.common(data), extension=self.extension(data))


class ExtensionRingingSchema(ExtensionEventSchema):
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ExtensionRinging:
        return ExtensionRinging(**self.common(data), extension=self.extension(data))


class RingGroupEnteredSchema(CallEventSchema):
    rg_number = _text("rgNumber", 200)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RingGroupEntered:
        return RingGroupEntered(**self.common(data), ring_group=data["rg_number"])


class QueueEnteredSchema(CallEventSchema):
    queue_number = _text("queueNumber", 200)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> QueueEntered:
        return QueueEntered(**self.common(data), queue=data["queue_number"])


class ExtensionAnsweredSchema(ExtensionEventSchema):
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ExtensionAnswered:
        return ExtensionAnswered(**self.common(data), extension=self.extension(data))


class ExtensionCallEndedSchema(ExtensionEventSchema):
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ExtensionCallEnded:
        return ExtensionCallEnded(**self.common(data), extension=self.extension(data))


class VoicemailLeftSchema(ExtensionEventSchema):
    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> VoicemailLeft:
        return VoicemailLeft(**self.common(data), extension=self.extension(data))


class OutboundCallSchema(ExtensionEventSchema):
    number_dialed = _text("numberDialed", 200)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> OutboundCallPlaced:
        return OutboundCallPlaced(
            **self.common(data), extension=self.extension(data), number_dialed=data["number_dialed"]
        )


class MessageSchema(EventSchema):
    conversation_id = _id_field("conversationId", required=True)
    from_number = _text("fromNumber", 200)
    to_number = _text("toNumber", 200)
    # MMS bodies may carry MIME attachments: the whole body limit applies.
    text = fields.String(data_key="messageText", load_default="")

    direction = "inbound"

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MessageEvent:
        return MessageEvent(
            tenant_id=data["tenant_id"],
            container_id=data["container_id"],
            received_at=data["received_at"],
            conversation_id=data["conversation_id"],
            direction=self.direction,
            from_number=data["from_number"],
            to_number=data["to_number"],
            text=data["text"],
        )


class OutboundMessageSchema(MessageSchema):
    direction = "outbound"


class UnknownCallEventSchema(CallEventSchema):
    original_type = fields.String(data_key="eventType", required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> UnknownCallEvent:
        return UnknownCallEvent(**self.common(data), original_type=data["original_type"])


class UnknownEventSchema(EventSchema):
    original_type = fields.String(data_key="eventType", required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> UnknownEvent:
        return UnknownEvent(
            tenant_id=data["tenant_id"],
            container_id=data["container_id"],
            received_at=data["received_at"],
            original_type=data["original_type"],
        )


# One schema per declared PBX event (statemachine.primevox), by its title.
SCHEMAS: dict[str, Schema] = {
    "InboundCallEvent": InboundCallSchema(),
    "HangupCallEvent": HangupCallSchema(),
    "ExtensionRingAttemptEvent": ExtensionRingingSchema(),
    "RingGroupRingAttemptEvent": RingGroupEnteredSchema(),
    "QueueEnteredEvent": QueueEnteredSchema(),
    "ExtensionAnsweredEvent": ExtensionAnsweredSchema(),
    "InboundCallCompletedEvent": ExtensionCallEndedSchema(),
    "VoicemailHangupEvent": VoicemailLeftSchema(),
    "OutboundCallEvent": OutboundCallSchema(),
    "InboundMessageEvent": MessageSchema(),
    "OutboundMessageEvent": OutboundMessageSchema(),
    "UnknownCallEvent": UnknownCallEventSchema(),
    "UnknownEvent": UnknownEventSchema(),
}


def check_schemas(registry: Registry, schemas: dict[str, Schema]) -> None:
    """Raise RegistryError unless every event the PBX sends has a schema, and no other does."""
    declared = {d.title for d in registry.from_pbx}
    problems = [f"no intake schema for {t}" for t in sorted(declared - set(schemas))]
    problems += [f"intake schema for undeclared {t}" for t in sorted(set(schemas) - declared)]
    if problems:
        raise RegistryError("; ".join(problems))


check_schemas(EVENTS, SCHEMAS)

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


def _schema_for(event_type: str, body: dict[str, Any]) -> Schema:
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
    if len(raw_type) > MAX_ID_LENGTH or _CONTROL.search(raw_type):
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
            elif validator is _identifier:
                identifier = True
            else:
                return None
        key = field.data_key or attr
        checks.append(_Check(attr, key, field.required, minimum, maximum, identifier))
    return tuple(checks)


_CHECKS: dict[int, tuple[_Check, ...] | None] = {}


def _quick_load(schema: Schema, body: dict[str, Any], received_at: datetime) -> Event | None:
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
        if check.identifier and _CONTROL.search(value):
            return None
        values[check.attr] = value
    event = schema.make(values)  # type: ignore[attr-defined]
    return event if isinstance(event, Event) else None
