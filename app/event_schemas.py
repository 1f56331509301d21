"""One marshmallow schema per declared PrimeVOX event: its fields in, its dataclass out.

Each schema checks one event kind as the PBX spells it and its ``post_load``
builds the matching dataclass from :mod:`statemachine.events`. The kinds are
the ones declared in :mod:`statemachine.primevox`: ``SCHEMAS`` holds one
schema per declaration, by its title, and importing this module fails if a
declaration has no schema here or a schema no declaration. A plain extension
event (``extNumber``/``extName`` and the call's own fields) needs none
written: one schema builds any such class. Spelling variants
(``containerID``, ``extensionNumber``…) are folded onto one spelling before
loading. Which schema a body goes to, and the quick path, are
:mod:`app.schemas`'s.
"""

from __future__ import annotations

import re
from dataclasses import fields as dataclass_fields
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate

from statemachine.events import (
    Did,
    ExtensionEvent,
    InboundCall,
    MessageEvent,
    OutboundCallPlaced,
    Party,
    QueueEntered,
    RingGroupEntered,
    UnknownCallEvent,
    UnknownEvent,
)
from statemachine.primevox import ALIASES, EVENTS
from statemachine.registry import Registry, RegistryError

RECEIVED_AT = "__received_at"
MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def refuse_control_characters(value: str) -> None:
    """The validator of identifiers: no control characters (the documentation's pattern)."""
    if CONTROL_CHARACTERS.search(value):
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
                refuse_control_characters,
            ],
            error_messages={"required": f"{key} is missing"},
        )
    return fields.String(
        data_key=key,
        load_default="",
        validate=[validate.Length(max=MAX_ID_LENGTH), refuse_control_characters],
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


class _ExtensionFields(CallEventSchema):
    ext_number = _text("extNumber", 200)
    ext_name = _text("extName", 200)

    def extension(self, data: dict[str, Any]) -> Party:
        return Party(data["ext_number"], data["ext_name"])


class ExtensionEventSchema(_ExtensionFields):
    """Any event whose class is a plain :class:`ExtensionEvent`: it builds that class."""

    def __init__(self, event_class: type[ExtensionEvent]) -> None:
        super().__init__()
        self.event_class = event_class

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ExtensionEvent:
        return self.event_class(**self.common(data), extension=self.extension(data))


class InboundCallSchema(CallEventSchema):
    did_number = _text("didNumber", 200)
    did_description = _text("didDescription")
    did_group = _text("didGroup")
    cid_prefix = _text("cidPrefix", 200)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> InboundCall:
        did = Did(data["did_number"], data["did_description"], data["did_group"])
        return InboundCall(**self.common(data), did=did, cid_prefix=data["cid_prefix"])


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


class OutboundCallSchema(_ExtensionFields):
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


def schemas_for(registry: Registry) -> dict[str, Schema]:
    """One schema per event the PBX sends, by the declaration's title.

    A plain extension event (its class an :class:`ExtensionEvent` with no
    fields of its own) gets the shared :class:`ExtensionEventSchema`; every
    other event names its schema here.
    """
    plain = {f.name for f in dataclass_fields(ExtensionEvent)}
    shared: dict[str, Schema] = {
        d.title: ExtensionEventSchema(d.event_class)
        for d in registry.from_pbx
        if issubclass(d.event_class, ExtensionEvent)
        and {f.name for f in dataclass_fields(d.event_class)} == plain
    }
    return {
        **shared,
        "InboundCallEvent": InboundCallSchema(),
        "RingGroupRingAttemptEvent": RingGroupEnteredSchema(),
        "QueueEnteredEvent": QueueEnteredSchema(),
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


SCHEMAS = schemas_for(EVENTS)
check_schemas(EVENTS, SCHEMAS)
