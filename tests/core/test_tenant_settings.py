"""A tenant's settings default to the deployment's; DEFAULT_TIMEZONE takes IANA names only."""

from __future__ import annotations

import fakeredis
import pytest

from core.settings import ConfigError, Settings
from core.store import Store
from core.tenant_settings import deployment_defaults, for_tenant


def test_deployment_settings_are_every_tenants_defaults() -> None:
    settings = Settings.from_env(
        {"DEFAULT_TIMEZONE": "Asia/Kolkata", "DEFAULT_COUNTRY": "GB", "SHORT_ABANDON_SECONDS": "8"}
    )
    defaults = deployment_defaults(settings)
    assert (defaults.timezone, defaults.country, defaults.short_abandon_seconds) == (
        "Asia/Kolkata", "44", 8.0,
    )  # fmt: skip
    assert defaults.zone.key == "Asia/Kolkata"
    assert defaults.alert_wait_seconds is None  # alerts are off until a tenant sets them
    store = Store(fakeredis.FakeRedis())
    assert for_tenant(store, settings, "acme") == defaults


def test_default_timezone_refuses_a_name_iana_does_not_know() -> None:
    assert Settings.from_env({}).default_timezone == "UTC"
    with pytest.raises(ConfigError, match="DEFAULT_TIMEZONE"):
        Settings.from_env({"DEFAULT_TIMEZONE": "Mars/Olympus"})
