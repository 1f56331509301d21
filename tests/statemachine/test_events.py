"""Typed events: log records round-trip, times are exact, event ids are content ids."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine.event_log import from_record, to_record
from statemachine.events import (
    CallEvent,
    CallTimedOut,
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
    event_id_for,
    isoformat,
    micros,
    parse_time,
)
from statemachine.primevox import EVENTS

WHEN = datetime(2024, 3, 9, 23, 59, 59, 999_999, tzinfo=UTC)
COMMON: dict[str, Any] = {"tenant_id": "t1", "container_id": "c1", "received_at": WHEN}
CALL: dict[str, Any] = {**COMMON, "call_uuid": "uuid-1", "caller": Party("+15551234567", "Zoë")}
ALICE = Party("101", "Alice & Bob's \"desk\"")

# (event, eventType as the PBX spells it) for every class the log can hold.
EXAMPLES: list[tuple[Event, str]] = [
    (InboundCall(**CALL, did=Did("+15550001111", "Main — line", "Sales"), cid_prefix="VIP:"),
     "InboundCall"),
    (HangupCall(**CALL, extension=ALICE), "HangupCall"),
    (HangupCall(**CALL), "HangupCall"),
    (ExtensionRinging(**CALL, extension=ALICE), "ringAttempt"),
    (RingGroupEntered(**CALL, ring_group="600"), "ringAttempt"),
    (QueueEntered(**CALL, queue="500"), "queueEntered"),
    (ExtensionAnswered(**CALL, extension=ALICE), "ExtensionAnswered"),
    (ExtensionCallEnded(**CALL, extension=ALICE), "inboundCallCompleted"),
    (VoicemailLeft(**CALL, extension=ALICE), "voicemailHangup"),
    (OutboundCallPlaced(**CALL, extension=ALICE, number_dialed="+4930123456"), "outboundCall"),
    (CallTimedOut(**COMMON, call_uuid="uuid-1"), "callstate.timeout"),
    (UnknownCallEvent(**CALL, original_type="callParked"), "callParked"),
    (MessageEvent(**COMMON, conversation_id="conv-9", direction="outbound",
                  from_number="+15550001111", to_number="+15551234567",
                  text="héllo\nwörld 👋 <b>&amp;</b>"), "outboundMessage"),
    (UnknownEvent(**COMMON, original_type="presenceChanged"), "presenceChanged"),
]
ALL_KINDS = {*EVENTS.call_event_classes, "MessageEvent", "UnknownEvent"}


def fields_for(event: Event, event_type: str) -> dict[str, str]:
    """Some plausible as-sent fields (their exact content does not matter to the record)."""
    return {"eventType": event_type, "tenantId": event.tenant_id, "containerId": "c1",
            "callUuid": "uuid-1", "extName": "Zoë Ñ"}


def test_examples_cover_every_event_class() -> None:
    """The round-trip examples include every class a log record can name."""
    assert {type(event).__name__ for event, _ in EXAMPLES} == ALL_KINDS


@pytest.mark.parametrize(("event", "event_type"), EXAMPLES,
                         ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(EXAMPLES)])
def test_record_round_trip(event: Event, event_type: str) -> None:
    """from_record(to_record(e)) == e, also through JSON as the log stores it."""
    sent = fields_for(event, event_type)
    record = to_record(event, sent, event_type)
    assert from_record(record) == event
    stored = json.loads(json.dumps(record))
    rebuilt = from_record(stored)
    assert rebuilt == event
    assert type(rebuilt) is type(event)
    assert rebuilt.received_at.tzinfo is not None


@pytest.mark.parametrize(("event", "event_type"), EXAMPLES,
                         ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(EXAMPLES)])
def test_record_shape(event: Event, event_type: str) -> None:
    """A record holds the content id, the type as sent, the kind, identity, time and fields."""
    sent = fields_for(event, event_type)
    record = to_record(event, sent, event_type)
    assert set(record) == {"id", "event_type", "kind", "tenant_id", "container_id",
                           "received_at", "fields", "data"}
    assert record["id"] == event_id_for(event_type, sent)
    assert record["event_type"] == event_type
    assert record["kind"] == STORED_NAMES[type(event)]
    assert (record["tenant_id"], record["container_id"]) == ("t1", "c1")
    assert record["received_at"] == "2024-03-09T23:59:59.999999Z"
    assert record["fields"] == sent
    assert json.loads(json.dumps(record["data"])) == record["data"]
    own = {f.name for f in fields(event)} - {"tenant_id", "container_id", "received_at"}
    assert set(record["data"]) == own


# Names that logs already written hold: they must load for ever, whatever the
# classes are called.
STORED_NAMES: dict[type[Event], str] = {
    InboundCall: "InboundCall",
    HangupCall: "HangupCall",
    ExtensionRinging: "ExtensionRinging",
    RingGroupEntered: "RingGroupEntered",
    QueueEntered: "QueueEntered",
    ExtensionAnswered: "ExtensionAnswered",
    ExtensionCallEnded: "ExtensionCallEnded",
    VoicemailLeft: "VoicemailLeft",
    OutboundCallPlaced: "OutboundCallPlaced",
    CallTimedOut: "CallTimedOut",
    UnknownCallEvent: "UnknownCallEvent",
    MessageEvent: "MessageEvent",
    UnknownEvent: "UnknownEvent",
}


def test_stored_names_do_not_follow_class_names() -> None:
    """A record names its event by the registry's stored name, which a renamed class keeps."""

    @dataclass(frozen=True)
    class Renamed(HangupCall):
        pass

    record = to_record(HangupCall(**CALL, extension=ALICE), {}, "HangupCall")
    assert record["kind"] == "HangupCall"
    assert set(STORED_NAMES) == {type(e) for e, _ in EXAMPLES}
    with pytest.raises(KeyError):  # an unregistered class cannot be stored under a made-up name
        to_record(Renamed(**CALL), {}, "HangupCall")


def test_engine_event_type_spelling() -> None:
    """Each class is declared with the eventType the PBX (or the engine) spells."""
    types = {d.event_class: d.event_type for d in EVENTS.declared}
    assert types[InboundCall] == "InboundCall"
    assert types[ExtensionRinging] == types[RingGroupEntered] == "ringAttempt"
    assert types[ExtensionCallEnded] == "inboundCallCompleted"
    assert types[CallTimedOut] == "callstate.timeout"


def test_record_id_ignores_received_at() -> None:
    """A sender's retry (same type and fields, later received_at) gets the same record id."""
    event = HangupCall(**CALL, extension=ALICE)
    sent = {"eventType": "HangupCall", "callUuid": "uuid-1", "extNumber": "101"}
    retry = replace(event, received_at=WHEN + timedelta(seconds=30))
    assert to_record(event, sent, "HangupCall")["id"] == to_record(retry, sent, "HangupCall")["id"]


def test_from_record_uses_defaults_for_missing_data() -> None:
    """A record whose data lacks a field rebuilds the event with that field's default."""
    record = to_record(HangupCall(**CALL, extension=ALICE), {}, "HangupCall")
    del record["data"]["extension"]
    assert from_record(record) == HangupCall(**CALL)


@dataclass(frozen=True)
class CallParked(CallEvent):
    """A new event holding a value of its own (a Party under a new name)."""

    slot: str = ""
    parked_by: Party = field(default_factory=Party)


def test_a_new_events_own_values_come_back_from_its_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log rebuilds every Party or Did field by its type, whatever the field's name."""
    monkeypatch.setitem(EVENTS.classes, "CallParked", CallParked)
    monkeypatch.setitem(EVENTS.stored_names, CallParked, "CallParked")
    event = CallParked(**CALL, slot="71", parked_by=ALICE)
    record = json.loads(json.dumps(to_record(event, {}, "callParked")))
    assert record["data"]["parked_by"] == {"number": ALICE.number, "name": ALICE.name}
    assert from_record(record) == event


def test_from_record_rejects_bad_records() -> None:
    """An unknown kind raises KeyError; an unreadable time raises ValueError."""
    record = to_record(QueueEntered(**CALL, queue="500"), {}, "queueEntered")
    with pytest.raises(KeyError):
        from_record({**record, "kind": "NoSuchEvent"})
    with pytest.raises(ValueError):
        from_record({**record, "received_at": "yesterday"})


# -- times ------------------------------------------------------------------------------
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11, minutes=-59))]
)
aware_times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones
)
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def exact_micros(moment: datetime) -> int:
    """Microseconds since the epoch by integer arithmetic only."""
    offset = moment.utcoffset() or timedelta(0)
    seconds = (moment.toordinal() - EPOCH_ORDINAL) * 86400 + moment.hour * 3600
    seconds += moment.minute * 60 + moment.second
    offset_micros = (offset.days * 86400 + offset.seconds) * 10**6 + offset.microseconds
    return seconds * 10**6 + moment.microsecond - offset_micros


def test_micros_known_values() -> None:
    """micros() is exact at the epoch, before it, and far from it (no float rounding)."""
    assert micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
    assert micros(datetime(1970, 1, 1)) == 0  # naive means UTC
    far = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert micros(far) == 253_402_300_799_999_999
    assert micros(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == (
        1_704_067_200 * 10**6
    )


@settings(max_examples=300, deadline=None)
@given(moment=aware_times)
def test_micros_exact(moment: datetime) -> None:
    """micros() equals the integer count of microseconds since the epoch, for any zone."""
    assert micros(moment) == exact_micros(moment)
    assert micros(moment.astimezone(UTC).replace(tzinfo=None)) == micros(moment)


@settings(max_examples=300, deadline=None)
@given(a=aware_times, b=aware_times)
def test_micros_and_isoformat_keep_order(a: datetime, b: datetime) -> None:
    """micros() and isoformat() strings sort exactly as the moments do."""
    assert (a < b) == (micros(a) < micros(b))
    assert (a == b) == (micros(a) == micros(b))
    ia, ib = isoformat(a), isoformat(b)
    assert ia is not None and ib is not None
    assert (a < b) == (ia < ib)


@settings(max_examples=300, deadline=None)
@given(moment=aware_times)
def test_isoformat_parse_time_round_trip(moment: datetime) -> None:
    """isoformat() writes UTC with 6 fraction digits and Z; parse_time() reads back the instant."""
    text = isoformat(moment)
    assert text is not None
    assert ISO_UTC.match(text), text
    parsed = parse_time(text)
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)
    assert micros(parsed) == micros(moment)
    assert isoformat(parsed) == text


def test_isoformat_known_values() -> None:
    """isoformat() converts to UTC, keeps microseconds, and passes None through."""
    assert isoformat(None) is None
    plus_one = datetime(2024, 1, 1, 0, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert isoformat(plus_one) == "2023-12-31T23:30:00.000005Z"
    assert isoformat(datetime(2024, 2, 29, 12)) == "2024-02-29T12:00:00.000000Z"


def test_parse_time_accepts_offsets_and_rejects_garbage() -> None:
    """parse_time() returns aware UTC for Z, offset and naive text, and raises on garbage."""
    assert parse_time("2024-01-01T00:00:00.000001Z") == datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert parse_time("2024-01-01T01:00:00+01:00") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_time("2024-01-01T01:00:00+01:00").tzinfo == UTC
    assert parse_time("2024-01-01T00:00:00").tzinfo == UTC
    with pytest.raises(ValueError):
        parse_time("not a time")


# -- event ids ----------------------------------------------------------------------------
field_maps = st.dictionaries(
    st.sampled_from(["callUuid", "extNumber", "extName", "tenantId", "a", "ab", "b"]),
    st.text(max_size=8),
    max_size=5,
)
event_types = st.sampled_from(["HangupCall", "ringAttempt", "hangupcall", "x", ""])


def test_event_id_shape_and_known_stability() -> None:
    """An event id is 32 lowercase hex digits and does not depend on field order."""
    one = event_id_for("HangupCall", {"callUuid": "u1", "extNumber": "101", "extName": "Ann"})
    two = event_id_for("HangupCall", {"extName": "Ann", "extNumber": "101", "callUuid": "u1"})
    assert one == two
    assert re.fullmatch(r"[0-9a-f]{32}", one)


def test_event_id_differs_for_different_content() -> None:
    """Changing the type, a value, a key, or moving a value between keys changes the id."""
    base = event_id_for("ringAttempt", {"extNumber": "101", "callUuid": "u1"})
    variants = [
        event_id_for("queueEntered", {"extNumber": "101", "callUuid": "u1"}),
        event_id_for("ringattempt", {"extNumber": "101", "callUuid": "u1"}),
        event_id_for("ringAttempt", {"extNumber": "102", "callUuid": "u1"}),
        event_id_for("ringAttempt", {"extensionNumber": "101", "callUuid": "u1"}),
        event_id_for("ringAttempt", {"extNumber": "101", "callUuid": "u1", "extName": ""}),
        event_id_for("ringAttempt", {"extNumber": "u1", "callUuid": "101"}),
        event_id_for("ringAttempt", {"extNumber": "101"}),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_event_id_accepts_any_text() -> None:
    """Accents, emoji and lone surrogates (undecodable bytes) do not break the id."""
    assert event_id_for("x", {"name": "Zoë 👋"}) != event_id_for("x", {"name": "Zoe 👋"})
    assert re.fullmatch(r"[0-9a-f]{32}", event_id_for("x", {"name": "bad\udcff"}))


@settings(max_examples=300, deadline=None)
@given(type_a=event_types, a=field_maps, type_b=event_types, b=field_maps)
def test_event_id_is_a_content_id(
    type_a: str, a: dict[str, str], type_b: str, b: dict[str, str]
) -> None:
    """Same type and fields give the same id (any key order); different content, a different one."""
    assert event_id_for(type_a, a) == event_id_for(type_a, dict(reversed(list(a.items()))))
    same = type_a == type_b and a == b
    assert (event_id_for(type_a, a) == event_id_for(type_b, b)) == same
