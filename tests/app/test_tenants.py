"""Tenants stay apart: every read path, every write path, with two tenants' credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.settings import Settings
from core.store import Store
from workers.engine import Engine

TOKENS = {"tok-a": "alpha", "tok-b": "beta"}
KEYS = {"key-a": "alpha", "key-b": "beta", "key-admin": "*"}


@pytest.fixture
def settings() -> Settings:
    return Settings(
        webhook_tokens=TOKENS, api_keys=KEYS, outcome_grace_seconds=0.0,
        subscription_allow_private=True,
    )  # fmt: skip


@pytest.fixture
def two_tenants(client: FlaskClient, drain: Any, engine: Engine, store: Store) -> None:
    """Each tenant: one live call, one ended (decided) call, one SMS conversation."""
    for token, tenant in (("tok-a", "alpha"), ("tok-b", "beta")):
        for body in (
            f"eventType=InboundCall&tenantId={tenant}&callUuid={tenant}-live&callerIdNum=1",
            f"eventType=InboundCall&tenantId={tenant}&callUuid={tenant}-done&callerIdNum=2",
            f"eventType=HangupCall&tenantId={tenant}&callUuid={tenant}-done&callerIdNum=2",
        ):
            assert client.post(f"/webhooks/primevox/{token}", data=body).status_code == 202
        message = {
            "eventType": "inboundMessage",
            "tenantID": tenant,
            "conversationID": f"{tenant}-conv",
            "fromNumber": "1",
            "toNumber": "2",
            "messageText": "hi",
        }
        assert client.post(f"/webhooks/primevox/{token}", json=message).status_code == 202
    drain()
    for tenant in ("alpha", "beta"):
        engine.decide(tenant, f"{tenant}-done")


def read(client: FlaskClient, key: str, path: str) -> tuple[int, Any]:
    answer = client.get(path, headers={"Authorization": f"Bearer {key}"})
    return answer.status_code, answer.get_json()


def test_a_token_cannot_post_another_tenants_events(client: FlaskClient, store: Store) -> None:
    """A token bound to alpha posting a beta event gets 401, and nothing is stored."""
    body = "eventType=InboundCall&tenantId=beta&callUuid=x&callerIdNum=1"
    assert client.post("/webhooks/primevox/tok-a", data=body).status_code == 401
    assert store.tenants.all() == [] and store.pending.pending_count() == 0


@pytest.mark.usefixtures("two_tenants")
@pytest.mark.parametrize("key,own,other", [("key-a", "alpha", "beta"), ("key-b", "beta", "alpha")])
def test_every_read_path_shows_only_the_keys_tenant(
    client: FlaskClient, key: str, own: str, other: str
) -> None:
    """Live calls, calls, outcomes, stream and messages: own tenant only; others 404/403."""
    status, live = read(client, key, "/v1/calls/live")
    assert status == 200 and {c["tenant_id"] for c in live["calls"]} == {own}
    assert read(client, key, f"/v1/calls/{own}-done")[0] == 200
    assert read(client, key, f"/v1/calls/{other}-done")[0] == 404
    assert read(client, key, f"/v1/calls/{other}-live")[0] == 404
    status, outcomes = read(client, key, "/v1/outcomes")
    assert status == 200 and {o["tenant_id"] for o in outcomes["outcomes"]} == {own}
    assert read(client, key, f"/v1/outcomes?tenant_id={other}")[0] == 403
    assert read(client, key, f"/v1/calls/live?tenant_id={other}")[0] == 403
    assert read(client, key, f"/v1/conversations/{own}-conv/messages")[0] == 200
    assert read(client, key, f"/v1/conversations/{other}-conv/messages")[0] == 404
    stream = client.get(
        "/v1/outcomes/stream", headers={"Authorization": f"Bearer {key}"}, buffered=False
    )
    text = ""
    for chunk in stream.response:
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
        if "event: outcome" in text:
            break
    stream.close()
    records = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert records and {r["tenant_id"] for r in records} == {own}


@pytest.mark.usefixtures("two_tenants")
def test_the_admin_key_sees_both_tenants(client: FlaskClient) -> None:
    """A '*' key reads every tenant, and can narrow to one."""
    _, live = read(client, "key-admin", "/v1/calls/live")
    assert {c["tenant_id"] for c in live["calls"]} == {"alpha", "beta"}
    _, narrowed = read(client, "key-admin", "/v1/outcomes?tenant_id=beta")
    assert {o["tenant_id"] for o in narrowed["outcomes"]} == {"beta"}


def test_subscriptions_are_per_tenant(client: FlaskClient) -> None:
    """A tenant's subscriptions are invisible and untouchable with another tenant's key."""
    headers_a = {"Authorization": "Bearer key-a"}
    made = client.post(
        "/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"}, headers=headers_a
    )
    assert made.status_code == 201 and made.json["tenant_id"] == "alpha"
    sub = made.json["id"]
    assert read(client, "key-b", "/v1/subscriptions")[1]["subscriptions"] == []
    assert read(client, "key-b", f"/v1/subscriptions/{sub}")[0] == 404
    assert read(client, "key-b", f"/v1/subscriptions/{sub}/deliveries")[0] == 404
    gone = client.delete(f"/v1/subscriptions/{sub}", headers={"Authorization": "Bearer key-b"})
    assert gone.status_code == 404
    for_other = client.post(
        "/v1/subscriptions",
        headers=headers_a,
        json={"url": "http://127.0.0.1:9/hook", "tenant_id": "beta"},
    )
    assert for_other.status_code == 403
    assert [s["id"] for s in read(client, "key-a", "/v1/subscriptions")[1]["subscriptions"]] == [
        sub
    ]


def test_deliveries_never_cross_tenants(
    app: Flask, client: FlaskClient, drain: Any, engine: Engine, store: Store
) -> None:
    """alpha's subscription gets deliveries for alpha's outcomes only."""
    from core.deliveries.dispatch import Deliveries

    made = client.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook"},
        headers={"Authorization": "Bearer key-a"},
    )
    sub = made.json["id"]
    for token, tenant in (("tok-a", "alpha"), ("tok-b", "beta")):
        for event in ("InboundCall", "HangupCall"):
            body = f"eventType={event}&tenantId={tenant}&callUuid={tenant}-c&callerIdNum=1"
            assert client.post(f"/webhooks/primevox/{token}", data=body).status_code == 202
    drain()
    deliveries = Deliveries(store, app.config["CALLSTATE_SETTINGS"])
    for tenant in ("alpha", "beta"):
        engine.decide(tenant, f"{tenant}-c")
        deliveries.dispatch(tenant)
    _, listed = read(client, "key-a", f"/v1/subscriptions/{sub}/deliveries")
    assert [d["payload"]["tenant_id"] for d in listed["deliveries"]] == ["alpha"]


def test_a_real_permission_error_is_a_server_error_not_a_403(
    redis_client: Any, settings: Settings
) -> None:
    """Only a key reading another tenant is a 403; an OS PermissionError stays a 500."""
    from app import create_app

    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                      "REDIS_CLIENT": redis_client, "CALLSTATE_SETTINGS": settings})

    @app.get("/v1/_denied_file")
    def _denied_file() -> str:
        raise PermissionError("[Errno 13] Permission denied: '/var/secret'")

    assert app.test_client().get("/v1/_denied_file").status_code == 500
