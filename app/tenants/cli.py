"""``flask tenants ...``: the tenants API's twins for an operator's shell, validated
by the same schemas (a bad value exits 2 naming its field)."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup
from marshmallow import Schema, ValidationError

from app.tenants import onboarding
from app.tenants.schemas import NewTenantSchema, TenantChangesSchema
from app.web.resources import get_store
from core.store import CredentialKind, Scope, TenantExists

tenants = AppGroup("tenants", help="Onboard tenants; give and revoke their tokens and keys.")

SETTING_OPTIONS = [
    click.option("--name"),
    click.option("--timezone", help="IANA time zone of the tenant's day, e.g. America/Chicago."),
    click.option("--country", help="ISO 3166 alpha-2, e.g. US."),
    click.option("--service-level-seconds", type=float),
    click.option("--short-abandon-seconds", type=float),
    click.option("--alert-wait-seconds", type=float),
    click.option("--alert-service-level", type=float),
    click.option("--alert-callback-minutes", type=float),
]


def with_settings(command: Any) -> Any:
    for option in reversed(SETTING_OPTIONS):
        command = option(command)
    return command


def _load(schema: Schema, given: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        assert isinstance(exc.messages, dict)
        raise click.UsageError(
            "; ".join(f"{field}: {' '.join(map(str, why))}" for field, why in exc.messages.items())
        ) from None
    return loaded


def _echo_tenant(record: Any) -> None:
    click.echo(json.dumps(onboarding.shown_tenant(record), indent=2))


@tenants.command("create")
@click.argument("tenant_id")
@with_settings
def create(tenant_id: str, **given: Any) -> None:
    """Onboard TENANT_ID with the settings given (the rest: the deployment's)."""
    fields = _load(NewTenantSchema(), {"id": tenant_id, **given})
    try:
        _echo_tenant(onboarding.create_tenant(get_store(), fields))
    except TenantExists:
        raise click.ClickException(f"tenant {tenant_id!r} exists") from None


@tenants.command("list")
def list_tenants() -> None:
    """One line per onboarded tenant: id, name, time zone, disabled."""
    for record in get_store().directory.tenant_records():
        zone = record.settings.get("timezone") or "(default zone)"
        state = "  disabled" if record.disabled else ""
        click.echo(f"{record.id}\t{record.name}\t{zone}{state}")


def _record(tenant_id: str) -> Any:
    try:
        return onboarding.tenant_record(get_store(), tenant_id)
    except onboarding.NoSuchTenant:
        raise click.ClickException(f"no tenant {tenant_id!r}") from None


@tenants.command("show")
@click.argument("tenant_id")
def show(tenant_id: str) -> None:
    """A tenant, its webhook tokens and its API keys (never their secrets)."""
    _echo_tenant(_record(tenant_id))
    for kind, title in ((CredentialKind.WEBHOOK_TOKEN, "tokens"), (CredentialKind.API_KEY, "keys")):
        for shown in onboarding.listed_credentials(get_store(), tenant_id, kind):
            click.echo(f"{title}: {json.dumps(shown)}")


@tenants.command("update")
@click.argument("tenant_id")
@with_settings
@click.option("--enable", is_flag=True, help="Enable a disabled tenant.")
@click.option(
    "--reset", multiple=True, help="Give this setting back to the deployment (repeatable)."
)
def update(tenant_id: str, enable: bool, reset: tuple[str, ...], **given: Any) -> None:
    """Change a tenant's name or settings."""
    changes = _load(TenantChangesSchema(), given)
    changes.update({name.replace("-", "_"): None for name in reset})
    if unknown := set(changes) - {*onboarding.OWN_SETTINGS, "name"}:
        raise click.UsageError(f"no such setting: {', '.join(sorted(unknown))}")
    if enable:
        changes["disabled"] = False
    _record(tenant_id)
    _echo_tenant(onboarding.update_tenant(get_store(), tenant_id, changes))


@tenants.command("disable")
@click.argument("tenant_id")
def disable(tenant_id: str) -> None:
    """Disable a tenant: its webhooks and keys get 401; its data stays until retention."""
    _record(tenant_id)
    onboarding.update_tenant(get_store(), tenant_id, {"disabled": True})
    click.echo(f"tenant {tenant_id!r} disabled")


token = AppGroup("token", help="A tenant's webhook tokens.")
key = AppGroup("key", help="A tenant's API keys.")
tenants.add_command(token)
tenants.add_command(key)


def _create(tenant_id: str, kind: CredentialKind, scope: Scope, name: str) -> None:
    _record(tenant_id)
    credential, secret = onboarding.create_credential(get_store(), tenant_id, kind, scope, name)
    click.echo(json.dumps(onboarding.new_credential_answer(credential, secret), indent=2))
    click.echo("The secret is shown only now: keep it.", err=True)


def _revoke(tenant_id: str, kind: CredentialKind, credential_id: str) -> None:
    if not onboarding.revoke_credential(get_store(), tenant_id, kind, credential_id):
        raise click.ClickException(f"tenant {tenant_id!r} has no {credential_id!r}")
    click.echo(f"revoked {credential_id}: refused everywhere within about a second")


@token.command("create")
@click.argument("tenant_id")
@click.option("--name", default="")
def token_create(tenant_id: str, name: str) -> None:
    """A new webhook token for TENANT_ID's PBX."""
    _create(tenant_id, CredentialKind.WEBHOOK_TOKEN, Scope.WRITE, name)


@token.command("revoke")
@click.argument("tenant_id")
@click.argument("token_id")
def token_revoke(tenant_id: str, token_id: str) -> None:
    """Revoke one of TENANT_ID's webhook tokens, by its id."""
    _revoke(tenant_id, CredentialKind.WEBHOOK_TOKEN, token_id)


@key.command("create")
@click.argument("tenant_id")
@click.option("--scope", type=click.Choice(["read", "write"]), default="read", show_default=True)
@click.option("--name", default="")
def key_create(tenant_id: str, scope: str, name: str) -> None:
    """A new API key of TENANT_ID (read for wallboards and reports)."""
    _create(tenant_id, CredentialKind.API_KEY, Scope(scope), name)


@key.command("revoke")
@click.argument("tenant_id")
@click.argument("key_id")
def key_revoke(tenant_id: str, key_id: str) -> None:
    """Revoke one of TENANT_ID's API keys, by its id."""
    _revoke(tenant_id, CredentialKind.API_KEY, key_id)
