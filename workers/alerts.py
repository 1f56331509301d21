"""The housekeeper's alert watch: open and resolve each tenant's alerts.

Every ALERT_EVERY seconds (one worker at a time) it looks at the tenants that
have a subscription asking for an alert (every tenant, for such a subscription
of an admin key) and whose settings set a threshold; other tenants cost
nothing but the look at the subscriptions. For each alert set: long waits from
the tenant's live calls index, the service level of the last 30 minutes from
its outcome stream (once a minute), overdue callbacks from its callbacks. The
store sends an alert only when its state changes (core/store/live_events.py),
so each goes out once when it starts and once, resolved, when it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from core.observability import get_logger
from core.settings import Settings
from core.store import ALERTS_LOCK_KEY, Store
from core.supervisor import callbacks
from core.tenant_settings import TenantSettings, for_tenant
from statemachine.alerts import (
    SERVICE_LEVEL_WINDOW_SECONDS,
    Condition,
    callback_overdue,
    long_wait,
    service_level,
)
from statemachine.events import isoformat, parse_time

log = get_logger("callstate.alerts")

ALERT_EVERY = 5.0
SERVICE_LEVEL_EVERY = 60.0
LOCK_SECONDS = 10.0


class AlertWatch:
    """Evaluates alerts now and then; call :meth:`tick` as often as convenient."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._looked = float("-inf")
        self._service_level_at: dict[str, float] = {}

    def tick(self) -> int:
        """Evaluate if ALERT_EVERY has passed (one watcher at a time); returns alerts sent."""
        now = self.clock()
        if now - self._looked < ALERT_EVERY:
            return 0
        self._looked = now
        lock = self.store.locks.try_take(ALERTS_LOCK_KEY, LOCK_SECONDS)
        if lock is None:
            return 0
        try:
            return sum(self.evaluate(tenant, now) for tenant in self.watched())
        finally:
            self.store.locks.release(lock)

    def watched(self) -> list[str]:
        """Tenants some subscription asks alerts of (two round trips)."""
        subs = self.store.subscriptions
        tenants: set[str] = set()
        for under, found in subs.subscriptions_of(subs.subscription_tenants()).items():
            for subscription in found:
                alerts = [e for e in subscription.get("events") or () if e.startswith("alert.")]
                if alerts and subscription.get("enabled", True):
                    tenants.add(under)
        if "*" in tenants:
            tenants = (tenants - {"*"}) | set(self.store.tenants.all())
        return sorted(tenants)

    def evaluate(self, tenant_id: str, now: float) -> int:
        """Open or resolve the tenant's alerts as its figures say; returns how many were sent."""
        tenant = for_tenant(self.store, self.settings, tenant_id)
        sent = 0
        for condition in self._conditions(tenant_id, tenant, now):
            body: dict[str, Any] = {
                "type": condition.alert.value,
                "tenant_id": tenant_id,
                "at": isoformat(datetime.fromtimestamp(now, UTC)),
                "resolved": not condition.holds,
                "value": condition.value,
                "threshold": condition.threshold,
                "count": condition.count,
            }
            if self.store.live_events.set_alert(
                tenant_id, condition.alert.value, condition.holds, body
            ):
                sent += 1
                log.info("alert", tenant=tenant_id, alert=condition.alert.value,
                         resolved=not condition.holds)  # fmt: skip
        return sent

    def _conditions(self, tenant_id: str, tenant: TenantSettings, now: float) -> list[Condition]:
        found: list[Condition] = []
        if tenant.alert_wait_seconds is not None:
            waits = [
                now - parse_time(call["started_at"]).timestamp()
                for call in self.store.calls.live_calls([tenant_id])
                if call["direction"] == "inbound"
                and call["answered_by"] is None
                and call["started_at"]
            ]
            found.append(long_wait(waits, tenant.alert_wait_seconds))
        if tenant.alert_service_level is not None and (
            now - self._service_level_at.get(tenant_id, float("-inf")) >= SERVICE_LEVEL_EVERY
        ):
            self._service_level_at[tenant_id] = now
            offered, within = self._last_half_hour(tenant_id, tenant, now)
            found.append(service_level(offered, within, tenant.alert_service_level))
        if tenant.alert_callback_minutes is not None:
            ages = [
                (now - item.missed_at.timestamp()) / 60
                for item in callbacks(self.store.supervisor, tenant_id)
                if item.resolution is None
            ]
            found.append(callback_overdue(ages, tenant.alert_callback_minutes))
        return found

    def _last_half_hour(
        self, tenant_id: str, tenant: TenantSettings, now: float
    ) -> tuple[int, int]:
        """Inbound calls decided in the last 30 minutes, and those answered within the
        tenant's service level (each call's latest revision)."""
        end = int(now * 1_000_000)
        records, _ = self.store.outcomes.read_outcome_window(
            [tenant_id], end - SERVICE_LEVEL_WINDOW_SECONDS * 1_000_000, end
        )
        latest = {record["call_uuid"]: record for record in records}
        inbound = [r for r in latest.values() if r["direction"] == "inbound"]
        within = sum(
            1
            for r in inbound
            if r["outcome"] == "answered"
            and (r["wait_seconds"] or 0.0) <= tenant.service_level_seconds
        )
        return len(inbound), within
