"""Outcome subscriptions: turn outcome records into deliveries and deliver them.

The outcome streams are the source. A dispatcher (one at a time, in a worker's
housekeeper) reads each tenant's stream after its cursor and, for every record
and every matching subscription, creates a delivery whose id is derived from
the two (so doing it twice creates it once), arms its timer and moves the
cursor, all in one MULTI. Due timers become RQ jobs on the deliveries queue;
each job makes one attempt and either finishes the delivery or re-arms its
timer on the retry schedule. A worker killed mid-attempt leaves the timer
leased; when the lease runs out the attempt is made again with the same
``webhook-id``, which is how receivers deduplicate.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from statemachine.events import isoformat
from workers.observability import get_logger
from workers.settings import DELIVERIES_QUEUE, Settings
from workers.store import Store, SubscriptionStore, dumps
from workers.webhooks import UnsafeURL, check_url, post, signature_header

log = get_logger("callstate.delivery")

DELIVER = "workers.delivery.deliver"
DELIVERY_LEASE = 60.0


def deliveries_queue(client: redis.Redis) -> Queue:
    return Queue(DELIVERIES_QUEUE, connection=client, serializer=JSONSerializer)


def _now_iso(now: float) -> str | None:
    from datetime import UTC, datetime

    return isoformat(datetime.fromtimestamp(now, UTC))


def _record_micros(record_id: str) -> int:
    return int(record_id.partition("-")[0])


def matches(subscription: dict[str, Any], record: dict[str, Any]) -> bool:
    """Does this subscription want this outcome record?"""
    if not subscription.get("enabled", True):
        return False
    if subscription["tenant_id"] not in ("*", record["tenant_id"]):
        return False
    kinds = subscription.get("outcomes")
    if kinds and record["outcome"] not in kinds:
        return False
    # Only outcomes decided after the subscription was made.
    return _record_micros(record["id"]) >= int(subscription["created_us"])


def delivery_id_for(subscription_id: str, record_id: str) -> str:
    return f"{subscription_id}_{record_id}"


def new_delivery(
    subscription: dict[str, Any], record: dict[str, Any], now: float
) -> dict[str, Any]:
    delivery_id = delivery_id_for(subscription["id"], record["id"])
    return {
        "id": delivery_id,
        "webhook_id": "msg_" + hashlib.sha256(delivery_id.encode()).hexdigest()[:32],
        "subscription_id": subscription["id"],
        "subscription_tenant": subscription["tenant_id"],
        "tenant_id": record["tenant_id"],
        "outcome_id": record["id"],
        "call_uuid": record["call_uuid"],
        "outcome": record["outcome"],
        "revision": record["revision"],
        "body": dumps(record),
        "status": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
        "created_at": _now_iso(now),
        "last_attempt_at": None,
        "next_attempt_at": _now_iso(now),
        "delivered_at": None,
    }


class Deliveries:
    """Dispatching outcome records to subscriptions, and attempting deliveries."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.subs = SubscriptionStore(store)
        self.settings = settings

    # -- dispatch ---------------------------------------------------------------

    def dispatch(self, tenant_id: str, now: float | None = None, batch: int = 200) -> int:
        """Create deliveries for the tenant's new outcome records; returns how many."""
        now = time.time() if now is None else now
        cursor = self.subs.dispatch_cursor(tenant_id)
        records, new_cursor = self.store.read_outcomes([tenant_id], after=cursor, limit=batch)
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

    def enqueue_due(self, tenant_id: str, queue: Queue, now: float | None = None) -> int:
        """Turn the tenant's due delivery timers into jobs; returns how many."""
        now = time.time() if now is None else now
        lease = now + DELIVERY_LEASE
        claimed = self.subs.claim_delivery_timers(tenant_id, now, lease)
        for subscription_id, delivery_id in claimed:
            digest = hashlib.sha256(delivery_id.encode()).hexdigest()[:24]
            queue.enqueue_call(
                DELIVER,
                args=(tenant_id, subscription_id, delivery_id),
                job_id=f"dl-{digest}-{int(lease * 1000)}",
                timeout=60,
                result_ttl=0,
                failure_ttl=int(self.settings.retention_seconds),
            )
        return len(claimed)

    def replay(self, tenant_id: str, delivery: dict[str, Any], now: float | None = None) -> None:
        """Try a (failed) delivery again from the start of its schedule."""
        now = time.time() if now is None else now
        delivery.update(status="pending", attempts=0, next_attempt_at=_now_iso(now))
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.schedule_delivery(tenant_id, delivery["subscription_id"], delivery["id"], now)

    # -- one attempt ----------------------------------------------------------------

    def attempt(self, tenant_id: str, subscription_id: str, delivery_id: str) -> str:
        """Make one delivery attempt; returns the delivery's status afterwards."""
        now = time.time()
        delivery = self.subs.delivery(tenant_id, delivery_id)
        if delivery is None or delivery["status"] != "pending":
            self.subs.finish_delivery_timer(tenant_id, subscription_id, delivery_id)
            return delivery["status"] if delivery else "gone"
        subscription = self.subs.subscription(delivery["subscription_tenant"], subscription_id)
        if subscription is None or not subscription.get("enabled", True):
            delivery.update(status="cancelled", last_error="subscription deleted or disabled")
            return self._finish(tenant_id, delivery)

        body = delivery["body"].encode()
        timestamp = int(now)
        live_secrets = [
            s["secret"]
            for s in subscription["secrets"]
            if s.get("expires_at") is None or s["expires_at"] > now
        ]
        headers = {
            "content-type": "application/json",
            "user-agent": "callstate-webhooks/1",
            "webhook-id": delivery["webhook_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                live_secrets, delivery["webhook_id"], timestamp, body
            ),
        }
        try:
            check_url(subscription["url"], allow_private=self.settings.subscription_allow_private)
            result = post(subscription["url"], body, headers)
            status_code, error = result.status, result.error
        except UnsafeURL as exc:
            status_code, error = None, str(exc)
        delivery.update(
            attempts=delivery["attempts"] + 1,
            last_status=status_code,
            last_error=error,
            last_attempt_at=_now_iso(now),
        )
        if status_code is not None and 200 <= status_code < 300:
            delivery.update(
                status="succeeded", delivered_at=_now_iso(time.time()), next_attempt_at=None
            )
            self.store.add_stats({"deliveries:succeeded": 1})
            return self._finish(tenant_id, delivery)
        if status_code == 410:
            subscription["enabled"] = False
            subscription["disabled_reason"] = "receiver answered 410 Gone"
            self.subs.save_subscription(subscription)
            delivery.update(
                status="failed",
                next_attempt_at=None,
                last_error="receiver answered 410 Gone: subscription disabled",
            )
            self.store.add_stats({"deliveries:gone": 1})
            return self._finish(tenant_id, delivery)
        schedule = self.settings.delivery_retry_seconds
        if delivery["attempts"] > len(schedule):
            delivery.update(status="failed", next_attempt_at=None)
            self.store.add_stats({"deliveries:failed": 1})
            log.warning("delivery failed for good", delivery_id=delivery_id, tenant=tenant_id)
            return self._finish(tenant_id, delivery)
        due = now + schedule[delivery["attempts"] - 1]
        delivery["next_attempt_at"] = _now_iso(due)
        self.store.add_stats({"deliveries:retrying": 1})
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.schedule_delivery(tenant_id, subscription_id, delivery_id, due)
        return "pending"

    def _finish(self, tenant_id: str, delivery: dict[str, Any]) -> str:
        self.subs.save_delivery(tenant_id, delivery)
        self.subs.finish_delivery_timer(tenant_id, delivery["subscription_id"], delivery["id"])
        return str(delivery["status"])


def deliver(tenant_id: str, subscription_id: str, delivery_id: str) -> str:
    """Job: make one attempt at one delivery."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver runs inside an RQ worker")
    settings = Settings.from_env()
    store = Store(job.connection, retention_seconds=settings.retention_seconds)
    return Deliveries(store, settings).attempt(tenant_id, subscription_id, delivery_id)


def public_delivery(delivery: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the API shows it (the body parsed back into an object)."""
    shown = {k: v for k, v in delivery.items() if k not in ("body", "subscription_tenant")}
    shown["payload"] = json.loads(delivery["body"])
    return shown
