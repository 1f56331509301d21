"""What the tenants routes take and answer (app/tenants/routes.py)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, ValidationError, fields, validate, validates

from app.web.rest import JsonBody
from app.web.schema_fields import EXAMPLE_TENANT, EXAMPLE_TIME, Answer, ex
from core.settings import COUNTRY_CODES, is_timezone
from core.store import EVERY_TENANT, Scope
from statemachine.wire import MAX_ID_LENGTH

EXAMPLE_TOKEN_ID = "wht_3f9a1c0d2e4b6a8c"
EXAMPLE_KEY_ID = "key_3f9a1c0d2e4b6a8c"
EXAMPLE_SECRET = "q3Vx0bLrV9m2s7d0hJ2rKxw8c1Zk4N5pT6yU7iO8aPs"


def _timezone(name: str) -> None:
    if not is_timezone(name):
        raise ValidationError(f"must be an IANA time zone such as America/Chicago (got {name!r})")


def _country(code: str) -> None:
    if code not in COUNTRY_CODES:
        raise ValidationError(
            "must be an ISO 3166 alpha-2 country whose calling code this service knows: "
            + ", ".join(sorted(COUNTRY_CODES))
        )


def _seconds(example: float, description: str) -> fields.Float:
    return fields.Float(
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=86_400),
        metadata=ex(example, description + " (null: the deployment's)"),
    )


class TenantSettingsFields(JsonBody):
    """A tenant's name and own settings, each optional (null: the deployment's)."""

    invalid = "invalid tenant"

    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(max=200), metadata=ex("Acme Corp"))
    timezone = fields.String(
        allow_none=True,
        validate=_timezone,
        metadata=ex("America/Chicago", "IANA time zone of its day (DEFAULT_TIMEZONE)"),
    )
    country = fields.String(
        allow_none=True,
        validate=_country,
        metadata=ex("US", "ISO 3166 alpha-2: how its numbers are read (DEFAULT_COUNTRY)"),
    )
    service_level_seconds = _seconds(20, "answered within this counts as in service level")
    short_abandon_seconds = _seconds(5, "an abandon within this of the start is short")
    alert_wait_seconds = _seconds(120, "alert when a caller waits longer")
    alert_service_level = fields.Float(
        allow_none=True,
        allow_nan=False,
        validate=validate.Range(min=0, max=1),
        metadata=ex(0.8, "alert when the service level falls below this fraction"),
    )
    alert_callback_minutes = _seconds(30, "alert when a missed caller waits longer for a callback")


class NewTenantSchema(TenantSettingsFields):
    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_ID_LENGTH),
        metadata=ex(EXAMPLE_TENANT, "the tenantId its PBX sends"),
    )

    @validates("id")
    def _a_tenant_id(self, value: str, **_: Any) -> None:
        if value == EVERY_TENANT or any(ord(c) < 32 or c == "\x7f" for c in value):
            raise ValidationError("must name one tenant: not '*', no control characters")


class TenantChangesSchema(TenantSettingsFields):
    disabled = fields.Boolean(metadata=ex(False, "a disabled tenant's webhooks and keys get 401"))


class NewApiKeySchema(JsonBody):
    invalid = "invalid API key"

    class Meta:
        unknown = RAISE

    scope = fields.String(
        required=True,
        validate=validate.OneOf([Scope.READ.value, Scope.WRITE.value]),
        metadata=ex("read", "read: GETs and streams (wallboards); write: also subscriptions"),
    )
    name = fields.String(load_default="", validate=validate.Length(max=200), metadata=ex("wall"))


class NewTokenSchema(JsonBody):
    invalid = "invalid webhook token"

    class Meta:
        unknown = RAISE

    name = fields.String(load_default="", validate=validate.Length(max=200), metadata=ex("pbx"))


# -- answers -------------------------------------------------------------------------------


def _nullable_number(example: float) -> fields.Float:
    return fields.Float(required=True, allow_none=True, metadata=ex(example))


class TenantAnswer(Answer):
    id = fields.String(required=True, metadata=ex(EXAMPLE_TENANT))
    name = fields.String(required=True, metadata=ex("Acme Corp"))
    timezone = fields.String(required=True, allow_none=True, metadata=ex("America/Chicago"))
    country = fields.String(required=True, allow_none=True, metadata=ex("US"))
    service_level_seconds = _nullable_number(20)
    short_abandon_seconds = _nullable_number(5)
    alert_wait_seconds = _nullable_number(120)
    alert_service_level = _nullable_number(0.8)
    alert_callback_minutes = _nullable_number(30)
    disabled = fields.Boolean(required=True, metadata=ex(False))
    created_at = fields.String(required=True, metadata=ex(EXAMPLE_TIME))
    updated_at = fields.String(required=True, metadata=ex(EXAMPLE_TIME))


class OneTenantAnswer(Answer):
    tenant = fields.Nested(TenantAnswer, required=True)


class TenantsAnswer(Answer):
    tenants = fields.List(fields.Nested(TenantAnswer), required=True)


class CredentialAnswer(Answer):
    id = fields.String(required=True, metadata=ex(EXAMPLE_KEY_ID))
    name = fields.String(required=True, metadata=ex("wall"))
    created_at = fields.String(required=True, metadata=ex(EXAMPLE_TIME))
    last_used_at = fields.String(
        required=True, allow_none=True, metadata=ex(EXAMPLE_TIME, "at most a minute behind")
    )


class ApiKeyAnswer(CredentialAnswer):
    scope = fields.String(required=True, metadata=ex("read"))


class NewApiKeyAnswer(ApiKeyAnswer):
    key = fields.String(required=True, metadata=ex(EXAMPLE_SECRET, "shown only in this answer"))


class TokenAnswer(CredentialAnswer):
    id = fields.String(required=True, metadata=ex(EXAMPLE_TOKEN_ID))


class NewTokenAnswer(TokenAnswer):
    token = fields.String(required=True, metadata=ex(EXAMPLE_SECRET, "shown only in this answer"))
    path = fields.String(
        required=True,
        metadata=ex("/webhooks/primevox/" + EXAMPLE_SECRET, "where its PBX posts its events"),
    )


class ApiKeysAnswer(Answer):
    api_keys = fields.List(fields.Nested(ApiKeyAnswer), required=True)


class TokensAnswer(Answer):
    webhook_tokens = fields.List(fields.Nested(TokenAnswer), required=True)
