"""The intake's schemas fit the event registry: one per declared PBX event, each building it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from app import schema_fields
from app.event_schemas import RECEIVED_AT, SCHEMAS, check_schemas, schemas_for
from app.schemas import _schema_for, canonical_type, load_event
from statemachine.events import CallEvent, ExtensionEvent, Party
from statemachine.primevox import ALIASES, EVENTS, EXAMPLE_VALUES
from statemachine.registry import Declared, Registry, RegistryError

AT = datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)


@dataclass(frozen=True)
class CallTransferred(ExtensionEvent):
    """A new event of the plain extension shape."""


@dataclass(frozen=True)
class CallParked(CallEvent):
    """A new event with a field of its own."""

    slot: str = ""


def _with(*extra: Declared) -> Registry:
    return Registry([*EVENTS.declared, *extra], aliases=ALIASES, example_values=EXAMPLE_VALUES)


def test_a_declared_event_without_a_schema_fails_the_check() -> None:
    missing = dict(SCHEMAS)
    del missing["QueueEnteredEvent"]
    with pytest.raises(RegistryError, match="no intake schema for QueueEnteredEvent"):
        check_schemas(EVENTS, missing)


def test_a_schema_for_no_declared_event_fails_the_check() -> None:
    extra = {**SCHEMAS, "CallParkedEvent": SCHEMAS["UnknownCallEvent"]}
    with pytest.raises(RegistryError, match="intake schema for undeclared CallParkedEvent"):
        check_schemas(EVENTS, extra)


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
    schemas = schemas_for(registry)
    check_schemas(registry, schemas)
    body = {"tenantId": "t1", "callUuid": "c1", "extensionNumber": "101", "extName": "Ann"}
    event = schemas["CallTransferredEvent"].load({**body, RECEIVED_AT: AT.isoformat()})
    assert event == CallTransferred("t1", "", AT, call_uuid="c1", extension=Party("101", "Ann"))


def test_an_event_with_fields_of_its_own_needs_its_schema() -> None:
    registry = _with(Declared("CallParkedEvent", "callParked", CallParked, "CallParked", "held"))
    with pytest.raises(RegistryError, match="no intake schema for CallParkedEvent"):
        check_schemas(registry, schemas_for(registry))
