"""Outbound webhook subscriptions under /v1/subscriptions.

A tenant key manages its tenant's subscriptions; an admin key (``*``) may
create one for any ``tenant_id``, or for all tenants by leaving it out.
Secrets are shown once, when made (creation or rotation).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Response, current_app, g

from app.subscriptions.schemas import (
    DeliveryArgs,
    DeliveryListSchema,
    ReplayedSchema,
    RotateSchema,
    SubscriptionAnswer,
    SubscriptionListSchema,
    SubscriptionSchema,
    SubscriptionWithSecretAnswer,
)
from app.web.auth import ALL_TENANTS
from app.web.errors import Missing, error_response
from app.web.resources import get_store
from app.web.rest import ApiBlueprint, error_doc, path_param
from app.web.schema_fields import EXAMPLE_DELIVERY, EXAMPLE_SUBSCRIPTION
from core.deliveries.breaker import Breaker
from core.deliveries.dispatch import Deliveries, max_in_flight
from core.deliveries.records import SigningSecret, Subscription
from core.deliveries.webhooks import UnsafeURL, check_url, new_secret
from core.store import Subscriptions
from statemachine.events import isoformat

bp = ApiBlueprint("subscriptions", __name__, url_prefix="/v1/subscriptions")
# Tenants that have subscriptions stored under them. An admin may subscribe for
# a tenant that has sent no event yet (so is not in store.tenants.all()); without
# this set, the admin key could not list, read or delete that subscription.


def _subs() -> Subscriptions:
    return get_store().subscriptions


def _public(subscription: Subscription, breaker: str | None = None) -> dict[str, Any]:
    """A subscription with its in-flight limit and its breaker's state (the answer
    schemas pick what is shown)."""
    settings = current_app.config["CALLSTATE_SETTINGS"]
    return {
        **subscription,
        "max_in_flight": max_in_flight(subscription, settings),
        "breaker": Breaker.from_json(breaker).shown(),
    }


def _shown(subscriptions: list[Subscription]) -> list[dict[str, Any]]:
    """Subscriptions as shown, each with its breaker (read per tenant stored under)."""
    by_tenant: dict[str, list[Subscription]] = {}
    for subscription in subscriptions:
        by_tenant.setdefault(subscription["tenant_id"], []).append(subscription)
    breakers: dict[str, str | None] = {}
    subs = _subs()
    for tenant, group in by_tenant.items():
        ids = [s["id"] for s in group]
        breakers.update(zip(ids, subs.breakers(tenant, ids), strict=True))
    return [_public(s, breakers.get(s["id"])) for s in subscriptions]


def _storage_tenants() -> list[str]:
    """Where the key's subscriptions may be stored: its tenant, or every tenant and ``*``."""
    if g.scope == ALL_TENANTS:
        store = get_store()
        known = set(_subs().subscription_tenants()) | set(store.tenants.all())
        return [ALL_TENANTS, *sorted(known - {ALL_TENANTS})]
    return [g.scope]


def _find(subscription_id: str) -> Subscription | None:
    subs = _subs()
    for tenant in _storage_tenants():
        found = subs.subscription(tenant, subscription_id)
        if found is not None:
            return found
    return None


def _must_exist(subscription_id: str, **_: str) -> None:
    """Raises Missing (404) for a subscription the key cannot see."""
    if _find(subscription_id) is None:
        raise Missing("no such subscription")


SUBSCRIPTION_ID = path_param("subscription_id", "the subscription's id", EXAMPLE_SUBSCRIPTION)
NO_SUCH_SUBSCRIPTION = error_doc("no such subscription")


@bp.operation(
    "POST",
    "",
    "createSubscription",
    tag="subscriptions",
    body=SubscriptionSchema(),
    status=201,
    schema=SubscriptionWithSecretAnswer,
    answer="made; the secret is shown only now",
    usual=(401, 503),
    errors={
        400: "not a JSON object, an invalid field, or a refused URL",
        403: "a tenant key named another tenant",
    },
)
def create(data: dict[str, Any]) -> Any:
    """Subscribe a URL to outcome records

    Every outcome record (every revision) decided from now on and matching `outcomes`
    is POSTed to `url`, signed the Standard Webhooks way with the secret in the answer.
    `kind` `slack` or `teams` posts a short message for people to the URL (a Slack
    incoming webhook, a Teams Workflows webhook) instead of the record; `email` sends
    it to the `to` addresses through SMTP_URL.
    URLs on loopback/private networks are refused unless SUBSCRIPTION_ALLOW_PRIVATE=1.
    `tenant_id`: an admin key's choice (absent: all tenants); a tenant key may only
    name its own.
    """
    tenant = data["tenant_id"]
    if g.scope != ALL_TENANTS:
        if tenant not in (None, g.scope):
            return error_response(403, f"this API key may not subscribe for tenant {tenant!r}")
        tenant = g.scope
    tenant = tenant or ALL_TENANTS
    settings = current_app.config["CALLSTATE_SETTINGS"]
    if data["kind"] == "email" and not settings.smtp_url:
        return error_response(400, "email subscriptions need SMTP_URL, which is not set")
    try:
        if data["url"] is not None:
            check_url(
                data["url"],
                allow_private=settings.subscription_allow_private,
                allow_ports=settings.subscription_allow_ports,
            )
    except UnsafeURL as exc:
        return error_response(400, str(exc))
    store = get_store()
    created_us = store.outcomes.server_time_us()
    secret = new_secret()
    subscription: Subscription = {
        "id": f"sub_{secrets.token_hex(8)}",
        "tenant_id": tenant,
        "url": data["url"],
        "outcomes": wanted_outcomes(data["outcomes"], data["events"]),
        "events": sorted(set(data["events"])) if data["events"] else None,
        "enabled": True,
        "max_in_flight": data["max_in_flight"],
        "created_at": isoformat_us(created_us),
        "created_us": created_us,
        "secrets": [{"secret": secret, "expires_at": None}],
        "kind": data["kind"],
    }
    if data["to"]:
        subscription["to"] = sorted(set(data["to"]))
    _subs().save_subscription(subscription)
    return {**_public(subscription), "secret": secret}


def isoformat_us(micros: int) -> str | None:
    from datetime import UTC, datetime, timedelta

    return isoformat(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))


@bp.operation(
    "GET",
    "",
    "listSubscriptions",
    tag="subscriptions",
    schema=SubscriptionListSchema,
    answer="the subscriptions",
    usual=(401, 503),
)
def list_subscriptions() -> Any:
    """The key's subscriptions (an admin key: all of them)"""
    subs = _subs()
    found = [s for tenant in _storage_tenants() for s in subs.subscriptions(tenant)]
    return {"subscriptions": _shown(found)}


@bp.operation(
    "GET",
    "/<subscription_id>",
    "getSubscription",
    tag="subscriptions",
    path_params=[SUBSCRIPTION_ID],
    schema=SubscriptionAnswer,
    answer="the subscription",
    usual=(401, 503),
    errors={404: NO_SUCH_SUBSCRIPTION},
)
def get_subscription(subscription_id: str) -> Any:
    """One subscription"""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    return _shown([subscription])[0]


@bp.operation(
    "DELETE",
    "/<subscription_id>",
    "deleteSubscription",
    tag="subscriptions",
    path_params=[SUBSCRIPTION_ID],
    status=204,
    answer="removed",
    usual=(401, 503),
    errors={404: NO_SUCH_SUBSCRIPTION},
)
def delete(subscription_id: str) -> tuple[Response, int]:
    """Remove a subscription (its pending deliveries are cancelled)"""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    _subs().delete_subscription(subscription["tenant_id"], subscription_id)
    return Response(status=204), 204


@bp.operation(
    "POST",
    "/<subscription_id>/rotate-secret",
    "rotateSubscriptionSecret",
    tag="subscriptions",
    path_params=[SUBSCRIPTION_ID],
    # An unknown subscription is a 404 whatever the body.
    before=_must_exist,
    body=RotateSchema(),
    body_required=False,
    schema=SubscriptionWithSecretAnswer,
    answer="rotated; the new secret",
    usual=(401, 503),
    errors={400: "not a JSON object, or a bad grace_seconds", 404: NO_SUCH_SUBSCRIPTION},
)
def rotate_secret(rotation: dict[str, int], subscription_id: str) -> Any:
    """Make a new secret; the old one keeps signing for grace_seconds"""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    grace = rotation["grace_seconds"]
    now = time.time()
    secret = new_secret()
    kept: list[SigningSecret] = [
        {"secret": s["secret"], "expires_at": min(s["expires_at"] or now + grace, now + grace)}
        for s in subscription["secrets"]
        if s["expires_at"] is None or s["expires_at"] > now
    ]
    subscription["secrets"] = [{"secret": secret, "expires_at": None}, *kept]
    _subs().save_subscription(subscription)
    return {**_shown([subscription])[0], "secret": secret}


@bp.operation(
    "GET",
    "/<subscription_id>/deliveries",
    "listDeliveries",
    tag="subscriptions",
    path_params=[SUBSCRIPTION_ID],
    query=DeliveryArgs(),
    schema=DeliveryListSchema,
    answer="the deliveries",
    usual=(401, 503),
    errors={404: NO_SUCH_SUBSCRIPTION},
)
def deliveries(args: dict[str, str], subscription_id: str) -> Any:
    """The subscription's deliveries, newest first"""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    status = args.get("status")
    subs = _subs()
    tenants = (
        get_store().tenants.all()
        if subscription["tenant_id"] == ALL_TENANTS
        else [subscription["tenant_id"]]
    )
    found = [d for tenant in tenants for d in subs.deliveries(tenant, subscription_id)]
    found.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
    if status:
        found = [d for d in found if d["status"] == status]
    return {"deliveries": found}


@bp.operation(
    "POST",
    "/<subscription_id>/deliveries/<delivery_id>/replay",
    "replayDelivery",
    tag="subscriptions",
    path_params=[
        SUBSCRIPTION_ID,
        path_param(
            "delivery_id",
            "the delivery's id: one per subscription, call and revision",
            EXAMPLE_DELIVERY,
        ),
    ],
    status=202,
    schema=ReplayedSchema,
    answer="queued again",
    usual=(401, 503),
    errors={404: "no such subscription or delivery"},
)
def replay(subscription_id: str, delivery_id: str) -> Any:
    """Deliver again, with the same webhook-id, from the start of the retry schedule"""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    subs = _subs()
    tenants = (
        get_store().tenants.all()
        if subscription["tenant_id"] == ALL_TENANTS
        else [subscription["tenant_id"]]
    )
    for tenant in tenants:
        delivery = subs.delivery(tenant, delivery_id)
        if delivery is not None and delivery["subscription_id"] == subscription_id:
            Deliveries(get_store(), current_app.config["CALLSTATE_SETTINGS"]).replay(
                tenant, delivery
            )
            return {"delivery": delivery}
    return error_response(404, "no such delivery")


def wanted_outcomes(outcomes: list[str] | None, events: list[str] | None) -> list[str] | None:
    """The outcome kinds a new subscription gets (None: all). ``[]`` has meant all
    since the first contract, and still does; beside ``events`` it means none (a
    subscription of live events or alerts only)."""
    if outcomes is None or (not outcomes and not events):
        return None
    return sorted(set(outcomes))
