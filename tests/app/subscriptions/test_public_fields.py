"""A subscription is shown through its answer schema: a field stored for the
service's own use (secrets, and any added later) never leaves it."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.subscriptions.schemas import SubscriptionAnswer, SubscriptionWithSecretAnswer
from core.store import Store
from tests.kit.deliveries import ADMIN


def test_an_internal_field_stored_later_is_not_shown(client: FlaskClient, store: Store) -> None:
    made = client.post("/v1/subscriptions", json={"url": "https://example.com/h"}, headers=ADMIN)
    assert made.status_code == 201
    assert set(made.get_json()) == set(SubscriptionWithSecretAnswer().fields) - {"disabled_reason"}
    subs = store.subscriptions
    stored = subs.subscription("*", made.get_json()["id"])
    assert stored is not None and stored["secrets"]
    # A field the record type does not have yet: as if added later, internal.
    subs.save_subscription({**stored, "internal_only": "never shown"})  # type: ignore[typeddict-unknown-key]
    shown = client.get(f"/v1/subscriptions/{stored['id']}", headers=ADMIN).get_json()
    assert set(shown) == set(SubscriptionAnswer().fields) - {"disabled_reason"}
    assert "secrets" not in shown and "created_us" not in shown and "internal_only" not in shown
