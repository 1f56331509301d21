"""Outcome subscriptions: turn outcome records into deliveries, prepare and record attempts.

The outcome streams are the source. A dispatcher (one at a time, in a worker's
housekeeper) reads each tenant's stream after its cursor and, for every record
and every matching subscription, creates a delivery whose id is derived from
the two (so doing it twice creates it once), queues it and moves the cursor,
all in one MULTI. Each (tenant, subscription) has a queue of its own. The
delivery process (workers/deliveries.py) claims due attempts from those
queues under each subscription's in-flight limit and breaker, makes them on a
pool of threads, and records them here: the delivery finishes, or is queued
again on the retry schedule. A process killed mid-attempt leaves the claim
leased; when the lease runs out the attempt is made again with the same
``webhook-id``, which is how receivers deduplicate.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.deliveries.breaker import Breaker, BreakerPolicy
from core.deliveries.kinds import Rendered, kind_of, render
from core.deliveries.records import Delivery, Subscription
from core.deliveries.webhooks import DELIVERY_TIMEOUT_SECONDS, Attempt, signed_headers
from core.observability import get_logger
from core.settings import Settings
from core.store import Store, dumps
from core.tenant_settings import for_tenant
from statemachine.events import isoformat
from statemachine.outcome import OutcomeId, OutcomeRecord

log = get_logger("callstate.delivery")

# How long a claimed attempt is ours: longer than an attempt may take, after
# which a delivery process that died mid-attempt has its claim made again.
DELIVERY_LEASE = 3 * DELIVERY_TIMEOUT_SECONDS


def _now_iso(now: float) -> str | None:
    from datetime import UTC, datetime

    return isoformat(datetime.fromtimestamp(now, UTC))


def matches(subscription: Subscription, record: OutcomeRecord) -> bool:
    """Does this subscription want this outcome record?"""
    if not subscription.get("enabled", True):
        return False
    if subscription["tenant_id"] not in ("*", record["tenant_id"]):
        return False
    kinds = subscription.get("outcomes")
    # None: every outcome; [] (a subscription of live events only): none.
    if kinds is not None and record["outcome"] not in kinds:
        return False
    # Only outcomes decided after the subscription was made.
    return OutcomeId.of(record).micros >= int(subscription["created_us"])


def delivery_id_for(subscription_id: str, record: OutcomeRecord) -> str:
    """One delivery (and webhook-id) per subscription, call and revision, not per
    record id: a revision published again under a new id (its first record lost
    with a Redis master before it reached the replica) is not delivered again,
    and if its delivery was lost too, the new one has the same webhook-id."""
    revision = f"{record['tenant_id']}\0{record['call_uuid']}\0{record['revision']}"
    return f"{subscription_id}_{hashlib.sha256(revision.encode()).hexdigest()[:24]}"


def new_delivery(subscription: Subscription, record: OutcomeRecord, now: float) -> Delivery:
    return make_delivery(
        subscription,
        delivery_id_for(subscription["id"], record),
        record,
        outcome=record["outcome"],
        revision=record["revision"],
        now=now,
    )


def make_delivery(
    subscription: Subscription,
    delivery_id: str,
    record: Mapping[str, Any],
    *,
    outcome: str,
    revision: int,
    now: float,
) -> Delivery:
    """A pending delivery of ``record`` (an outcome record, a live event or an alert)."""
    return {
        "id": delivery_id,
        "webhook_id": "msg_" + hashlib.sha256(delivery_id.encode()).hexdigest()[:32],
        "subscription_id": subscription["id"],
        "subscription_tenant": subscription["tenant_id"],
        "tenant_id": record["tenant_id"],
        "outcome_id": str(record["id"]),
        "call_uuid": str(record.get("call_uuid") or ""),
        "outcome": outcome,
        "revision": revision,
        "body": dumps(dict(record)),
        "status": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "created_at": _now_iso(now),
        "last_attempt_at": None,
        "next_attempt_at": _now_iso(now),
        "delivered_at": None,
    }


def max_in_flight(subscription: Subscription, settings: Settings) -> int:
    """Attempts to this subscription under way at once, per delivery process."""
    return int(subscription.get("max_in_flight") or settings.delivery_max_in_flight)


@dataclass(frozen=True)
class Prepared:
    """One attempt ready to go, and what to record it against."""

    tenant_id: str
    subscription: Subscription
    stored_under: str  # the tenant (or "*") the subscription is stored under
    delivery: Delivery
    rendered: Rendered
    headers: dict[str, str]
    started: float

    @property
    def url(self) -> str | None:
        return self.subscription.get("url")

    @property
    def body(self) -> bytes:
        return self.rendered.body

    @property
    def call_turn(self) -> tuple[str, str] | None:
        """(subscription, call) for a live call event, whose attempts to one
        subscription go one at a time per call so they arrive in order; else None."""
        if not str(self.delivery.get("type", "")).startswith("call."):
            return None
        return self.subscription_id, self.delivery["call_uuid"]

    @property
    def subscription_id(self) -> str:
        return str(self.subscription["id"])


class Deliveries:
    """Dispatching outcome records to subscriptions, and attempting deliveries."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.subs = store.subscriptions
        self.settings = settings

    # -- dispatch ---------------------------------------------------------------

    def dispatch(self, tenant_id: str, now: float | None = None, batch: int = 200) -> int:
        """Create deliveries for the tenant's new outcome records; returns how many."""
        now = time.time() if now is None else now
        cursor = self.subs.dispatch_cursor(tenant_id)
        records, new_cursor = self.store.outcomes.read_outcomes(
            [tenant_id], after=cursor, limit=batch
        )
        if not records or new_cursor is None:
            return 0
        subscriptions = self.subs.subscriptions(tenant_id) + self.subs.subscriptions("*")
        deliveries = [
            new_delivery(subscription, record, now)
            for record in records
            for subscription in subscriptions
            if matches(subscription, record)
        ]
        self.subs.add_deliveries(tenant_id, deliveries, new_cursor, now)
        return len(deliveries)

    def undispatched(self, tenant_id: str) -> bool:
        """Whether the tenant has outcome records not yet turned into deliveries."""
        records, _ = self.store.outcomes.read_outcomes(
            [tenant_id], after=self.subs.dispatch_cursor(tenant_id), limit=1
        )
        return bool(records)

    def replay(self, tenant_id: str, delivery: Delivery, now: float | None = None) -> None:
        """Try a (failed) delivery again from the start of its schedule."""
        now = time.time() if now is None else now
        delivery.update({"status": "pending", "attempts": 0, "next_attempt_at": _now_iso(now)})
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.schedule_delivery(tenant_id, delivery["subscription_id"], delivery["id"], now)

    @property
    def breaker_policy(self) -> BreakerPolicy:
        seconds = self.settings.delivery_breaker_seconds
        return BreakerPolicy(
            failures=self.settings.delivery_breaker_failures, window=seconds, cooldown=seconds
        )

    # -- one attempt ----------------------------------------------------------------

    def prepare(
        self,
        tenant_id: str,
        delivery_id: str,
        subscription: Subscription | None,
        stored_under: str,
        subscription_id: str,
        now: float | None = None,
    ) -> Prepared | None:
        """Sign a claimed delivery for its attempt; None if there is nothing to send
        (the delivery is gone or done, or its subscription deleted or disabled:
        then it is finished here)."""
        now = time.time() if now is None else now
        delivery = self.subs.delivery(tenant_id, delivery_id)
        if delivery is None or delivery["status"] != "pending":
            self.subs.finish_delivery_timer(tenant_id, subscription_id, delivery_id)
            return None
        if subscription is None or not subscription.get("enabled", True):
            delivery.update(
                {"status": "cancelled", "last_error": "subscription deleted or disabled"}
            )
            self._finish(tenant_id, delivery)
            return None
        rendered = self._render(tenant_id, subscription, delivery)
        body = rendered.body
        timestamp = int(now)
        live_secrets = [
            s["secret"]
            for s in subscription["secrets"]
            if (expires_at := s.get("expires_at")) is None or expires_at > now
        ]
        headers = signed_headers(live_secrets, delivery["webhook_id"], timestamp, body)
        if kind_of(subscription) != "webhook":
            # Slack and Teams read none of the signature headers, but a proxy in
            # front of them may: the body they carry is signed all the same.
            headers["user-agent"] = "callstate-notifications/1"
        return Prepared(tenant_id, subscription, stored_under, delivery, rendered, headers, now)

    def _render(self, tenant_id: str, subscription: Subscription, delivery: Delivery) -> Rendered:
        """The attempt's body, in the subscription's kind (its own tenant's time zone)."""
        zone = None
        if kind_of(subscription) != "webhook":
            zone = for_tenant(self.store, self.settings, tenant_id).zone
        return render(
            subscription,
            delivery["body"],
            zone=zone,
            settings=self.settings,
            message_id=f"<{delivery['webhook_id']}@callstate>",
        )

    def record(self, prepared: Prepared, result: Attempt) -> str:
        """Record an attempt's result: finish the delivery or queue its retry on the
        schedule, and move the subscription's breaker. Returns the delivery's status."""
        tenant_id, delivery = prepared.tenant_id, prepared.delivery
        subscription_id, started = prepared.subscription_id, prepared.started
        delivery.update(
            {
                "attempts": delivery["attempts"] + 1,
                "last_status": result.status,
                "last_error": result.error,
                "last_attempt_at": _now_iso(started),
            }
        )
        if result.status != 410:
            self._move_breaker(prepared, result)
        if result.ok:
            delivery.update(
                {
                    "status": "succeeded",
                    "delivered_at": _now_iso(time.time()),
                    "next_attempt_at": None,
                }
            )
            self.store.stats.add({"deliveries:succeeded": 1})
            return self._finish(tenant_id, delivery)
        if result.status == 410:
            subscription = self.subs.subscription(prepared.stored_under, subscription_id)
            if subscription is not None:
                subscription["enabled"] = False
                subscription["disabled_reason"] = "receiver answered 410 Gone"
                self.subs.save_subscription(subscription)
            delivery.update(
                {
                    "status": "failed",
                    "next_attempt_at": None,
                    "last_error": "receiver answered 410 Gone: subscription disabled",
                }
            )
            self.store.stats.add({"deliveries:gone": 1})
            return self._finish(tenant_id, delivery)
        schedule = self.settings.delivery_retry_seconds
        if delivery["attempts"] > len(schedule):
            delivery.update({"status": "failed", "next_attempt_at": None})
            self.store.stats.add({"deliveries:failed": 1})
            log.warning("delivery failed for good", delivery_id=delivery["id"], tenant=tenant_id)
            return self._finish(tenant_id, delivery)
        due = started + schedule[delivery["attempts"] - 1]
        delivery["next_attempt_at"] = _now_iso(due)
        self.store.stats.add({"deliveries:retrying": 1})
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.schedule_delivery(tenant_id, subscription_id, delivery["id"], due)
        return "pending"

    def _move_breaker(self, prepared: Prepared, result: Attempt) -> None:
        under, subscription_id = prepared.stored_under, prepared.subscription_id
        if result.ok:
            before = self.subs.clear_breaker(under, subscription_id)
            if before is not None and not Breaker.from_json(before).closed:
                log.warning("receiver answers again: breaker closed", subscription=subscription_id)
            return
        policy, now = self.breaker_policy, time.time()

        def fail(raw: str | None) -> str:
            return Breaker.from_json(raw).failed(policy, now, result.error).to_json()

        before, after = self.subs.update_breaker(under, subscription_id, fail)
        opened = Breaker.from_json(after)
        if opened.state.value == "open" and Breaker.from_json(before).state != opened.state:
            log.warning(
                "receiver failing: breaker open, its deliveries wait",
                subscription=subscription_id,
                failures=opened.failures,
                next_probe_in=round((opened.retry_at or now) - now, 1),
            )

    def _finish(self, tenant_id: str, delivery: Delivery) -> str:
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.finish_delivery_timer(tenant_id, delivery["subscription_id"], delivery["id"])
        return str(delivery["status"])
