"""Live call events and alerts to subscriptions: the feed of each tenant's events
turned into deliveries, as core/deliveries/dispatch.py does with outcome records.

A subscription asks for them by type in ``events``. Live call events go to
webhook subscriptions only (a screen-pop is a program); alerts go to every kind.
Each delivery then takes the same road as an outcome's: its queue, retries,
breaker and, for Slack, Teams and email, a message rendered for people.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from core.deliveries.dispatch import make_delivery
from core.deliveries.records import Delivery, Subscription
from core.store import Store
from statemachine.outcome import OutcomeId


def wants(subscription: Subscription, event: Mapping[str, Any]) -> bool:
    """Does this subscription want this live event or alert?"""
    if not subscription.get("enabled", True):
        return False
    if subscription["tenant_id"] not in ("*", event["tenant_id"]):
        return False
    if event["type"] not in (subscription.get("events") or ()):
        return False
    return OutcomeId.parse(str(event["id"])).micros >= int(subscription["created_us"])


def event_delivery(subscription: Subscription, event: Mapping[str, Any], now: float) -> Delivery:
    # Claims take a subscription's due deliveries in id order among equals: the
    # sequence padded so that one call's events are claimed oldest first.
    micros, _, seq = str(event["id"]).partition("-")
    delivery_id = f"{subscription['id']}_ev{micros}-{int(seq or 0):06d}"
    delivery = make_delivery(
        subscription, delivery_id, event, outcome=str(event["type"]), revision=1, now=now
    )
    delivery["type"] = str(event["type"])
    return delivery


def dispatch_events(
    store: Store, tenant_id: str, now: float | None = None, batch: int = 200
) -> tuple[int, bool]:
    """Create deliveries for the tenant's new live events and alerts; returns how many,
    and whether more may wait (a full batch was read; new events mark the tenant
    due again themselves).

    A tenant no subscription asks events of has its cursor moved to now without
    reading its streams: every call makes live events, few tenants want them.
    """
    now = time.time() if now is None else now
    subs = store.subscriptions
    # Read before the subscriptions: one made after that has a later created_us,
    # so skipping to here skips nothing it wants.
    horizon = store.outcomes.server_time_us()
    subscriptions = [
        s for s in subs.subscriptions(tenant_id) + subs.subscriptions("*") if s.get("events")
    ]
    if not subscriptions:
        subs.add_deliveries(tenant_id, [], str(horizon - 1), now, feed="events")
        return 0, False
    cursor = store.live_events.cursor(tenant_id)
    events, new_cursor = store.live_events.read([tenant_id], after=cursor, limit=batch)
    if not events or new_cursor is None:
        return 0, False
    deliveries = [
        event_delivery(subscription, event, now)
        for event in events
        for subscription in subscriptions
        if wants(subscription, event)
    ]
    subs.add_deliveries(tenant_id, deliveries, new_cursor, now, feed="events")
    return len(deliveries), len(events) >= batch
