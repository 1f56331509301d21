"""The webhook request bodies in the API description, from the intake's own schemas.

Each PrimeVOX event kind becomes one component schema, built from the
marshmallow schema that checks it (``app.schemas``, by its ``data_key``
names, so what is documented is what is validated), and ``WebhookEvent``
is their union. ``app.openapi`` adds them to the document.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from app import intake as intake_module
from app import schemas as intake_schemas
from statemachine.events import EventType

# What the intake's ``_identifier`` validator refuses, as a JSON Schema pattern.
NO_CONTROL_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
# Example values shared by the webhook bodies and the read API's answers.
EXAMPLE_TENANT = "acme"
EXAMPLE_CONTAINER = "container-1"
EXAMPLE_CALL_UUID = "6f1c2f0e-8a3b-4c1e-9d2a-5b7e3c4d1a20"
EXAMPLE_CONVERSATION = "conv-5551230000"


# -- webhook request bodies, from the intake's schemas ------------------------------


class WebhookEvent:
    """One PrimeVOX event kind as documented: which intake schema checks it and how."""

    def __init__(
        self,
        name: str,
        event_type: str,
        schema: Schema,
        form: str,
        summary: str,
        *,
        target: str | None = None,
        spelled: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.event_type = event_type
        self.schema = schema
        self.form = form
        self.summary = summary
        self.target = target
        # The PBX's spelling of a field where it differs from the schema's data_key.
        self.spelled = spelled or {}


_SMS_SPELLING = {
    "tenantId": "tenantID",
    "containerId": "containerID",
    "conversationId": "conversationID",
}
_RINGS = intake_schemas.RING_SCHEMAS
_BY_TYPE = intake_schemas.SCHEMAS

WEBHOOK_EVENTS = [
    WebhookEvent(
        "InboundCallEvent",
        EventType.INBOUND_CALL.value,
        _BY_TYPE[EventType.INBOUND_CALL.value],
        "phone number",
        "A call reached the phone system (before anything else happened to it).",
        target="phoneNumber",
    ),
    WebhookEvent(
        "HangupCallEvent",
        EventType.HANGUP_CALL.value,
        _BY_TYPE[EventType.HANGUP_CALL.value],
        "phone number",
        "The call ended, whatever happened to it; extNumber/extName name the extension "
        "that answered, empty if nobody did.",
    ),
    WebhookEvent(
        "ExtensionRingAttemptEvent",
        EventType.RING_ATTEMPT.value,
        _RINGS["extension"],
        "extension",
        "The extension is ringing.",
        target="extension",
    ),
    WebhookEvent(
        "RingGroupRingAttemptEvent",
        EventType.RING_ATTEMPT.value,
        _RINGS["ringgroup"],
        "ring group",
        "The caller entered ring group rgNumber.",
        target="ringGroup",
    ),
    WebhookEvent(
        "QueueEnteredEvent",
        EventType.QUEUE_ENTERED.value,
        _BY_TYPE[EventType.QUEUE_ENTERED.value],
        "queue",
        "The caller entered queue queueNumber.",
        target="queue",
    ),
    WebhookEvent(
        "ExtensionAnsweredEvent",
        EventType.EXTENSION_ANSWERED.value,
        _BY_TYPE[EventType.EXTENSION_ANSWERED.value],
        "extension",
        "The extension answered.",
        spelled={"extNumber": "extensionNumber", "extName": "extensionName"},
    ),
    WebhookEvent(
        "InboundCallCompletedEvent",
        EventType.INBOUND_CALL_COMPLETED.value,
        _BY_TYPE[EventType.INBOUND_CALL_COMPLETED.value],
        "extension",
        'The extension\'s leg of the call ended ("Extension Hung Up").',
    ),
    WebhookEvent(
        "VoicemailHangupEvent",
        EventType.VOICEMAIL_HANGUP.value,
        _BY_TYPE[EventType.VOICEMAIL_HANGUP.value],
        "extension",
        "The caller left a voicemail at the extension and hung up.",
    ),
    WebhookEvent(
        "OutboundCallEvent",
        EventType.OUTBOUND_CALL.value,
        _BY_TYPE[EventType.OUTBOUND_CALL.value],
        "extension",
        "The extension placed a call to numberDialed.",
    ),
    WebhookEvent(
        "InboundMessageEvent",
        EventType.INBOUND_MESSAGE.value,
        _BY_TYPE[EventType.INBOUND_MESSAGE.value],
        "phone number (JSON)",
        "Someone texted a customer's number: fromNumber is the outsider.",
        spelled=_SMS_SPELLING,
    ),
    WebhookEvent(
        "OutboundMessageEvent",
        EventType.OUTBOUND_MESSAGE.value,
        _BY_TYPE[EventType.OUTBOUND_MESSAGE.value],
        "phone number (JSON)",
        "A customer's user sent a text: toNumber is the outsider.",
        spelled=_SMS_SPELLING,
    ),
    WebhookEvent(
        "UnknownCallEvent",
        "",
        intake_schemas.UNKNOWN_CALL_SCHEMA,
        "",
        "Any other eventType with a callUuid: accepted and kept in the call's log, "
        "without changing its state.",
    ),
    WebhookEvent(
        "UnknownEvent",
        "",
        intake_schemas.UNKNOWN_SCHEMA,
        "",
        "Any other eventType without a callUuid: accepted and kept in the tenant's log.",
    ),
]
_ALIASES_BY_CANONICAL = {canonical: alias for alias, canonical in intake_schemas.ALIASES.items()}
# Example values of the PBX's fields, for the documentation and for schemathesis's examples.
WEBHOOK_SAMPLES = {
    "tenantId": EXAMPLE_TENANT,
    "containerId": EXAMPLE_CONTAINER,
    "callUuid": EXAMPLE_CALL_UUID,
    "callerIdNum": "+15551230000",
    "callerIdName": "Zoë D'Arcy-Smith",
    "didNumber": "+15550001000",
    "didDescription": "Main line, front desk",
    "didGroup": "Sales & Support",
    "cidPrefix": "",
    "extNumber": "101",
    "extName": "Alice Émond",
    "rgNumber": "700",
    "queueNumber": "600",
    "numberDialed": "+15559876543",
    "conversationId": EXAMPLE_CONVERSATION,
    "fromNumber": "+15551230000",
    "toNumber": "+15550001000",
    "messageText": "Can you call me back?",
}


def _webhook_body(event: WebhookEvent, plugin: MarshmallowPlugin) -> dict[str, Any]:
    """The JSON Schema of one event's body, from the marshmallow schema that checks it."""
    assert plugin.converter is not None
    type_property: dict[str, Any] = {"type": "string"}
    if event.event_type:
        type_property.update(
            enum=[event.event_type],
            description="matched regardless of case",
            example=event.event_type,
        )
    else:
        type_property.update(
            minLength=1,
            maxLength=intake_schemas.MAX_ID_LENGTH,
            pattern=NO_CONTROL_PATTERN,
            description="an eventType the engine does not know",
            example="callParked",
        )
    properties: dict[str, Any] = {"eventType": type_property}
    required = ["eventType"]
    if event.target:
        properties["eventTarget"] = {"type": "string", "enum": [event.target]}
    for name, field in event.schema.fields.items():
        key = field.data_key or name
        if key in (intake_schemas.RECEIVED_AT, "eventType"):
            continue
        spelled = event.spelled.get(key, key)
        prop: dict[str, Any] = dict(plugin.converter.field2property(field))
        if any(getattr(v, "__name__", "") == "_identifier" for v in field.validators):
            prop["pattern"] = NO_CONTROL_PATTERN
        other = _ALIASES_BY_CANONICAL.get(key) if spelled == key else key
        if other:
            prop["description"] = f"also accepted as {other}"
        if key in WEBHOOK_SAMPLES:
            prop["example"] = WEBHOOK_SAMPLES[key]
        properties[spelled] = prop
        if field.required:
            required.append(spelled)
    return {
        "type": "object",
        "title": event.name,
        "description": event.summary
        + (f" Sent by the PBX's {event.form} webhook form." if event.form else ""),
        "properties": properties,
        "required": required,
        # Other fields are kept as sent (in the event log), so they must be text; in
        # a JSON body, numbers, booleans and null are read as text too.
        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        "maxProperties": intake_module.MAX_FIELDS,
    }


def add_webhook_schemas(spec: APISpec, plugin: MarshmallowPlugin) -> None:
    """Add each event kind's body and their union, ``WebhookEvent``, to the components."""
    for event in WEBHOOK_EVENTS:
        spec.components.schema(event.name, component=_webhook_body(event, plugin))
    spec.components.schema(
        "WebhookEvent",
        component={
            "description": "Any PrimeVOX event. Fields not listed are ignored; numbers and "
            "booleans in a JSON body are read as text. Spellings accepted for every event: "
            + ", ".join(
                f"{alias} for {canonical}" for alias, canonical in intake_schemas.ALIASES.items()
            )
            + ".",
            # anyOf, not oneOf: both ringAttempt forms share an eventType, and an
            # unknown-event body may look like a known one.
            "anyOf": [{"$ref": f"#/components/schemas/{e.name}"} for e in WEBHOOK_EVENTS],
        },
    )
