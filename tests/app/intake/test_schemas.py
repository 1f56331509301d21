"""app.intake.loading.load_event: every PrimeVOX body, every spelling, into its typed event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.intake.loading import MAX_ID_LENGTH, BadEvent, load_event
from app.intake.routes import decode_body
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
from tests.kit.examples import (
    CALL_UUID,
    CONTAINER_ID,
    CONVERSATION_ID,
    EXAMPLES,
    FIELDS,
    OUTBOUND_CALL_UUID,
    TENANT_ID,
    fields_for,
)

AT = datetime(2025, 11, 25, 9, 41, 7, 123456, tzinfo=UTC)
COMMON = {"tenant_id": TENANT_ID, "container_id": CONTAINER_ID, "received_at": AT}
CALLER = Party("5551234567", "José O'Brien-Núñez, Jr.")
ZOE = Party("101", "Zoë Müller-Lüdenscheidt")
ANA = Party("102", "Ana-María d'Souza (Front desk)")

EXPECTED: dict[str, tuple[str, Event]] = {
    "InboundCall": (
        "InboundCall",
        InboundCall(
            **COMMON,
            call_uuid=CALL_UUID,
            caller=CALLER,
            did=Did("+15551234567", "Main line \u2013 Søren's Café & Bar (24/7)", "Sales/Support"),
            cid_prefix="VIP: ",
        ),
    ),
    "HangupCall": (
        "HangupCall",
        HangupCall(**COMMON, call_uuid=CALL_UUID, caller=CALLER, extension=ZOE),
    ),
    "HangupCall.unanswered": (
        "HangupCall",
        HangupCall(
            **COMMON,
            call_uuid=CALL_UUID,
            caller=Party("anonymous", "ANONYMOUS"),
            extension=Party("", ""),
        ),
    ),
    "ringAttempt.extension": (
        "ringAttempt",
        ExtensionRinging(
            **COMMON, call_uuid=CALL_UUID, caller=Party("5551234567", ""), extension=ZOE
        ),
    ),
    "ringAttempt.ringGroup": (
        "ringAttempt",
        RingGroupEntered(
            **COMMON, call_uuid=CALL_UUID, caller=Party("+15551234567", ""), ring_group="600"
        ),
    ),
    "queueEntered": (
        "queueEntered",
        QueueEntered(**COMMON, call_uuid=CALL_UUID, caller=Party("anonymous", ""), queue="700"),
    ),
    "ExtensionAnswered": (
        "ExtensionAnswered",
        ExtensionAnswered(**COMMON, call_uuid=CALL_UUID, caller=CALLER, extension=ANA),
    ),
    "inboundCallCompleted": (
        "inboundCallCompleted",
        ExtensionCallEnded(**COMMON, call_uuid=CALL_UUID, caller=CALLER, extension=ANA),
    ),
    "voicemailHangup": (
        "voicemailHangup",
        VoicemailLeft(
            **COMMON,
            call_uuid=CALL_UUID,
            caller=Party("", ""),
            extension=Party("103", "Björn Ærøskøbing & Co."),
        ),
    ),
    "outboundCall": (
        "outboundCall",
        OutboundCallPlaced(
            **COMMON,
            call_uuid=OUTBOUND_CALL_UUID,
            caller=Party("", ""),
            extension=Party("104", "François L'Écuyer"),
            number_dialed="+15557654321",
        ),
    ),
    "inboundMessage": (
        "inboundMessage",
        MessageEvent(
            **COMMON,
            conversation_id=CONVERSATION_ID,
            direction="inbound",
            from_number="+15559876543",
            to_number="+15551234567",
            text="Hi! Running 10 min late 🚗\nSee you at 3:30 \u2014 Zoë & \"the crew\"",
        ),
    ),
    "outboundMessage": (
        "outboundMessage",
        MessageEvent(
            **COMMON,
            conversation_id=CONVERSATION_ID,
            direction="outbound",
            from_number="+15551234567",
            to_number="+15559876543",
            text="No problem, Zoë. Table for 4 at Søren's Café ☕ <3",
        ),
    ),
}

EXTENSION_EVENTS = ("HangupCall", "ringAttempt.extension", "inboundCallCompleted",
                    "voicemailHangup", "outboundCall")


def load(fields: dict[str, str]) -> tuple[str, Event]:
    return load_event(fields, AT)


def test_every_example_has_an_expectation() -> None:
    """The expectations below cover every example body, and nothing else."""
    assert set(EXPECTED) == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_loads_into_its_dataclass(name: str) -> None:
    """Each example field dict loads into the right dataclass with exactly the values sent."""
    assert load(dict(FIELDS[name])) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_body_decodes_and_loads(name: str) -> None:
    """Each example body, decoded as the intake decodes it, loads to the same event."""
    _, body = EXAMPLES[name]
    decoded = decode_body(body.encode("utf-8"))
    assert decoded == FIELDS[name]
    assert load(decoded) == EXPECTED[name]


def _respell(fields: dict[str, str], old: str, new: str) -> dict[str, str]:
    """The same fields in the same order, with key ``old`` renamed to ``new``."""
    return {(new if key == old else key): value for key, value in fields.items()}


SPELLINGS = [
    ("containerId", "containerID"),
    ("tenantId", "tenantID"),
]


@pytest.mark.parametrize(("canonical", "variant"), SPELLINGS)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_id_spelling_variants_load_the_same(name: str, canonical: str, variant: str) -> None:
    """containerId/containerID and tenantId/tenantID are accepted on every event kind."""
    fields = dict(FIELDS[name])
    spelled = _respell(fields, canonical, variant) if canonical in fields else _respell(
        fields, variant, canonical
    )
    assert spelled != fields
    assert load(spelled) == EXPECTED[name]


@pytest.mark.parametrize("name", ["inboundMessage", "outboundMessage"])
def test_conversation_id_spelling_variants(name: str) -> None:
    """conversationID (JSON spelling) and conversationId load the same message."""
    spelled = _respell(dict(FIELDS[name]), "conversationID", "conversationId")
    assert load(spelled) == EXPECTED[name]


@pytest.mark.parametrize("name", EXTENSION_EVENTS)
def test_extension_long_spelling_on_ext_events(name: str) -> None:
    """extensionNumber/extensionName are accepted wherever extNumber/extName are."""
    fields = _respell(dict(FIELDS[name]), "extNumber", "extensionNumber")
    fields = _respell(fields, "extName", "extensionName")
    assert load(fields) == EXPECTED[name]


@pytest.mark.parametrize(("number_key", "name_key"), [
    ("extNumber", "extName"),
    ("extensionNumber", "extName"),
    ("extNumber", "extensionName"),
])
def test_extension_answered_short_and_mixed_spellings(number_key: str, name_key: str) -> None:
    """ExtensionAnswered also loads with extNumber/extName, or one of each spelling."""
    fields = _respell(dict(FIELDS["ExtensionAnswered"]), "extensionNumber", number_key)
    fields = _respell(fields, "extensionName", name_key)
    assert load(fields) == EXPECTED["ExtensionAnswered"]


def _case_variants(event_type: str) -> list[str]:
    return sorted({event_type, event_type.lower(), event_type.upper(),
                   event_type[:1].swapcase() + event_type[1:], f"  {event_type} "})


CASE_CASES = [
    (name, variant)
    for name, (event_type, _) in sorted(EXPECTED.items())
    for variant in _case_variants(event_type)
]


@pytest.mark.parametrize(("name", "variant"), CASE_CASES)
def test_event_type_case_variants(name: str, variant: str) -> None:
    """eventType is matched whatever its case (and surrounding blanks); the PBX spelling is kept."""
    fields = {**FIELDS[name], "eventType": variant}
    assert load(fields) == EXPECTED[name]


@pytest.mark.parametrize(("target", "expected"), [
    ("extension", ExtensionRinging),
    ("EXTENSION", ExtensionRinging),
    ("ringGroup", RingGroupEntered),
    ("ringgroup", RingGroupEntered),
    ("RINGGROUP", RingGroupEntered),
])
def test_ring_attempt_event_target_case(target: str, expected: type[Event]) -> None:
    """ringAttempt's eventTarget decides extension ring vs ring group, whatever its case."""
    base = "ringAttempt.ringGroup" if expected is RingGroupEntered else "ringAttempt.extension"
    _, event = load({**FIELDS[base], "eventTarget": target})
    assert type(event) is expected


def test_ring_attempt_without_target_is_told_apart_by_fields() -> None:
    """A ringAttempt without eventTarget is a ring group ring if it names only rgNumber."""
    group = {k: v for k, v in FIELDS["ringAttempt.ringGroup"].items() if k != "eventTarget"}
    ext = {k: v for k, v in FIELDS["ringAttempt.extension"].items() if k != "eventTarget"}
    assert load(group) == EXPECTED["ringAttempt.ringGroup"]
    assert load(ext) == EXPECTED["ringAttempt.extension"]


def test_unknown_event_type_with_call_uuid_is_an_unknown_call_event() -> None:
    """An eventType we do not know, with a callUuid, loads as UnknownCallEvent keeping its type."""
    fields = fields_for("HangupCall", eventType="callParked")
    event_type, event = load(fields)
    assert event_type == "callParked"
    assert event == UnknownCallEvent(
        **COMMON, call_uuid=CALL_UUID, caller=CALLER, original_type="callParked"
    )


def test_unknown_event_type_without_call_uuid_is_an_unknown_event() -> None:
    """An eventType we do not know, without a callUuid, loads as UnknownEvent for inspection."""
    fields = {"eventType": "faxReceived", "tenantId": TENANT_ID, "containerId": CONTAINER_ID}
    event_type, event = load(fields)
    assert event_type == "faxReceived"
    assert event == UnknownEvent(**COMMON, original_type="faxReceived")


def test_unknown_fields_are_ignored() -> None:
    """Fields the PBX may add later do not stop an event from loading."""
    fields = {**FIELDS["HangupCall"], "hangupCause": "NORMAL_CLEARING", "sipCode": "200"}
    assert load(fields) == EXPECTED["HangupCall"]


# -- refusals ---------------------------------------------------------------------


def _without(name: str, *keys: str) -> dict[str, str]:
    return {k: v for k, v in FIELDS[name].items() if k not in keys}


def assert_refused(fields: dict[str, str], *field_names: str) -> BadEvent:
    with pytest.raises(BadEvent) as caught:
        load(fields)
    message = caught.value.message
    assert message == str(caught.value)
    for field_name in field_names:
        assert field_name.lower() in message.lower(), message
    return caught.value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_missing_tenant_is_refused(name: str) -> None:
    """An event without a tenant (either spelling) is refused, naming tenantId."""
    refused = assert_refused(_without(name, "tenantId", "tenantID"), "tenantId")
    assert "tenantId" in refused.details["fields"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_empty_tenant_is_refused(name: str) -> None:
    """An event whose tenant is empty is refused, naming tenantId."""
    fields = fields_for(name, tenant_id="")
    assert_refused(fields, "tenantId")


@pytest.mark.parametrize("name", [n for n in sorted(EXPECTED) if not n.endswith("Message")])
def test_call_event_without_call_uuid_is_refused(name: str) -> None:
    """A known call event without callUuid, or with an empty one, is refused naming callUuid."""
    assert_refused(_without(name, "callUuid"), "callUuid")
    assert_refused(fields_for(name, call_uuid=""), "callUuid")


@pytest.mark.parametrize("name", ["inboundMessage", "outboundMessage"])
def test_message_without_conversation_is_refused(name: str) -> None:
    """A message without conversationID is refused, naming the conversation id field."""
    assert_refused(_without(name, "conversationID"), "conversationId")


@pytest.mark.parametrize("event_type", [None, "", "   ", "\t\n"])
def test_missing_event_type_is_refused(event_type: str | None) -> None:
    """A body without eventType (absent, empty or blank) is not an event."""
    fields = _without("HangupCall", "eventType")
    if event_type is not None:
        fields["eventType"] = event_type
    assert_refused(fields, "eventType")


@pytest.mark.parametrize("event_type", ["Hangup\x00Call", "ring\nAttempt", "x" * 201, "a\x7fb"])
def test_implausible_event_type_is_refused(event_type: str) -> None:
    """An eventType with control characters or absurd length is refused, naming eventType."""
    assert_refused({**FIELDS["HangupCall"], "eventType": event_type}, "eventType")


@pytest.mark.parametrize("event_type", ["callstate.timeout", "CALLSTATE.TIMEOUT"])
def test_engine_event_type_is_reserved(event_type: str) -> None:
    """The engine's own timeout type cannot be posted by a sender."""
    assert_refused({**FIELDS["HangupCall"], "eventType": event_type}, "eventType")


ID_FIELDS = [
    ("HangupCall", "callUuid"),
    ("HangupCall", "tenantId"),
    ("HangupCall", "containerId"),
    ("inboundMessage", "tenantID"),
    ("inboundMessage", "containerID"),
    ("inboundMessage", "conversationID"),
]


@pytest.mark.parametrize("bad", ["\x00", "\n", "\r\n", "\t", "\x1b[31m", "\x7f"])
@pytest.mark.parametrize(("name", "key"), ID_FIELDS)
def test_control_characters_in_ids_are_refused(name: str, key: str, bad: str) -> None:
    """Ids (callUuid, tenant, container, conversation) with control characters are refused."""
    fields = {**FIELDS[name], key: f"abc{bad}def"}
    assert_refused(fields, key)


@pytest.mark.parametrize(("name", "key"), ID_FIELDS)
def test_overlong_ids_are_refused(name: str, key: str) -> None:
    """Ids longer than MAX_ID_LENGTH are refused naming the field; exactly the limit loads."""
    assert_refused({**FIELDS[name], key: "x" * (MAX_ID_LENGTH + 1)}, key)
    load({**FIELDS[name], key: "x" * MAX_ID_LENGTH})


def test_refusal_names_every_bad_field() -> None:
    """Several problems at once are all reported, each under its field."""
    fields = {**_without("HangupCall", "tenantId"), "callUuid": "a\x00b"}
    refused = assert_refused(fields, "tenantId", "callUuid")
    assert set(refused.details["fields"]) == {"tenantId", "callUuid"}
