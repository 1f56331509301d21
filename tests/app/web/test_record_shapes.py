"""The records the engine stores and the schemas the API shows them through name the
same fields, so a field added to a record is a choice: shown (add it to the schema)
or kept internal (listed here)."""

from __future__ import annotations

from app.calls.schemas import OUTCOME_KINDS, OutcomeRecordSchema
from app.subscriptions.schemas import DeliverySchema, SubscriptionAnswer
from app.web.schema_fields import values
from core.deliveries.records import Delivery, Subscription
from statemachine.outcome import Outcome, OutcomeRecord

# Stored for the service's own use, never shown.
SUBSCRIPTION_INTERNAL = {"secrets", "created_us"}
DELIVERY_INTERNAL = {"body", "subscription_tenant"}


def _shown(schema: type) -> set[str]:
    return {field.data_key or name for name, field in schema().dump_fields.items()}


def test_an_outcome_record_is_shown_whole() -> None:
    assert _shown(OutcomeRecordSchema) == set(OutcomeRecord.__annotations__)


def test_a_subscription_is_shown_but_its_internal_fields() -> None:
    """Computed when shown: its in-flight limit (stored: None for the default) and breaker."""
    stored = set(Subscription.__annotations__)
    assert _shown(SubscriptionAnswer) == stored - SUBSCRIPTION_INTERNAL | {"breaker"}


def test_a_delivery_is_shown_but_its_internal_fields() -> None:
    """The body posted is shown parsed: as ``payload`` (an outcome record) or ``event``
    (a live event or an alert)."""
    stored = set(Delivery.__annotations__)
    assert _shown(DeliverySchema) == stored - DELIVERY_INTERNAL | {"payload", "event"}


def test_the_outcome_kinds_listed_are_every_kind_the_engine_decides() -> None:
    """The API lists them in its own order (its 400 answer names them so); the set is
    the engine's."""
    assert set(OUTCOME_KINDS) == set(values(Outcome))
    assert len(OUTCOME_KINDS) == len(Outcome)
