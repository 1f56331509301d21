"""Every PrimeVOX event, declared once: the one list to extend when the PBX sends a new one.

Each :class:`~statemachine.registry.Declared` below says, for one body the PBX
posts: its ``eventType`` (and ``eventTarget``), the dataclass it becomes, the
name the log stores it under, the webhook form that configures it, its
fields in the PBX's order and spelling, and what it means. The dataclass's
fields say which body field each is read from and how it is checked
(:mod:`statemachine.wire`). Everything else is derived from these:

- the log's stored names and classes (:mod:`statemachine.event_log`);
- the intake: known types, spelling variants, which schema checks a body
  (``app.intake.loading``), and the schema itself (``app.intake.event_schemas`` builds one
  per declaration from its class's readings);
- the OpenAPI webhook bodies, their examples and descriptions
  (``app.intake.openapi_webhooks``);
- the sample bodies the simulator, the tests' examples and the integration
  tests' builders start from.

Adding an event type: write its dataclass (:mod:`statemachine.events`), each
field saying where the body carries it, declare it here and give it a
``facts_of`` handler (:mod:`statemachine.state`) and, for a call event, its
step in the call's story (:mod:`statemachine.timeline`). That is all,
whatever its fields: no intake schema is written. Importing this module
fails if a declared call event has no ``facts_of`` handler or no timeline
step, or a field of an event the PBX sends is neither read from its body nor
fixed by its declaration, so a forgotten piece stops the process at start,
not as a poisoned event (or a story naming a class) later.

Pure data and standard library, like the rest of :mod:`statemachine`: the
marshmallow schemas stay in ``app``, built from these declarations.
"""

from __future__ import annotations

from statemachine.events import (
    CallTimedOut,
    ExtensionAnswered,
    ExtensionCallEnded,
    ExtensionRinging,
    HangupCall,
    InboundCall,
    MessageEvent,
    OutboundCallPlaced,
    QueueEntered,
    RingGroupEntered,
    UnknownCallEvent,
    UnknownEvent,
    VoicemailLeft,
)
from statemachine.registry import ENGINE, JSON, Declared, Registry, check_handlers, check_readings
from statemachine.state import facts_of
from statemachine.timeline import STEPS

# Written by the engine itself, never by the PBX: the call went silent for
# CALL_TIMEOUT_SECONDS. Logged like any event so a rebuild sees it too.
ENGINE_TIMEOUT = "callstate.timeout"

# Spellings the PBX uses for the same field (variant -> the one spelling).
ALIASES = {
    "containerID": "containerId",
    "tenantID": "tenantId",
    "conversationID": "conversationId",
    "extensionNumber": "extNumber",
    "extensionName": "extName",
}

# Example values of the PBX's fields (by their one spelling): the documentation's
# examples and every sample body.
EXAMPLE_VALUES = {
    "tenantId": "acme",
    "containerId": "container-1",
    "callUuid": "6f1c2f0e-8a3b-4c1e-9d2a-5b7e3c4d1a20",
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
    "conversationId": "conv-5551230000",
    "fromNumber": "+15551230000",
    "toNumber": "+15550001000",
    "messageText": "Can you call me back?",
}

_IDS = ("containerId", "tenantId")
_EXTENSION_EVENT = (*_IDS, "extNumber", "extName", "callUuid", "callerIdName", "callerIdNum")
_MESSAGE = ("toNumber", "fromNumber", "containerID", "tenantID", "conversationID", "messageText")

EVENTS = Registry(
    [
        Declared(
            "InboundCallEvent",
            "InboundCall",
            InboundCall,
            stored_as="InboundCall",
            description="A call reached the phone system (before anything else happened to it).",
            target="phoneNumber",
            form="phone number",
            fields=(
                *_IDS,
                "didNumber",
                "didDescription",
                "didGroup",
                "cidPrefix",
                "callUuid",
                "callerIdNum",
                "callerIdName",
            ),
        ),
        Declared(
            "HangupCallEvent",
            "HangupCall",
            HangupCall,
            stored_as="HangupCall",
            description="The call ended, whatever happened to it; extNumber/extName name the "
            "extension that answered, empty if nobody did.",
            form="phone number",
            fields=_EXTENSION_EVENT,
        ),
        Declared(
            "ExtensionRingAttemptEvent",
            "ringAttempt",
            ExtensionRinging,
            stored_as="ExtensionRinging",
            description="The extension is ringing.",
            target="extension",
            form="extension",
            fields=(*_IDS, "extNumber", "extName", "callUuid", "callerIdNum"),
            tells_apart="extNumber",
        ),
        Declared(
            "RingGroupRingAttemptEvent",
            "ringAttempt",
            RingGroupEntered,
            stored_as="RingGroupEntered",
            description="The caller entered ring group rgNumber.",
            target="ringGroup",
            form="ring group",
            fields=(*_IDS, "rgNumber", "callUuid", "callerIdNum"),
            tells_apart="rgNumber",
        ),
        Declared(
            "QueueEnteredEvent",
            "queueEntered",
            QueueEntered,
            stored_as="QueueEntered",
            description="The caller entered queue queueNumber.",
            target="queue",
            form="queue",
            fields=(*_IDS, "queueNumber", "callUuid", "callerIdNum"),
        ),
        Declared(
            "ExtensionAnsweredEvent",
            "ExtensionAnswered",
            ExtensionAnswered,
            stored_as="ExtensionAnswered",
            description="The extension answered.",
            form="extension",
            fields=(
                *_IDS,
                "callUuid",
                "callerIdNum",
                "callerIdName",
                "extensionNumber",
                "extensionName",
            ),
        ),
        Declared(
            "InboundCallCompletedEvent",
            "inboundCallCompleted",
            ExtensionCallEnded,
            stored_as="ExtensionCallEnded",
            description='The extension\'s leg of the call ended ("Extension Hung Up").',
            form="extension",
            fields=_EXTENSION_EVENT,
        ),
        Declared(
            "VoicemailHangupEvent",
            "voicemailHangup",
            VoicemailLeft,
            stored_as="VoicemailLeft",
            description="The caller left a voicemail at the extension and hung up.",
            form="extension",
            fields=_EXTENSION_EVENT,
        ),
        Declared(
            "OutboundCallEvent",
            "outboundCall",
            OutboundCallPlaced,
            stored_as="OutboundCallPlaced",
            description="The extension placed a call to numberDialed.",
            form="extension",
            fields=(*_IDS, "extNumber", "extName", "callUuid", "numberDialed"),
        ),
        Declared(
            "InboundMessageEvent",
            "inboundMessage",
            MessageEvent,
            stored_as="MessageEvent",
            description="Someone texted a customer's number: fromNumber is the outsider.",
            form="phone number",
            encoding=JSON,
            fields=_MESSAGE,
            fixed={"direction": "inbound"},
        ),
        Declared(
            "OutboundMessageEvent",
            "outboundMessage",
            MessageEvent,
            stored_as="MessageEvent",
            description="A customer's user sent a text: toNumber is the outsider.",
            form="phone number",
            encoding=JSON,
            fields=_MESSAGE,
            fixed={"direction": "outbound"},
            sample_values={
                "fromNumber": EXAMPLE_VALUES["toNumber"],
                "toNumber": EXAMPLE_VALUES["fromNumber"],
            },
        ),
        Declared(
            "UnknownCallEvent",
            "",
            UnknownCallEvent,
            stored_as="UnknownCallEvent",
            description="Any other eventType with a callUuid: accepted and kept in the call's "
            "log, without changing its state.",
            fields=(*_IDS, "callUuid", "parkSlot"),
            sample_type="callParked",
            sample_values={"parkSlot": "71"},
        ),
        Declared(
            "UnknownEvent",
            "",
            UnknownEvent,
            stored_as="UnknownEvent",
            description="Any other eventType without a callUuid: accepted and kept in the "
            "tenant's log.",
            fields=_IDS,
            sample_type="callParked",
        ),
        Declared(
            "CallTimedOut",
            ENGINE_TIMEOUT,
            CallTimedOut,
            stored_as="CallTimedOut",
            description="The engine's verdict that a live call went silent too long.",
            sent_by=ENGINE,
        ),
    ],
    aliases=ALIASES,
    example_values=EXAMPLE_VALUES,
)

check_handlers(EVENTS, facts_of)
check_handlers(EVENTS, STEPS, what="timeline step")
check_readings(EVENTS)
