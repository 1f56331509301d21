"""What the tenants API and ``flask tenants`` do, once: create, change and
disable tenants; create, list and revoke their webhook tokens and API keys.

A new secret is returned to the caller once and only its digest is stored
(core/store/directory.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import has_app_context

from app.web.errors import Missing
from core.history.audit import record_change
from core.observability import get_logger
from core.store import (
    Credential,
    CredentialKind,
    Scope,
    Store,
    TenantRecord,
    digest,
    new_credential_id,
    new_secret,
)
from statemachine.events import isoformat

# The settings a tenant may set of its own (TenantSettings' fields, the country
# as ISO 3166 alpha-2); None or absent: the deployment's.
OWN_SETTINGS = (
    "timezone",
    "country",
    "service_level_seconds",
    "short_abandon_seconds",
    "alert_wait_seconds",
    "alert_service_level",
    "alert_callback_minutes",
)
WEBHOOK_PATH = "/webhooks/primevox/"
log = get_logger("callstate.tenants")


class NoSuchTenant(Missing):
    """No tenant record with that id (the API answers 404)."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"no tenant {tenant_id!r}")


def _audit(
    action: str, tenant_id: str, credential_id: str | None = None, detail: Any = None
) -> None:
    """Copy a change to the history database when the app has one (DATABASE_URL).
    Redis holds the truth: a database that fails here is logged, and the change
    stands."""
    from app.history.routes import get_history

    engine = get_history() if has_app_context() else None
    if engine is None:
        return
    try:
        record_change(engine, action, tenant_id, credential_id, detail)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("could not copy a tenant change to the history database", error=str(exc))


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else isoformat(datetime.fromtimestamp(epoch, UTC))


def shown_tenant(record: TenantRecord) -> dict[str, Any]:
    """A tenant as the API and the CLI show it: its own settings, null where the
    deployment's apply."""
    return {
        "id": record.id,
        "name": record.name,
        **{name: record.settings.get(name) for name in OWN_SETTINGS},
        "disabled": record.disabled,
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
    }


def create_tenant(store: Store, fields: Mapping[str, Any]) -> TenantRecord:
    """Onboard a tenant from validated ``fields`` (id, name, own settings).
    Raises TenantExists."""
    now = time.time()
    record = TenantRecord(
        id=fields["id"],
        name=fields.get("name") or "",
        settings={k: fields[k] for k in OWN_SETTINGS if fields.get(k) is not None},
        created_at=now,
        updated_at=now,
    )
    store.directory.create_tenant(record)
    store.directory.refresh()
    _audit("tenant.created", record.id, detail=shown_tenant(record))
    return record


def tenant_record(store: Store, tenant_id: str) -> TenantRecord:
    """``tenant_id``'s record. Raises NoSuchTenant."""
    record = store.directory.tenant(tenant_id)
    if record is None:
        raise NoSuchTenant(tenant_id)
    return record


def update_tenant(store: Store, tenant_id: str, changes: Mapping[str, Any]) -> TenantRecord:
    """Apply validated ``changes`` (a setting set to None goes back to the
    deployment's; ``disabled``). Raises NoSuchTenant."""
    record = tenant_record(store, tenant_id)
    settings = dict(record.settings)
    for name in OWN_SETTINGS:
        if name in changes:
            settings[name] = changes[name]
    updated = replace(
        record,
        name=changes.get("name", record.name) or "",
        settings={k: v for k, v in settings.items() if v is not None},
        disabled=changes.get("disabled", record.disabled),
        updated_at=time.time(),
    )
    store.directory.save_tenant(updated)
    store.directory.refresh()
    _audit("tenant.updated", tenant_id, detail=shown_tenant(updated))
    return updated


def create_credential(
    store: Store, tenant_id: str, kind: CredentialKind, scope: Scope, name: str = ""
) -> tuple[Credential, str]:
    """A new webhook token or API key of an existing tenant, and its secret (shown
    once; only its digest is kept). Raises NoSuchTenant."""
    tenant_record(store, tenant_id)
    secret = new_secret()
    credential = Credential(
        id=new_credential_id(kind),
        kind=kind,
        tenant_id=tenant_id,
        scope=scope,
        name=name,
        created_at=time.time(),
    )
    store.directory.add_credential(credential, digest(secret))
    store.directory.refresh()
    _audit(f"{kind.value}.created", tenant_id, credential.id, shown_credential(credential, None))
    return credential, secret


def revoke_credential(
    store: Store, tenant_id: str, kind: CredentialKind, credential_id: str
) -> bool:
    """Revoke one of the tenant's credentials; False if it has none with that id."""
    mine = store.directory.credentials_of(tenant_id, kind)
    if not any(c.id == credential_id for c in mine):
        return False
    store.directory.revoke(credential_id)
    store.directory.refresh()
    _audit(f"{kind.value}.revoked", tenant_id, credential_id)
    return True


def shown_credential(credential: Credential, last_used: float | None) -> dict[str, Any]:
    """A credential as listed: never its secret."""
    shown: dict[str, Any] = {
        "id": credential.id,
        "name": credential.name,
        "created_at": _iso(credential.created_at),
        "last_used_at": _iso(last_used),
    }
    if credential.kind is CredentialKind.API_KEY:
        shown["scope"] = credential.scope.value
    return shown


def listed_credentials(store: Store, tenant_id: str, kind: CredentialKind) -> list[dict[str, Any]]:
    """A tenant's credentials of one kind, oldest first, with when each was last used."""
    mine = store.directory.credentials_of(tenant_id, kind)
    used = store.directory.last_used([c.id for c in mine])
    return [shown_credential(c, used.get(c.id)) for c in mine]


def new_credential_answer(credential: Credential, secret: str) -> dict[str, Any]:
    """The answer to a created credential: the only time its secret is shown."""
    answer = shown_credential(credential, None)
    if credential.kind is CredentialKind.WEBHOOK_TOKEN:
        answer.update(token=secret, path=WEBHOOK_PATH + secret)
    else:
        answer["key"] = secret
    return answer
