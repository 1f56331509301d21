"""The intake's schemas fit the event registry: one per declared PBX event, each building it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app import schema_fields
from app.schemas import SCHEMAS, _schema_for, canonical_type, check_schemas, load_event
from statemachine.primevox import EVENTS
from statemachine.registry import Declared, RegistryError

AT = datetime(2025, 11, 25, 9, 41, 7, tzinfo=UTC)


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
