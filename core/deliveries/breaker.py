"""A circuit breaker per subscription: pause a failing receiver, probe it back.

``closed``     attempts go out (up to the subscription's in-flight limit);
``open``       after ``failures`` failed attempts in a row spanning at least
               ``window`` seconds (a burst of first attempts failing together
               is not yet a failing receiver): no attempt until
               ``retry_at``; the deliveries due meanwhile wait, their attempts
               uncounted;
``half_open``  one attempt (the probe: the next due delivery) is under way. A
               2xx closes the breaker; a failure opens it again for twice as
               long, up to ``max_cooldown``. A probe whose process died is
               given up after its lease, and another is made.

Any 2xx closes the breaker, whenever it comes: the receiver works. Pure: the
store keeps the state, the delivery process moves it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from statemachine.events import isoformat


class BreakerState(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and for how long."""

    failures: int = 5  # failed attempts in a row that open it; 0: never
    window: float = 5.0  # ...over at least this many seconds
    cooldown: float = 5.0  # seconds open the first time, doubling each failed probe
    max_cooldown: float = 300.0

    def cooldown_for(self, times_opened: int) -> float:
        return float(min(self.max_cooldown, self.cooldown * 2 ** max(times_opened - 1, 0)))


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0  # failed attempts in a row
    first_failed_at: float | None = None  # when the run of failures began
    times_opened: int = 0  # opened without a success between
    opened_at: float | None = None
    retry_at: float | None = None  # open: the first moment a probe may go
    probe_until: float | None = None  # half_open: when an unanswered probe is given up
    last_error: str | None = None

    # -- moves ------------------------------------------------------------------

    def succeeded(self) -> Breaker:
        return Breaker()

    def failed(self, policy: BreakerPolicy, now: float, error: str | None) -> Breaker:
        failures = self.failures + 1
        first = self.first_failed_at if self.first_failed_at is not None else now
        if self.state is BreakerState.HALF_OPEN or (
            self.state is BreakerState.CLOSED
            and 0 < policy.failures <= failures
            and now - first >= policy.window
        ):
            times = self.times_opened + 1
            return Breaker(
                BreakerState.OPEN,
                failures,
                first,
                times,
                now,
                now + policy.cooldown_for(times),
                None,
                error,
            )
        # Closed below the threshold, or an attempt begun before it opened.
        return replace(self, failures=failures, first_failed_at=first, last_error=error)

    def may_probe(self, now: float) -> bool:
        if self.state is BreakerState.OPEN:
            return self.retry_at is None or now >= self.retry_at
        if self.state is BreakerState.HALF_OPEN:
            return self.probe_until is None or now >= self.probe_until
        return False

    def probing(self, now: float, lease: float) -> Breaker:
        """Half-open, with one probe under way until ``now + lease`` at the latest."""
        return replace(self, state=BreakerState.HALF_OPEN, retry_at=None, probe_until=now + lease)

    def probe_unused(self, now: float) -> Breaker:
        """Back to open, due at once: the probe granted found no delivery to make."""
        return replace(self, state=BreakerState.OPEN, retry_at=now, probe_until=None)

    @property
    def closed(self) -> bool:
        return self.state is BreakerState.CLOSED

    # -- stored and shown ---------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "state": self.state.value}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> Breaker:
        if raw is None:
            return cls()
        data: dict[str, Any] = json.loads(raw)
        return cls(**{**data, "state": BreakerState(data["state"])})

    def shown(self) -> dict[str, Any]:
        """The breaker as the subscription API shows it."""
        return {
            "state": self.state.value,
            "consecutive_failures": self.failures,
            "opened_at": _iso(self.opened_at) if not self.closed else None,
            "next_probe_at": _iso(self.retry_at) if self.state is BreakerState.OPEN else None,
            "last_error": self.last_error,
        }


def _iso(when: float | None) -> str | None:
    return None if when is None else isoformat(datetime.fromtimestamp(when, UTC))
