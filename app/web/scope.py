"""Which tenants a request may read: its API key's scope, narrowed by what it asks."""

from __future__ import annotations

import time

from flask import g

from app.web.auth import ALL_TENANTS
from app.web.errors import TenantForbidden
from app.web.resources import get_store
from core.store import Store


def scoped_tenant(requested: str | None = None) -> str | None:
    """The one tenant the request reads, or None for every tenant (an admin key
    that named none). Raises TenantForbidden for another tenant's name."""
    scope: str = g.scope
    if scope != ALL_TENANTS:
        if requested and requested != scope:
            raise TenantForbidden(f"this API key may not read tenant {requested!r}")
        return scope
    return requested or None


def scoped_tenants(requested: str | None = None) -> list[str]:
    """Tenants the key may read, narrowed to ``requested``. Raises TenantForbidden."""
    tenant = scoped_tenant(requested)
    return [tenant] if tenant is not None else get_store().tenants.all()


def every_tenant_lookup(store: Store, indexed: list[str]) -> list[str]:
    """Where to look for one call or conversation: for a tenant-bound key its
    tenant; for an every-tenant key the tenants the intake index names, and
    every tenant only while the index does not yet cover all that is kept (an
    upgrade, for one retention period)."""
    if g.scope != ALL_TENANTS:
        return scoped_tenants()
    if indexed or store.tenants.call_index_complete(time.time()):
        return indexed
    return store.tenants.all()
