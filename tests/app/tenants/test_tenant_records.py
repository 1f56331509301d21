"""Tenants and credentials as data: the admin API, scopes, digests, and each
process's copy of the directory."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from app import create_app
from core.credentials import CredentialLookup
from core.history.audit import changes_of
from core.history.database import create_engine, upgrade
from core.settings import Settings
from core.store import CHECK_SECONDS, CredentialKind, Scope, Store, digest
from core.tenant_settings import deployment_defaults, for_tenant
from tests.conftest import API_KEY, TENANT_KEY

TENANT_PATH = "/v1/tenants/<tenant_id>"
ADMIN = {"Authorization": f"Bearer {API_KEY}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def onboard(client: FlaskClient, tenant: str = "acme", **settings: Any) -> dict[str, Any]:
    answer = client.post("/v1/tenants", json={"id": tenant, **settings}, headers=ADMIN)
    assert answer.status_code == 201, answer.json
    tenant_answer: dict[str, Any] = answer.json["tenant"]
    return tenant_answer


def new_key(client: FlaskClient, scope: str, tenant: str = "acme") -> str:
    answer = client.post(f"/v1/tenants/{tenant}/api-keys", json={"scope": scope}, headers=ADMIN)
    assert answer.status_code == 201, answer.json
    key: str = answer.json["key"]
    return key


def post_call(client: FlaskClient, token: str, tenant: str = "acme") -> int:
    body = f"eventType=InboundCall&tenantId={tenant}&callUuid=c1&callerIdNum=1"
    return client.post(f"/webhooks/primevox/{token}", data=body).status_code


def test_an_admin_onboards_a_tenant_with_its_own_settings(client: FlaskClient) -> None:
    """POST /v1/tenants answers 201 with the record; its settings are the tenant's."""
    tenant = onboard(client, timezone="America/Chicago", country="GB", service_level_seconds=30)
    assert tenant["id"] == "acme"
    assert tenant["timezone"] == "America/Chicago"
    assert tenant["short_abandon_seconds"] is None
    assert client.get("/v1/tenants", headers=ADMIN).json["tenants"][0]["id"] == "acme"
    assert client.get("/v1/tenants/acme", headers=ADMIN).json["tenant"] == tenant


def test_a_tenants_settings_are_its_own_over_the_deployments(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """for_tenant gives the record's settings, the country as its calling code."""
    onboard(client, timezone="Asia/Kolkata", country="GB", short_abandon_seconds=8)
    own = for_tenant(store, settings, "acme")
    assert (own.timezone, own.country, own.short_abandon_seconds) == ("Asia/Kolkata", "44", 8)
    assert own.service_level_seconds == settings.service_level_seconds
    assert for_tenant(store, settings, "other") == deployment_defaults(settings)


def test_an_existing_id_is_409(client: FlaskClient) -> None:
    """The same id twice: 409."""
    onboard(client)
    again = client.post("/v1/tenants", json={"id": "acme"}, headers=ADMIN)
    assert again.status_code == 409
    assert "acme" in again.json["error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timezone", "Mars/Olympus"),
        ("timezone", "EST5EDT6"),
        ("country", "USA"),
        ("country", "us"),
        ("id", "*"),
        ("id", "a\x01b"),
        ("service_level_seconds", -1),
        ("alert_service_level", 2),
        ("colour", "blue"),
    ],
)
def test_a_bad_field_is_400_naming_it(client: FlaskClient, field: str, value: Any) -> None:
    """Each refused value answers 400 with the field named in ``fields``."""
    body = {"id": "acme", field: value}
    answer = client.post("/v1/tenants", json=body, headers=ADMIN)
    assert answer.status_code == 400
    assert field in answer.json["fields"]


def test_patch_changes_a_setting_and_null_gives_back_the_deployments(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """PATCH sets what it names; null returns that setting to the deployment's."""
    onboard(client, timezone="Europe/Paris")
    changed = client.patch("/v1/tenants/acme", json={"country": "FR"}, headers=ADMIN)
    assert changed.json["tenant"]["country"] == "FR"
    assert changed.json["tenant"]["timezone"] == "Europe/Paris"
    reset = client.patch("/v1/tenants/acme", json={"timezone": None}, headers=ADMIN)
    assert reset.json["tenant"]["timezone"] is None
    assert for_tenant(store, settings, "acme").timezone == settings.default_timezone
    bad = client.patch("/v1/tenants/acme", json={"timezone": "Nowhere"}, headers=ADMIN)
    assert bad.status_code == 400 and "timezone" in bad.json["fields"]
    assert client.patch("/v1/tenants/nope", json={}, headers=ADMIN).status_code == 404


def test_a_new_token_posts_and_a_revoked_one_is_401(client: FlaskClient) -> None:
    """The token works at once; after DELETE (204) it gets 401."""
    onboard(client)
    made = client.post("/v1/tenants/acme/webhook-tokens", headers=ADMIN)
    assert made.status_code == 201
    token = made.json["token"]
    assert made.json["path"] == f"/webhooks/primevox/{token}"
    assert post_call(client, token) == 202
    assert post_call(client, token, tenant="other") == 401
    gone = client.delete(f"/v1/tenants/acme/webhook-tokens/{made.json['id']}", headers=ADMIN)
    assert gone.status_code == 204
    assert post_call(client, token) == 401
    again = client.delete(f"/v1/tenants/acme/webhook-tokens/{made.json['id']}", headers=ADMIN)
    assert again.status_code == 404


def test_listed_credentials_never_show_their_secret(client: FlaskClient) -> None:
    """GET on a collection lists id, name, scope, created_at, last_used_at: no secret."""
    onboard(client)
    key = new_key(client, "read")
    listed = client.get("/v1/tenants/acme/api-keys", headers=ADMIN).json["api_keys"]
    assert [set(k) for k in listed] == [{"id", "name", "scope", "created_at", "last_used_at"}]
    assert key not in str(listed)
    client.get("/v1/calls/live", headers=bearer(key))
    used = client.get("/v1/tenants/acme/api-keys", headers=ADMIN).json["api_keys"]
    assert used[0]["last_used_at"] is not None


def test_a_read_key_reads_its_tenant_and_gets_403_for_anything_else(client: FlaskClient) -> None:
    """A read key: GETs of its tenant; 403 creating a subscription or reading the tenants."""
    onboard(client)
    key = new_key(client, "read")
    assert client.get("/v1/calls/live", headers=bearer(key)).status_code == 200
    assert client.get("/v1/tenants/acme", headers=bearer(key)).status_code == 200
    subscribe = client.post(
        "/v1/subscriptions", json={"url": "https://example.com/x"}, headers=bearer(key)
    )
    assert subscribe.status_code == 403
    assert "read" in subscribe.json["error"]
    assert client.get("/v1/tenants", headers=bearer(key)).status_code == 403
    assert client.get("/v1/calls/live?tenant_id=other", headers=bearer(key)).status_code == 403


def test_a_write_key_is_no_admin(client: FlaskClient) -> None:
    """A tenant's write key (API_KEYS key:tenant) may not onboard tenants or make keys."""
    assert (
        client.post("/v1/tenants", json={"id": "x"}, headers=bearer(TENANT_KEY)).status_code == 403
    )
    assert client.get("/v1/tenants/t2", headers=bearer(TENANT_KEY)).status_code == 403


def test_every_route_declares_the_scope_it_needs(client: FlaskClient) -> None:
    """GETs need read; subscriptions and resolving callbacks write; tenants admin."""
    app = client.application
    needs: dict[tuple[str, str], Scope] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        scope = getattr(view, "needs_scope", None)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if scope is not None:
                needs[(method, rule.rule)] = scope
    for (method, path), scope in needs.items():
        if path.startswith("/v1/tenants") and (method, path) != ("GET", "/v1/tenants/<tenant_id>"):
            assert scope is Scope.ADMIN, (method, path)
        elif method == "GET":
            assert scope is Scope.READ, (method, path)
        else:
            assert scope is Scope.WRITE, (method, path)
    assert needs[("POST", "/v1/subscriptions")] is Scope.WRITE


def test_a_disabled_tenants_token_and_keys_get_401(client: FlaskClient) -> None:
    """DELETE /v1/tenants/<id> disables: 204, then its token and keys get 401."""
    onboard(client)
    token = client.post("/v1/tenants/acme/webhook-tokens", headers=ADMIN).json["token"]
    key = new_key(client, "read")
    assert client.delete("/v1/tenants/acme", headers=ADMIN).status_code == 204
    assert post_call(client, token) == 401
    assert client.get("/v1/calls/live", headers=bearer(key)).status_code == 401
    assert client.get("/v1/tenants/acme", headers=ADMIN).json["tenant"]["disabled"] is True


def test_the_environments_api_keys_have_scopes() -> None:
    """API_KEYS: key:* admin, key:tenant write, key:tenant:read read."""
    settings = Settings.from_env({"API_KEYS": "a:*,w:acme,r:acme:read,x:y:z:read"})
    lookup = CredentialLookup(Store(fakeredis.FakeRedis()).directory, settings)
    found = {s: lookup.find(s, CredentialKind.API_KEY) for s in ("a", "w", "r", "x:y")}
    assert {s: (c.tenant_id, c.scope) for s, c in found.items() if c} == {
        "a": ("*", Scope.ADMIN),
        "w": ("acme", Scope.WRITE),
        "r": ("acme", Scope.READ),
        "x:y": ("z", Scope.READ),
    }


def test_another_process_sees_a_revocation_within_a_check() -> None:
    """A process's copy is at most CHECK_SECONDS old: a revoked key is gone after that."""
    redis_client = fakeredis.FakeRedis()
    here, there = Store(redis_client).directory, Store(redis_client).directory
    from app.tenants.onboarding import create_credential, create_tenant

    store = Store(redis_client)
    create_tenant(store, {"id": "acme"})
    credential, secret = create_credential(store, "acme", CredentialKind.API_KEY, Scope.READ)
    assert there.current(now=100.0).credentials[digest(secret)] == credential
    here.revoke(credential.id)
    assert digest(secret) in there.current(now=100.0 + CHECK_SECONDS / 2).credentials
    assert digest(secret) not in there.current(now=100.0 + CHECK_SECONDS).credentials


def test_no_raw_secret_is_stored(client: FlaskClient, redis_client: fakeredis.FakeRedis) -> None:
    """Every key and value in Redis is free of the tokens and keys made."""
    onboard(client)
    secrets = [new_key(client, "read"), new_key(client, "write")]
    secrets.append(client.post("/v1/tenants/acme/webhook-tokens", headers=ADMIN).json["token"])
    post_call(client, secrets[-1])
    dumped = b""
    for key in redis_client.scan_iter():
        dumped += key + redis_client.dump(key)
        kind = redis_client.type(key)
        if kind == b"hash":
            dumped += b"".join(k + v for k, v in redis_client.hgetall(key).items())
        elif kind == b"string":
            dumped += redis_client.get(key) or b""
    for secret in [*secrets, API_KEY]:
        assert secret.encode() not in dumped


def test_the_cli_twins_onboard_and_revoke(client: FlaskClient) -> None:
    """flask tenants create|show|update|disable, token create|revoke, key create|revoke."""
    runner = client.application.test_cli_runner()
    made = runner.invoke(args=["tenants", "create", "acme", "--timezone", "America/Chicago"])
    assert made.exit_code == 0, made.output
    bad = runner.invoke(args=["tenants", "create", "b", "--timezone", "Nowhere"])
    assert bad.exit_code == 2 and "timezone" in bad.output
    token = runner.invoke(args=["tenants", "token", "create", "acme"], catch_exceptions=False)
    created = json.loads(token.stdout)
    assert post_call(client, created["token"]) == 202
    key = runner.invoke(args=["tenants", "key", "create", "acme", "--scope", "read"])
    key_id = json.loads(key.stdout)["id"]
    shown = runner.invoke(args=["tenants", "show", "acme"]).output
    assert key_id in shown and created["token"] not in shown
    updated = runner.invoke(args=["tenants", "update", "acme", "--reset", "timezone"])
    assert json.loads(updated.output)["timezone"] is None
    assert runner.invoke(args=["tenants", "key", "revoke", "acme", key_id]).exit_code == 0
    assert runner.invoke(args=["tenants", "token", "revoke", "acme", created["id"]]).exit_code == 0
    assert post_call(client, created["token"]) == 401
    assert runner.invoke(args=["tenants", "disable", "acme"]).exit_code == 0
    assert "disabled" in runner.invoke(args=["tenants", "list"]).output


def test_changes_are_copied_to_the_history_database_without_secrets(tmp_path: Any) -> None:
    """With DATABASE_URL, each change is a tenant_audit row; no secret, no digest."""
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    settings = Settings(api_keys={API_KEY: "*"}, database_url=url)
    upgrade(create_engine(url))
    app = create_app(
        {"TESTING": True, "REDIS_CLIENT": fakeredis.FakeRedis(), "CALLSTATE_SETTINGS": settings}
    )
    client = app.test_client()
    onboard(client, timezone="Europe/Paris")
    made = client.post("/v1/tenants/acme/webhook-tokens", headers=ADMIN).json
    key = new_key(client, "read")
    client.delete(f"/v1/tenants/acme/webhook-tokens/{made['id']}", headers=ADMIN)
    client.delete("/v1/tenants/acme", headers=ADMIN)
    with app.app_context():
        changes = changes_of(create_engine(url), "acme")
    assert [c["action"] for c in changes] == [
        "tenant.created",
        "webhook_token.created",
        "api_key.created",
        "webhook_token.revoked",
        "tenant.updated",
    ]
    assert changes[0]["detail"]["timezone"] == "Europe/Paris"
    assert changes[-1]["detail"]["disabled"] is True
    everything = str(changes)
    for secret in (made["token"], key, API_KEY):
        assert secret not in everything and digest(secret) not in everything
