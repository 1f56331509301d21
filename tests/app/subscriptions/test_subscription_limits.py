"""A tenant's share of subscriptions, and what a subscription body or filter may not name."""

from __future__ import annotations

from dataclasses import replace

import fakeredis
import pytest
from flask.testing import FlaskClient
from test_api import HOOK, assert_error, create, listed

from app import create_app
from core.settings import Settings
from core.store import Store
from tests.kit.deliveries import ADMIN, T1, T2


def capped_client(redis_client: fakeredis.FakeRedis, settings: Settings, cap: int) -> FlaskClient:
    app = create_app(
        {
            "TESTING": True,
            "REDIS_CLIENT": redis_client,
            "CALLSTATE_SETTINGS": replace(settings, max_subscriptions_per_tenant=cap),
        }
    )
    return app.test_client()


def test_the_cap_is_25_unless_set() -> None:
    """MAX_SUBSCRIPTIONS_PER_TENANT: 25 by default, read from the environment."""
    assert Settings.from_env({}).max_subscriptions_per_tenant == 25
    read = Settings.from_env({"MAX_SUBSCRIPTIONS_PER_TENANT": "3"})
    assert read.max_subscriptions_per_tenant == 3


def test_past_its_cap_a_tenant_gets_409_and_nothing_is_stored(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """One more subscription than the cap is 409 with an error naming the setting; the
    count stays at the cap."""
    client = capped_client(redis_client, settings, cap=3)
    for _ in range(3):
        create(client, {"url": HOOK}, auth=T1)
    answer = client.post("/v1/subscriptions", json={"url": HOOK}, headers=T1)
    assert_error(answer, 409)
    assert "MAX_SUBSCRIPTIONS_PER_TENANT" in answer.get_json()["error"]
    assert len(listed(client, T1)) == 3
    assert Store(redis_client).subscriptions.subscription_count("t1") == 3


def test_one_tenant_at_its_cap_leaves_the_others_their_share(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """t1 at its cap: t2 still subscribes, and so does an admin for all tenants."""
    client = capped_client(redis_client, settings, cap=2)
    for _ in range(2):
        create(client, {"url": HOOK}, auth=T1)
    create(client, {"url": HOOK}, auth=T1, expect=409)
    create(client, {"url": HOOK}, auth=T2)
    create(client, {"url": HOOK}, auth=ADMIN)
    # An admin naming t1 counts against t1.
    create(client, {"url": HOOK, "tenant_id": "t1"}, auth=ADMIN, expect=409)


def test_deleting_one_frees_its_place_and_rotating_takes_none(
    redis_client: fakeredis.FakeRedis, settings: Settings
) -> None:
    """The count is what is stored: a deleted subscription frees a place, and saving an
    existing one again (a secret's rotation) is not a new one."""
    client = capped_client(redis_client, settings, cap=2)
    first = create(client, {"url": HOOK}, auth=T1)
    create(client, {"url": HOOK}, auth=T1)
    rotated = client.post(f"/v1/subscriptions/{first['id']}/rotate-secret", json={}, headers=T1)
    assert rotated.status_code == 200, rotated.get_data(as_text=True)
    create(client, {"url": HOOK}, auth=T1, expect=409)
    assert client.delete(f"/v1/subscriptions/{first['id']}", headers=T1).status_code == 204
    create(client, {"url": HOOK}, auth=T1)


def test_tenant_star_in_a_body_is_400(client: FlaskClient) -> None:
    """``*`` stands for every tenant; a body names one tenant or leaves tenant_id out."""
    answer = client.post("/v1/subscriptions", json={"url": HOOK, "tenant_id": "*"}, headers=ADMIN)
    assert_error(answer, 400)
    assert "tenant_id" in answer.get_json()["fields"]
    assert listed(client) == []


@pytest.mark.parametrize("status", ["bogus", "DELIVERED", "open"])
def test_a_bad_status_filter_on_deliveries_is_400(client: FlaskClient, status: str) -> None:
    """deliveries?status= takes only a delivery's statuses, as every other list's filter."""
    made = create(client, {"url": HOOK})
    answer = client.get(
        f"/v1/subscriptions/{made['id']}/deliveries",
        query_string={"status": status},
        headers=ADMIN,
    )
    assert_error(answer, 400)
    assert "status" in answer.get_json()["error"]
