"""/v1/subscriptions over the Flask test client (fakeredis)."""

from __future__ import annotations

import base64
import time
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from app import create_app
from core.settings import Settings
from core.store import Store
from tests.kit.deliveries import ADMIN, T1, T2

HOOK = "http://127.0.0.1:9/hook"
PUBLIC_HOOK = "https://8.8.8.8/hook"  # a global address: no DNS needed to check it


def create(
    client: FlaskClient, body: dict[str, Any], auth: dict[str, str] = ADMIN, expect: int = 201
) -> dict[str, Any]:
    answer = client.post("/v1/subscriptions", json=body, headers=auth)
    assert answer.status_code == expect, answer.get_data(as_text=True)
    data: dict[str, Any] = answer.get_json()
    return data


def listed(client: FlaskClient, auth: dict[str, str] = ADMIN) -> list[dict[str, Any]]:
    answer = client.get("/v1/subscriptions", headers=auth)
    assert answer.status_code == 200
    subs: list[dict[str, Any]] = answer.get_json()["subscriptions"]
    return subs


def assert_error(answer: Any, status: int) -> None:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body = answer.get_json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]


def stored_secrets(redis_client: fakeredis.FakeRedis, tenant: str, sub_id: str) -> list[Any]:
    found = Store(redis_client).subscriptions.subscription(tenant, sub_id)
    assert found is not None
    secrets: list[Any] = found["secrets"]
    return secrets


def test_create_list_get_delete(client: FlaskClient) -> None:
    """Create answers 201 with id and secret; list/get show it without secret; delete removes it."""
    made = create(client, {"url": HOOK, "outcomes": ["missed", "voicemail"]})
    assert made["id"].startswith("sub_")
    assert made["url"] == HOOK
    assert made["outcomes"] == ["missed", "voicemail"]
    assert made["tenant_id"] == "*"
    assert made["enabled"] is True
    assert made["secret"].startswith("whsec_")
    assert base64.b64decode(made["secret"][len("whsec_"):], validate=True)

    everything = create(client, {"url": HOOK + "2"})
    assert everything["outcomes"] is None

    subs = listed(client)
    assert {s["id"] for s in subs} == {made["id"], everything["id"]}
    one = client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN)
    assert one.status_code == 200
    shown = one.get_json()
    assert shown == {k: v for k, v in made.items() if k != "secret"}
    for sub in [*subs, shown]:
        assert "secret" not in sub and "secrets" not in sub
        assert made["secret"] not in str(sub)

    gone = client.delete(f"/v1/subscriptions/{made['id']}", headers=ADMIN)
    assert gone.status_code == 204
    assert_error(client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN), 404)
    assert_error(client.delete(f"/v1/subscriptions/{made['id']}", headers=ADMIN), 404)
    assert [s["id"] for s in listed(client)] == [everything["id"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/subscriptions"),
        ("get", "/v1/subscriptions"),
        ("get", "/v1/subscriptions/sub_x"),
        ("delete", "/v1/subscriptions/sub_x"),
        ("post", "/v1/subscriptions/sub_x/rotate-secret"),
        ("get", "/v1/subscriptions/sub_x/deliveries"),
        ("post", "/v1/subscriptions/sub_x/deliveries/d/replay"),
    ],
)
def test_needs_an_api_key(client: FlaskClient, method: str, path: str) -> None:
    """Every subscription route answers 401 JSON without a valid API key."""
    assert_error(getattr(client, method)(path, json={"url": HOOK}), 401)
    bad = {"Authorization": "Bearer nope"}
    assert_error(getattr(client, method)(path, json={"url": HOOK}, headers=bad), 401)


def test_tenant_key_is_confined_to_its_tenant(client: FlaskClient) -> None:
    """A tenant key creates only for its tenant and cannot see or touch other subscriptions."""
    own = create(client, {"url": HOOK}, auth=T1)
    assert own["tenant_id"] == "t1"
    explicit = create(client, {"url": HOOK, "tenant_id": "t1"}, auth=T1)
    assert explicit["tenant_id"] == "t1"
    assert_error(
        client.post("/v1/subscriptions", json={"url": HOOK, "tenant_id": "t2"}, headers=T1), 403
    )
    theirs = create(client, {"url": HOOK, "tenant_id": "t2"})
    everyone = create(client, {"url": HOOK})

    assert {s["id"] for s in listed(client, T1)} == {own["id"], explicit["id"]}
    assert {s["id"] for s in listed(client, T2)} == {theirs["id"]}
    for other in (theirs, everyone):
        base = f"/v1/subscriptions/{other['id']}"
        assert_error(client.get(base, headers=T1), 404)
        assert_error(client.delete(base, headers=T1), 404)
        assert_error(client.post(base + "/rotate-secret", headers=T1), 404)
        assert_error(client.get(base + "/deliveries", headers=T1), 404)
        assert_error(client.post(base + "/deliveries/x/replay", headers=T1), 404)
    # Still there for the admin.
    for other in (theirs, everyone):
        assert client.get(f"/v1/subscriptions/{other['id']}", headers=ADMIN).status_code == 200


def test_admin_may_subscribe_for_a_tenant_that_has_sent_nothing_yet(client: FlaskClient) -> None:
    """An admin's subscription for a tenant without events is listed, readable and deletable."""
    made = create(client, {"url": HOOK, "tenant_id": "t2"})
    assert made["tenant_id"] == "t2"
    assert [s["id"] for s in listed(client)] == [made["id"]]
    assert client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN).status_code == 200
    assert client.delete(f"/v1/subscriptions/{made['id']}", headers=ADMIN).status_code == 204
    assert listed(client, T2) == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": "not a url"},
        {"url": "ftp://127.0.0.1/hook"},
        {"url": "/relative/hook"},
        {"url": 42},
        {"url": "http://user:pw@127.0.0.1/hook"},
        {"url": HOOK, "outcomes": ["bogus"]},
        {"url": HOOK, "outcomes": "missed"},
        {"url": HOOK, "outcomes": [1]},
        {"url": HOOK, "tenant_id": ""},
    ],
    ids=repr,
)
def test_invalid_subscription_is_400(client: FlaskClient, body: dict[str, Any]) -> None:
    """A missing/invalid URL, unknown outcome kinds or a bad tenant: 400 JSON, nothing stored."""
    assert_error(client.post("/v1/subscriptions", json=body, headers=ADMIN), 400)
    assert listed(client) == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b"{not json", b'"text"'])
def test_body_must_be_a_json_object(client: FlaskClient, raw: bytes) -> None:
    """A body that is not a JSON object answers 400 JSON."""
    answer = client.post(
        "/v1/subscriptions", data=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert_error(answer, 400)


def private_app(redis_client: fakeredis.FakeRedis, allow: bool) -> FlaskClient:
    settings = Settings(api_keys={"key-admin": "*"}, subscription_allow_private=allow)
    app = create_app(
        {"TESTING": True, "REDIS_CLIENT": redis_client, "CALLSTATE_SETTINGS": settings}
    )
    return app.test_client()


PRIVATE_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "http://192.168.1.10/hook",
    "http://172.16.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://0.0.0.0/hook",
    "https://100.64.0.1/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_address_refused_unless_allowed(
    redis_client: fakeredis.FakeRedis, url: str
) -> None:
    """A URL on a loopback/private/link-local address is 400 unless SUBSCRIPTION_ALLOW_PRIVATE."""
    strict = private_app(redis_client, allow=False)
    answer = strict.post("/v1/subscriptions", json={"url": url}, headers=ADMIN)
    assert_error(answer, 400)
    assert "SUBSCRIPTION_ALLOW_PRIVATE" in answer.get_json()["error"]
    lenient = private_app(redis_client, allow=True)
    assert lenient.post("/v1/subscriptions", json={"url": url}, headers=ADMIN).status_code == 201


def test_public_address_accepted_when_private_refused(redis_client: fakeredis.FakeRedis) -> None:
    """A URL on a global address is accepted with private addresses refused."""
    strict = private_app(redis_client, allow=False)
    answer = strict.post("/v1/subscriptions", json={"url": PUBLIC_HOOK}, headers=ADMIN)
    assert answer.status_code == 201, answer.get_data(as_text=True)


def test_rotate_secret_keeps_old_one_until_expiry(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """Rotation answers a new secret once; the old stays in force for the grace, then expires."""
    made = create(client, {"url": HOOK}, auth=T1)
    before = time.time()
    rotated = client.post(
        f"/v1/subscriptions/{made['id']}/rotate-secret", json={"grace_seconds": 600}, headers=T1
    )
    after = time.time()
    assert rotated.status_code == 200
    body = rotated.get_json()
    assert body["id"] == made["id"] and body["secret"].startswith("whsec_")
    assert body["secret"] != made["secret"]
    assert "secrets" not in body
    assert "secret" not in client.get(f"/v1/subscriptions/{made['id']}", headers=T1).get_json()

    secrets = stored_secrets(redis_client, "t1", made["id"])
    assert [s["secret"] for s in secrets] == [body["secret"], made["secret"]]
    assert secrets[0]["expires_at"] is None
    assert before + 600 <= secrets[1]["expires_at"] <= after + 600

    # Rotating again does not prolong the first secret, and the default grace is a day.
    again = client.post(f"/v1/subscriptions/{made['id']}/rotate-secret", headers=T1)
    assert again.status_code == 200
    secrets = stored_secrets(redis_client, "t1", made["id"])
    assert [s["secret"] for s in secrets] == [
        again.get_json()["secret"], body["secret"], made["secret"]
    ]
    assert secrets[1]["expires_at"] >= before + 24 * 3600
    assert secrets[2]["expires_at"] <= after + 600

    # With no grace, the secrets rotated out are out of force at once.
    last = client.post(
        f"/v1/subscriptions/{made['id']}/rotate-secret", json={"grace_seconds": 0}, headers=T1
    )
    now = time.time()
    in_force = [
        s["secret"]
        for s in stored_secrets(redis_client, "t1", made["id"])
        if s["expires_at"] is None or s["expires_at"] > now
    ]
    assert in_force == [last.get_json()["secret"]]


@pytest.mark.parametrize("grace", [-1, "soon", 10**9])
def test_rotate_secret_rejects_bad_grace(client: FlaskClient, grace: object) -> None:
    """grace_seconds must be a whole number of seconds within 30 days: else 400."""
    made = create(client, {"url": HOOK})
    answer = client.post(
        f"/v1/subscriptions/{made['id']}/rotate-secret", json={"grace_seconds": grace},
        headers=ADMIN,
    )
    assert_error(answer, 400)


def test_unknown_subscription_and_delivery_are_404(client: FlaskClient) -> None:
    """Rotate, deliveries and replay of unknown ids answer 404 JSON."""
    assert_error(client.post("/v1/subscriptions/sub_none/rotate-secret", headers=ADMIN), 404)
    assert_error(client.get("/v1/subscriptions/sub_none/deliveries", headers=ADMIN), 404)
    made = create(client, {"url": HOOK})
    assert client.get(f"/v1/subscriptions/{made['id']}/deliveries", headers=ADMIN).get_json() == {
        "deliveries": []
    }
    assert_error(
        client.post(f"/v1/subscriptions/{made['id']}/deliveries/nope/replay", headers=ADMIN), 404
    )
