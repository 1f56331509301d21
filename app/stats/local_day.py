"""Whose day a figures answer uses: the time zone of its window's "today" and of
its hour and day groups (core/local_time.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app

from app.web.resources import get_store
from app.web.scope import scoped_tenant
from core.settings import Settings
from core.tenant_settings import deployment_defaults, for_tenant


def zone_of_request(tz: str | None, requested_tenant: str | None) -> ZoneInfo:
    """``tz=`` if given; else the one tenant the request reads (a tenant's key, or
    ``tenant_id``): its time zone; else (every tenant) DEFAULT_TIMEZONE.
    Raises TenantForbidden for a tenant the key may not read."""
    settings: Settings = current_app.config["CALLSTATE_SETTINGS"]
    if tz:
        return ZoneInfo(tz)
    tenant = scoped_tenant(requested_tenant)
    if tenant is None:
        return deployment_defaults(settings).zone
    return for_tenant(get_store(), settings, tenant).zone
