"""The intake's schemas come from the event registry: one per declared PBX event, built."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import ValidationError

import app.web.schema_fields as schema_fields
from app.intake.event_schemas import RECEIVED_AT, SCHEMAS, schema_for, schemas_for
from app.intake.loading import _quick_load, _schema_for, canonical_type, load_event
from statemachine.events import CallEvent, ExtensionEvent, Party
from statemachine.primevox import ALIASES, EVENTS, EXAMPLE_VALUES
from statemachine.registry import Declared, Registry, RegistryError, check_readings
from statemachine.wire import LONG_TEXT, identifier, read, text

AT = datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)


@dataclass(frozen=True)
class CallTransferred(ExtensionEvent):
    """A new event of the plain extension shape."""


@dataclass(frozen=True)
class CallParked(CallEvent):
    """A new event with fields of its own, each saying where the body carries it."""

    lot: str = field(default="", metadata=read(identifier("lotId", required=True)))
    slot: str = field(default="", metadata=read(text("parkSlot")))
    note: str = field(default="", metadata=read(text("parkNote", max_length=LONG_TEXT)))
    parked_by: Party = field(
        default_factory=Party, metadata=read(number=text("byNumber"), name=text("byName"))
    )
    origin: str = "pbx"


PARKED = Declared(
    "CallParkedEvent",
    "callParked",
    CallParked,
    "CallParked",
    "parked",
    fields=("tenantId", "callUuid", "lotId", "parkSlot"),
    fixed={"origin": "park"},
)
PARKED_VALUES = {"lotId": "lot-1", "parkSlot": "71"}


def _with(*extra: Declared) -> Registry:
    return Registry(
        [*EVENTS.declared, *extra],
        aliases=ALIASES,
        example_values={**EXAMPLE_VALUES, **PARKED_VALUES},
    )


def _load(schema: Any, body: dict[str, Any]) -> Any:
    return schema.load({**body, RECEIVED_AT: AT.isoformat()})


@pytest.mark.parametrize("declared", EVENTS.from_pbx, ids=lambda d: d.title)
def test_each_sample_is_checked_by_its_own_schema_into_its_class(declared: Declared) -> None:
    """The registry's sample body is routed to the declaration's schema and builds its class."""
    body = EVENTS.sample(EVENTS.key_of(declared))
    assert _schema_for(canonical_type(body["eventType"]), body) is SCHEMAS[declared.title]
    event_type, event = load_event(body, AT)
    assert type(event) is declared.event_class
    assert event_type == body["eventType"]


def test_the_read_apis_examples_name_the_webhook_examples_ids() -> None:
    """A documented answer shows the call, tenant and conversation the webhook examples send."""
    values = EVENTS.example_values
    assert values["tenantId"] == schema_fields.EXAMPLE_TENANT
    assert values["containerId"] == schema_fields.EXAMPLE_CONTAINER
    assert values["callUuid"] == schema_fields.EXAMPLE_CALL_UUID
    assert values["conversationId"] == schema_fields.EXAMPLE_CONVERSATION


def test_a_plain_extension_event_needs_no_schema_written() -> None:
    """Declaring it is enough: the shared extension schema builds its class."""
    transferred = Declared(
        "CallTransferredEvent", "callTransferred", CallTransferred, "CallTransferred", "moved"
    )
    registry = _with(transferred)
    check_readings(registry)
    schemas = schemas_for(registry)
    body = {"tenantId": "t1", "callUuid": "c1", "extensionNumber": "101", "extName": "Ann"}
    event = _load(schemas["CallTransferredEvent"], body)
    assert event == CallTransferred("t1", "", AT, call_uuid="c1", extension=Party("101", "Ann"))


def test_an_event_with_fields_of_its_own_needs_no_schema_written() -> None:
    """Its dataclass says where each field is read from; the schema is derived from that."""
    registry = _with(PARKED)
    check_readings(registry)
    schema = schemas_for(registry)["CallParkedEvent"]
    body = {
        **registry.sample("callParked"),
        "parkNote": "by the door",
        "byNumber": "102",
        "byName": "Bo",
        "origin": "ignored: fixed by the declaration",
    }
    expected = CallParked(
        "acme",
        "",
        AT,
        call_uuid=EXAMPLE_VALUES["callUuid"],
        lot="lot-1",
        slot="71",
        note="by the door",
        parked_by=Party("102", "Bo"),
        origin="park",
    )
    assert _load(schema, body) == expected
    # The quick path reads the same declared checks and builds the same event.
    assert _quick_load(schema, body, AT) == expected
    # Absent optional fields read as empty; the body's spelling variants are folded.
    bare = _load(schema, {"tenantID": "t1", "callUuid": "c1", "lotId": "l"})
    assert bare == CallParked("t1", "", AT, call_uuid="c1", lot="l", origin="park")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"lotId": None}, {"lotId": ["lotId is missing"]}),
        ({"lotId": ""}, {"lotId": ["lotId must be 1 to 200 characters"]}),
        ({"lotId": "a\x00b"}, {"lotId": ["must not contain control characters"]}),
        ({"parkSlot": "x" * 201}, {"parkSlot": ["Longer than maximum length 200."]}),
        ({"parkNote": "x" * 2001}, {"parkNote": ["Longer than maximum length 2000."]}),
        ({"byName": 7}, {"byName": ["Not a valid string."]}),
    ],
)
def test_a_new_events_fields_are_checked_as_its_dataclass_says(
    changes: dict[str, Any], problem: dict[str, list[str]]
) -> None:
    schema = schemas_for(_with(PARKED))["CallParkedEvent"]
    body = {**_with(PARKED).sample("callParked"), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    assert _quick_load(schema, body, AT) is None
    with pytest.raises(ValidationError) as refused:
        _load(schema, body)
    assert refused.value.messages == problem


@dataclass(frozen=True)
class CallerNumbered(CallEvent):
    """Its own field would load under the name of a part of ``caller``."""

    caller_number: str = field(default="", metadata=read(text("otherNumber")))


def test_two_fields_loading_under_one_name_do_not_make_a_schema() -> None:
    declared = Declared("NumberedEvent", "numbered", CallerNumbered, "Numbered", "numbered")
    with pytest.raises(RegistryError, match="two of its fields load under one name"):
        schema_for(declared)


@dataclass(frozen=True)
class NamedOnly(CallEvent):
    """Reads only the second field of a Party: it could not be built by position."""

    agent: Party = field(default_factory=Party, metadata=read(name=text("agentName")))


def test_a_value_read_in_part_must_read_its_first_fields() -> None:
    declared = Declared("NamedOnlyEvent", "namedOnly", NamedOnly, "NamedOnly", "named")
    with pytest.raises(RegistryError, match="agent must read the first fields of its class"):
        schema_for(declared)
