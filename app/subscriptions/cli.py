"""``flask subscriptions test <id>``: send a subscription one sample of each thing it
can receive, now, and say how each attempt went (nothing is recorded)."""

from __future__ import annotations

import secrets
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.web.resources import get_store
from core.deliveries.kinds import kind_of, render, transport
from core.deliveries.records import Subscription
from core.deliveries.webhooks import DELIVERY_TIMEOUT_SECONDS, signed_headers, system_resolver
from core.notifications.samples import samples
from core.store import dumps
from core.tenant_settings import for_tenant

subscriptions = AppGroup("subscriptions", help="Outbound subscriptions.")


def _find(subscription_id: str) -> Subscription:
    store = get_store()
    for tenant in store.subscriptions.subscription_tenants():
        found = store.subscriptions.subscription(tenant, subscription_id)
        if found is not None:
            return found
    raise click.ClickException(f"no subscription {subscription_id!r}")


@subscriptions.command("test")
@click.argument("subscription_id")
def test(subscription_id: str) -> None:
    """Send SUBSCRIPTION_ID a sample missed call's outcome, a sample alert and, to a
    webhook, a sample call.ringing, in its kind's format. Exits 1 if any failed."""
    settings = current_app.config["CALLSTATE_SETTINGS"]
    subscription = _find(subscription_id)
    tenant = subscription["tenant_id"] if subscription["tenant_id"] != "*" else "sample-tenant"
    zone = for_tenant(get_store(), settings, tenant).zone
    kind = kind_of(subscription)
    failed = 0
    for what, record in samples(tenant).items():
        if what.startswith("call.") and kind != "webhook":
            continue  # live call events go to webhooks only
        webhook_id = f"msg_test_{secrets.token_hex(8)}"
        rendered = render(
            subscription, dumps(record), zone=zone, settings=settings,
            message_id=f"<{webhook_id}@callstate>",
        )  # fmt: skip
        now = int(time.time())
        live = [s["secret"] for s in subscription["secrets"] if not s.get("expires_at")]
        headers = signed_headers(live, webhook_id, now, rendered.body)
        attempt = transport(
            subscription.get("url"), rendered, headers, settings,
            timeout=DELIVERY_TIMEOUT_SECONDS, resolve=system_resolver, ssl_context=None,
        )  # fmt: skip
        where = subscription.get("url") or ", ".join(subscription.get("to") or [])
        if attempt.ok:
            click.echo(f"{what}: sent to {where} ({kind}): {attempt.status}")
        else:
            failed += 1
            click.echo(f"{what}: FAILED to {where} ({kind}): {attempt.error}")
    if failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(subscriptions)
