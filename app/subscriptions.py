"""Outbound webhook subscriptions under /v1/subscriptions.

A tenant key manages its tenant's subscriptions; an admin key (``*``) may
create one for any ``tenant_id``, or for all tenants by leaving it out.
Secrets are shown once, when made (creation or rotation).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from app.auth import ALL_TENANTS, require_api_key
from app.call_schemas import OUTCOME_KINDS
from app.errors import BadQuery, error_response
from app.resources import get_store
from statemachine.events import isoformat
from workers.breaker import Breaker
from workers.delivery import Deliveries, max_in_flight, public_delivery
from workers.store import SubscriptionStore
from workers.webhooks import UnsafeURL, check_url, new_secret

bp = Blueprint("subscriptions", __name__, url_prefix="/v1/subscriptions")
ROTATION_GRACE_SECONDS = 24 * 3600
# Tenants that have subscriptions stored under them. An admin may subscribe for
# a tenant that has sent no event yet (so is not in Store.tenants()); without
# this set, the admin key could not list, read or delete that subscription.


class SubscriptionSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    outcomes = fields.List(fields.String(validate=validate.OneOf(OUTCOME_KINDS)), load_default=None)
    tenant_id = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    max_in_flight = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=100),
        metadata={
            "example": 4,
            "description": "attempts to it under way at once, per delivery process "
            "(default DELIVERY_MAX_IN_FLIGHT)",
        },
    )


class RotateSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    grace_seconds = fields.Integer(
        load_default=ROTATION_GRACE_SECONDS, validate=validate.Range(min=0, max=30 * 24 * 3600)
    )


def _subs() -> SubscriptionStore:
    return SubscriptionStore(get_store())


def _public(subscription: dict[str, Any], breaker: str | None = None) -> dict[str, Any]:
    """A subscription as shown: no secrets; its in-flight limit and its breaker's state."""
    hidden = {"secrets", "created_us"}
    shown = {k: v for k, v in subscription.items() if k not in hidden}
    shown["max_in_flight"] = max_in_flight(subscription, current_app.config["CALLSTATE_SETTINGS"])
    shown["breaker"] = Breaker.from_json(breaker).shown()
    return shown


def _shown(subscriptions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subscriptions as shown, each with its breaker (read per tenant stored under)."""
    by_tenant: dict[str, list[dict[str, Any]]] = {}
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
        known = set(_subs().subscription_tenants()) | set(store.tenants())
        return [ALL_TENANTS, *sorted(known - {ALL_TENANTS})]
    return [g.scope]


def _find(subscription_id: str) -> dict[str, Any] | None:
    subs = _subs()
    for tenant in _storage_tenants():
        found = subs.subscription(tenant, subscription_id)
        if found is not None:
            return found
    return None


def _json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if data is None and request.get_data():
        raise BadQuery("body must be a JSON object")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadQuery("body must be a JSON object")
    return data


@bp.post("")
@require_api_key
def create() -> tuple[Response, int]:
    """Subscribe a URL to outcome records (all kinds, or those listed)."""
    try:
        data = SubscriptionSchema().load(_json_body())
    except ValidationError as exc:
        return error_response(400, "invalid subscription", fields=exc.messages)
    tenant = data["tenant_id"]
    if g.scope != ALL_TENANTS:
        if tenant not in (None, g.scope):
            return error_response(403, f"this API key may not subscribe for tenant {tenant!r}")
        tenant = g.scope
    tenant = tenant or ALL_TENANTS
    settings = current_app.config["CALLSTATE_SETTINGS"]
    try:
        check_url(data["url"], allow_private=settings.subscription_allow_private)
    except UnsafeURL as exc:
        return error_response(400, str(exc))
    store = get_store()
    created_us = store.server_time_us()
    secret = new_secret()
    subscription = {
        "id": f"sub_{secrets.token_hex(8)}",
        "tenant_id": tenant,
        "url": data["url"],
        "outcomes": sorted(set(data["outcomes"])) if data["outcomes"] else None,
        "enabled": True,
        "max_in_flight": data["max_in_flight"],
        "created_at": isoformat_us(created_us),
        "created_us": created_us,
        "secrets": [{"secret": secret, "expires_at": None}],
    }
    _subs().save_subscription(subscription)
    return jsonify({**_public(subscription), "secret": secret}), 201


def isoformat_us(micros: int) -> str | None:
    from datetime import UTC, datetime, timedelta

    return isoformat(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros))


@bp.get("")
@require_api_key
def list_subscriptions() -> Response:
    subs = _subs()
    found = [s for tenant in _storage_tenants() for s in subs.subscriptions(tenant)]
    return jsonify({"subscriptions": _shown(found)})


@bp.get("/<subscription_id>")
@require_api_key
def get_subscription(subscription_id: str) -> tuple[Response, int]:
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    return jsonify(_shown([subscription])[0]), 200


@bp.delete("/<subscription_id>")
@require_api_key
def delete(subscription_id: str) -> tuple[Response, int]:
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    _subs().delete_subscription(subscription["tenant_id"], subscription_id)
    return Response(status=204), 204


@bp.post("/<subscription_id>/rotate-secret")
@require_api_key
def rotate_secret(subscription_id: str) -> tuple[Response, int]:
    """Make a new secret; the old one keeps signing for ``grace_seconds`` (default 24 h)."""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    try:
        grace = RotateSchema().load(_json_body())["grace_seconds"]
    except ValidationError as exc:
        return error_response(400, "invalid rotation", fields=exc.messages)
    now = time.time()
    secret = new_secret()
    kept = [
        {"secret": s["secret"], "expires_at": min(s["expires_at"] or now + grace, now + grace)}
        for s in subscription["secrets"]
        if s["expires_at"] is None or s["expires_at"] > now
    ]
    subscription["secrets"] = [{"secret": secret, "expires_at": None}, *kept]
    _subs().save_subscription(subscription)
    return jsonify({**_shown([subscription])[0], "secret": secret}), 200


@bp.get("/<subscription_id>/deliveries")
@require_api_key
def deliveries(subscription_id: str) -> tuple[Response, int]:
    """The subscription's deliveries, newest first; ``status`` filters."""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    status = request.args.get("status")
    subs = _subs()
    tenants = (
        get_store().tenants()
        if subscription["tenant_id"] == ALL_TENANTS
        else [subscription["tenant_id"]]
    )
    found = [d for tenant in tenants for d in subs.deliveries(tenant, subscription_id)]
    found.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
    if status:
        found = [d for d in found if d["status"] == status]
    return jsonify({"deliveries": [public_delivery(d) for d in found]}), 200


@bp.post("/<subscription_id>/deliveries/<delivery_id>/replay")
@require_api_key
def replay(subscription_id: str, delivery_id: str) -> tuple[Response, int]:
    """Deliver again (same webhook-id), from the start of the retry schedule."""
    subscription = _find(subscription_id)
    if subscription is None:
        return error_response(404, "no such subscription")
    subs = _subs()
    tenants = (
        get_store().tenants()
        if subscription["tenant_id"] == ALL_TENANTS
        else [subscription["tenant_id"]]
    )
    for tenant in tenants:
        delivery = subs.delivery(tenant, delivery_id)
        if delivery is not None and delivery["subscription_id"] == subscription_id:
            Deliveries(get_store(), current_app.config["CALLSTATE_SETTINGS"]).replay(
                tenant, delivery
            )
            return jsonify({"delivery": public_delivery(delivery)}), 202
    return error_response(404, "no such delivery")
