"""Each tenant's own settings: its day (time zone), the country its numbers are
read in, its service level, what counts as a short abandon, and its alert
thresholds.

The deployment's settings are every tenant's defaults. Readers that need a
tenant's day or threshold ask here, never the deployment settings directly, so
"today" and "short" are defined once for the stats, the wallboard, reports and
notifications alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.settings import Settings

if TYPE_CHECKING:
    from core.store import Store


@dataclass(frozen=True)
class TenantSettings:
    """What one tenant's figures and notifications are computed with."""

    timezone: str
    # A calling code ("1", "44") or "" for none, as DEFAULT_COUNTRY gives it.
    country: str
    service_level_seconds: float
    short_abandon_seconds: float
    # Alert thresholds; None leaves that alert off.
    alert_wait_seconds: float | None = None
    alert_service_level: float | None = None
    alert_callback_minutes: float | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def deployment_defaults(settings: Settings) -> TenantSettings:
    """The settings of a tenant that has set none of its own."""
    return TenantSettings(
        timezone=settings.default_timezone,
        country=settings.default_country,
        service_level_seconds=settings.service_level_seconds,
        short_abandon_seconds=settings.short_abandon_seconds,
    )


def for_tenant(store: Store, settings: Settings, tenant_id: str) -> TenantSettings:
    """``tenant_id``'s settings: its own where it set them, else the deployment's."""
    return store.tenants.settings_of(tenant_id, deployment_defaults(settings))
