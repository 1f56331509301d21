"""Realistic PrimeVOX webhook bodies, exactly as primevox-webhooks.md shows them.

Every event kind the PBX sends, in the encoding and with the field spellings
the PBX uses (``containerId`` in forms, ``containerID`` in JSON,
``extensionNumber`` only in ``ExtensionAnswered``…), with the kind of values a
real carrier hands over: names with spaces, accents and punctuation, numbers
as ``+15551234567``, ``5551234567``, ``anonymous`` or empty.

Reuse from any test::

    from tests.kit.examples import EXAMPLES, body_for, form_body

    encoding, body = EXAMPLES["ringAttempt.extension"]
    body = form_body("HangupCall", call_uuid="my-call", tenant_id="t2")

``FIELDS`` holds the same events as ordered field dicts, for tests that need to
change one field; ``form_body``/``json_body``/``body_for`` rebuild a body with a
given call uuid, tenant, container or any other field replaced.
"""

from __future__ import annotations

import json
from typing import Final
from urllib.parse import urlencode

from statemachine.primevox import EVENTS
from statemachine.registry import FORM, JSON

CONTENT_TYPES: Final[dict[str, str]] = {
    FORM: "application/x-www-form-urlencoded",
    JSON: "application/json",
}

TENANT_ID: Final = "t1"
CONTAINER_ID: Final = "c-4711"
CALL_UUID: Final = "3f6c1a52-9b0e-4c7d-8f21-5a7e0d9b4c13"
OUTBOUND_CALL_UUID: Final = "b81e7d40-2c5a-4f39-a6d8-0e91c3f57a26"
CONVERSATION_ID: Final = "conv-8842-ab71"

DID_NUMBER: Final = "+15551234567"
CALLER_NUMBER: Final = "5551234567"
CALLER_NAME: Final = "José O'Brien-Núñez, Jr."

# This file's values for each event the PBX sends, by the registry's key for it
# (statemachine.primevox); the rest of each body -- its fields, their order and
# spelling -- is the registry's sample, so a newly declared event is here too.
_VALUES: Final[dict[str, dict[str, str]]] = {
    "InboundCall": {
        "didNumber": DID_NUMBER,
        "didDescription": "Main line \u2013 Søren's Café & Bar (24/7)",
        "didGroup": "Sales/Support",
        "cidPrefix": "VIP: ",
        "callerIdNum": CALLER_NUMBER,
        "callerIdName": CALLER_NAME,
    },
    "HangupCall": {
        "extNumber": "101",
        "extName": "Zoë Müller-Lüdenscheidt",
        "callerIdName": CALLER_NAME,
        "callerIdNum": CALLER_NUMBER,
    },
    "ringAttempt.extension": {
        "extNumber": "101",
        "extName": "Zoë Müller-Lüdenscheidt",
        "callerIdNum": CALLER_NUMBER,
    },
    "ringAttempt.ringGroup": {"rgNumber": "600", "callerIdNum": "+15551234567"},
    "queueEntered": {"queueNumber": "700", "callerIdNum": "anonymous"},
    "ExtensionAnswered": {
        "callerIdNum": CALLER_NUMBER,
        "callerIdName": CALLER_NAME,
        "extensionNumber": "102",
        "extensionName": "Ana-María d'Souza (Front desk)",
    },
    "inboundCallCompleted": {
        "extNumber": "102",
        "extName": "Ana-María d'Souza (Front desk)",
        "callerIdName": CALLER_NAME,
        "callerIdNum": CALLER_NUMBER,
    },
    "voicemailHangup": {
        "extNumber": "103",
        "extName": "Björn Ærøskøbing & Co.",
        "callerIdName": "",
        "callerIdNum": "",
    },
    "outboundCall": {
        "extNumber": "104",
        "extName": "François L'Écuyer",
        "callUuid": OUTBOUND_CALL_UUID,
        "numberDialed": "+15557654321",
    },
    "inboundMessage": {
        "toNumber": DID_NUMBER,
        "fromNumber": "+15559876543",
        "messageText": 'Hi! Running 10 min late 🚗\nSee you at 3:30 \u2014 Zoë & "the crew"',
    },
    "outboundMessage": {
        "toNumber": "+15559876543",
        "fromNumber": DID_NUMBER,
        "messageText": "No problem, Zoë. Table for 4 at Søren's Café ☕ <3",
    },
}
# Other bodies of the same events: name -> (the registry's key, values).
_VARIANTS: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "HangupCall.unanswered": (
        "HangupCall",
        {"extNumber": "", "extName": "", "callerIdName": "ANONYMOUS", "callerIdNum": "anonymous"},
    ),
}
_IDS: Final = {
    "containerId": CONTAINER_ID,
    "tenantId": TENANT_ID,
    "callUuid": CALL_UUID,
    "conversationId": CONVERSATION_ID,
}


def _every_example() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    fields: dict[str, dict[str, str]] = {}
    encodings: dict[str, str] = {}
    for declared in EVENTS.from_pbx:
        if not declared.event_type:
            continue  # the catch-alls: any other type, no one body
        key = EVENTS.key_of(declared)
        variants = {name: values for name, (base, values) in _VARIANTS.items() if base == key}
        for name, values in {key: _VALUES.get(key, {}), **variants}.items():
            fields[name] = EVENTS.sample(key, values, ids=_IDS)
            encodings[name] = declared.encoding
    return fields, encodings


# One entry per body the PBX sends; the name says the event (and variant).
FIELDS, ENCODINGS = _every_example()
MESSAGE_EXAMPLES: Final = tuple(name for name, enc in ENCODINGS.items() if enc == JSON)
CALL_EXAMPLES: Final = tuple(name for name, enc in ENCODINGS.items() if enc == FORM)
# Whole calls, in the order the PBX sends their events.
ANSWERED_CALL: Final = (
    "InboundCall",
    "queueEntered",
    "ringAttempt.ringGroup",
    "ringAttempt.extension",
    "ExtensionAnswered",
    "inboundCallCompleted",
    "HangupCall",
)
VOICEMAIL_CALL: Final = (
    "InboundCall",
    "ringAttempt.extension",
    "voicemailHangup",
    "HangupCall.unanswered",
)
OUTBOUND_CALL: Final = ("outboundCall",)


def encode(fields: dict[str, str], encoding: str) -> str:
    """A body for ``fields``: URL-encoded as the PBX does (``+`` for spaces), or JSON."""
    if encoding == FORM:
        return urlencode(fields)
    if encoding == JSON:
        return json.dumps(fields, ensure_ascii=False)
    raise ValueError(f"unknown encoding {encoding!r}")


EXAMPLES: Final[dict[str, tuple[str, str]]] = {
    name: (ENCODINGS[name], encode(fields, ENCODINGS[name])) for name, fields in FIELDS.items()
}
"""name -> (encoding, body): every example exactly as the PBX would POST it."""

_SPELLINGS: Final = {
    "callUuid": ("callUuid",),
    "tenantId": ("tenantId", "tenantID"),
    "containerId": ("containerId", "containerID"),
    "conversationId": ("conversationID", "conversationId"),
}


def fields_for(
    name: str,
    *,
    call_uuid: str | None = None,
    tenant_id: str | None = None,
    container_id: str | None = None,
    conversation_id: str | None = None,
    **overrides: str,
) -> dict[str, str]:
    """The example's fields (a copy) with ids and any other fields replaced.

    Ids are replaced under whichever spelling the example uses, so a JSON
    message keeps ``tenantID``. ``overrides`` set fields by their exact name.
    """
    fields = dict(FIELDS[name])
    wanted = {
        "callUuid": call_uuid,
        "tenantId": tenant_id,
        "containerId": container_id,
        "conversationId": conversation_id,
    }
    for canonical, value in wanted.items():
        if value is None:
            continue
        for spelling in _SPELLINGS[canonical]:
            if spelling in fields:
                fields[spelling] = value
                break
        else:
            if canonical == "callUuid" and ENCODINGS[name] == JSON:
                continue  # messages have no call
            fields[canonical] = value
    fields.update(overrides)
    return fields


def form_body(name: str, **changes: str) -> str:
    """The example as a URL-encoded body, e.g. ``form_body("HangupCall", call_uuid="x")``."""
    return encode(fields_for(name, **changes), FORM)


def json_body(name: str, **changes: str) -> str:
    """The example as a JSON body (whatever encoding the PBX uses for it)."""
    return encode(fields_for(name, **changes), JSON)


def body_for(name: str, **changes: str) -> tuple[str, str]:
    """(content type, body) in the example's own encoding, with fields replaced."""
    encoding = ENCODINGS[name]
    return CONTENT_TYPES[encoding], encode(fields_for(name, **changes), encoding)


def call_bodies(
    call_uuid: str, tenant_id: str = TENANT_ID, names: tuple[str, ...] = ANSWERED_CALL
) -> list[tuple[str, str]]:
    """(name, form body) for every event of one call, in the order the PBX sends them."""
    return [(name, form_body(name, call_uuid=call_uuid, tenant_id=tenant_id)) for name in names]
