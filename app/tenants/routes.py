"""``/v1/tenants``: onboard tenants and give them webhook tokens and API keys,
without a redeploy (an admin key: API_KEYS ``key:*``). A created credential
works, and a revoked one gets 401, in every web process within about a second."""

from __future__ import annotations

from typing import Any

from flask import Response, g

from app.tenants import onboarding
from app.tenants.schemas import (
    ApiKeysAnswer,
    NewApiKeyAnswer,
    NewApiKeySchema,
    NewTenantSchema,
    NewTokenAnswer,
    NewTokenSchema,
    OneTenantAnswer,
    TenantChangesSchema,
    TenantsAnswer,
    TokensAnswer,
)
from app.web.auth import ALL_TENANTS
from app.web.errors import Missing, TenantForbidden, error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint, error_doc, path_param
from app.web.schema_fields import EXAMPLE_TENANT
from core.store import CredentialKind, Scope, TenantExists

bp = ApiBlueprint("tenants", __name__, url_prefix="/v1/tenants")

TENANT_ID = path_param("tenant_id", "the tenant's id", EXAMPLE_TENANT)
CREDENTIAL_ID = path_param("credential_id", "the token's or key's id", "key_3f9a1c0d2e4b6a8c")
NO_SUCH_TENANT = error_doc("no such tenant")
ADMIN = Scope.ADMIN
ADMIN_ONLY = error_doc("a key that is not the admin's")


@bp.operation(
    "POST",
    "",
    "createTenant",
    tag="tenants",
    needs=ADMIN,
    body=NewTenantSchema(),
    status=201,
    schema=OneTenantAnswer,
    answer="onboarded",
    usual=(401, 503),
    errors={400: "a bad field, named in fields", 403: ADMIN_ONLY, 409: "that id exists"},
)
def create(data: dict[str, Any]) -> Any:
    """Onboard a tenant, with the settings it has of its own (the rest: the deployment's)"""
    try:
        record = onboarding.create_tenant(get_store(), data)
    except TenantExists:
        return error_response(409, f"tenant {data['id']!r} exists")
    return {"tenant": onboarding.shown_tenant(record)}


@bp.operation(
    "GET",
    "",
    "listTenants",
    tag="tenants",
    needs=ADMIN,
    schema=TenantsAnswer,
    answer="every onboarded tenant, by id",
    usual=(401, 503),
    errors={403: ADMIN_ONLY},
)
def list_tenants() -> Any:
    """The onboarded tenants"""
    records = get_store().directory.tenant_records()
    return {"tenants": [onboarding.shown_tenant(r) for r in records]}


@bp.operation(
    "GET",
    "/<tenant_id>",
    "getTenant",
    tag="tenants",
    path_params=[TENANT_ID],
    schema=OneTenantAnswer,
    answer="the tenant",
    usual=(401, 403, 503),
    errors={404: NO_SUCH_TENANT},
)
def show(tenant_id: str) -> Any:
    """One tenant (the admin's key, or that tenant's own keys)"""
    if g.scope not in (ALL_TENANTS, tenant_id):
        raise TenantForbidden(f"this API key may not read tenant {tenant_id!r}")
    return {"tenant": onboarding.shown_tenant(onboarding.tenant_record(get_store(), tenant_id))}


@bp.operation(
    "PATCH",
    "/<tenant_id>",
    "updateTenant",
    tag="tenants",
    needs=ADMIN,
    path_params=[TENANT_ID],
    body=TenantChangesSchema(),
    schema=OneTenantAnswer,
    answer="changed",
    usual=(401, 503),
    errors={400: "a bad field, named in fields", 403: ADMIN_ONLY, 404: NO_SUCH_TENANT},
)
def update(changes: dict[str, Any], tenant_id: str) -> Any:
    """Change a tenant's name or settings (null: back to the deployment's), or enable it"""
    record = onboarding.update_tenant(get_store(), tenant_id, changes)
    return {"tenant": onboarding.shown_tenant(record)}


@bp.operation(
    "DELETE",
    "/<tenant_id>",
    "disableTenant",
    tag="tenants",
    needs=ADMIN,
    path_params=[TENANT_ID],
    status=204,
    answer="disabled",
    usual=(401, 503),
    errors={403: ADMIN_ONLY, 404: NO_SUCH_TENANT},
)
def disable(tenant_id: str) -> tuple[Response, int]:
    """Disable a tenant: its webhooks and keys get 401; its data stays until retention"""
    onboarding.update_tenant(get_store(), tenant_id, {"disabled": True})
    return Response(status=204), 204


# -- credentials --------------------------------------------------------------------------

KINDS = {
    "webhook-tokens": (CredentialKind.WEBHOOK_TOKEN, "webhook_tokens"),
    "api-keys": (CredentialKind.API_KEY, "api_keys"),
}


def _create(tenant_id: str, kind: CredentialKind, scope: Scope, name: str) -> Any:
    credential, secret = onboarding.create_credential(get_store(), tenant_id, kind, scope, name)
    return onboarding.new_credential_answer(credential, secret)


@bp.operation(
    "POST",
    "/<tenant_id>/webhook-tokens",
    "createWebhookToken",
    tag="tenants",
    needs=ADMIN,
    path_params=[TENANT_ID],
    body=NewTokenSchema(),
    body_required=False,
    status=201,
    schema=NewTokenAnswer,
    answer="made; the token is shown only now",
    usual=(401, 503),
    errors={400: "a bad field", 403: ADMIN_ONLY, 404: NO_SUCH_TENANT},
)
def create_token(data: dict[str, Any], tenant_id: str) -> Any:
    """A new webhook token for a tenant's PBX (works within a second, everywhere)"""
    return _create(tenant_id, CredentialKind.WEBHOOK_TOKEN, Scope.WRITE, data.get("name", ""))


@bp.operation(
    "POST",
    "/<tenant_id>/api-keys",
    "createApiKey",
    tag="tenants",
    needs=ADMIN,
    path_params=[TENANT_ID],
    body=NewApiKeySchema(),
    status=201,
    schema=NewApiKeyAnswer,
    answer="made; the key is shown only now",
    usual=(401, 503),
    errors={400: "a bad field", 403: ADMIN_ONLY, 404: NO_SUCH_TENANT},
)
def create_key(data: dict[str, Any], tenant_id: str) -> Any:
    """A new API key of a tenant: read (wallboards, reports) or write (also subscriptions)"""
    return _create(tenant_id, CredentialKind.API_KEY, Scope(data["scope"]), data["name"])


def _listing(collection: str, schema: Any, operation_id: str) -> None:
    """Declare GET and DELETE of one kind of credential (both kinds are alike)."""
    kind, field = KINDS[collection]
    words = collection.replace("-", " ")

    def listing(tenant_id: str) -> Any:
        onboarding.tenant_record(get_store(), tenant_id)
        return {field: onboarding.listed_credentials(get_store(), tenant_id, kind)}

    def revoke(tenant_id: str, credential_id: str) -> tuple[Response, int]:
        if not onboarding.revoke_credential(get_store(), tenant_id, kind, credential_id):
            raise Missing(f"tenant {tenant_id!r} has no {words} {credential_id!r}")
        return Response(status=204), 204

    listing.__name__ = f"list_{field}"
    listing.__doc__ = f"A tenant's {words}, with when each was last used"
    revoke.__name__ = f"revoke_{field}"
    revoke.__doc__ = f"Revoke one of a tenant's {words}"
    bp.operation(
        "GET",
        f"/<tenant_id>/{collection}",
        operation_id,
        tag="tenants",
        needs=ADMIN,
        path_params=[TENANT_ID],
        schema=schema,
        answer="the tenant's, oldest first, never their secrets",
        usual=(401, 503),
        errors={403: ADMIN_ONLY, 404: NO_SUCH_TENANT},
    )(listing)
    bp.operation(
        "DELETE",
        f"/<tenant_id>/{collection}/<credential_id>",
        operation_id.replace("list", "revoke").removesuffix("s"),
        tag="tenants",
        needs=ADMIN,
        path_params=[TENANT_ID, CREDENTIAL_ID],
        status=204,
        answer="revoked: every web process answers 401 to it within about a second",
        usual=(401, 503),
        errors={403: ADMIN_ONLY, 404: error_doc("no such tenant, or no such credential of it")},
    )(revoke)


_listing("webhook-tokens", TokensAnswer, "listWebhookTokens")
_listing("api-keys", ApiKeysAnswer, "listApiKeys")
