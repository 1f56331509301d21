"""The per-subscription circuit breaker as a pure model (core/deliveries/breaker.py)."""

from __future__ import annotations

import pytest

from core.deliveries.breaker import Breaker, BreakerPolicy, BreakerState

POLICY = BreakerPolicy(failures=3, window=4.0, cooldown=5.0, max_cooldown=30.0)


def failed_times(
    times: int, breaker: Breaker | None = None, now: float = 96.0, every: float = 2.0
) -> Breaker:
    """``times`` failures, ``every`` seconds apart from ``now`` (by default the third at 100)."""
    breaker = breaker or Breaker()
    for n in range(times):
        breaker = breaker.failed(POLICY, now + n * every, "TimeoutError")
    return breaker


def test_opens_after_the_threshold_of_failures_in_a_row_and_not_before() -> None:
    """Two failures leave it closed (counted); the third, 4 s into the run, opens it
    until now + cooldown."""
    assert failed_times(2) == Breaker(failures=2, first_failed_at=96.0, last_error="TimeoutError")
    opened = failed_times(3)
    assert opened.state is BreakerState.OPEN
    assert (opened.opened_at, opened.retry_at, opened.times_opened) == (100.0, 105.0, 1)


def test_a_burst_of_failures_shorter_than_the_window_does_not_open_it() -> None:
    """Many failures within 4 s (first attempts failing together) keep it closed; one
    more once the run has lasted the window opens it."""
    burst = failed_times(10, every=0.1)
    assert burst.closed and burst.failures == 10
    assert burst.failed(POLICY, 96.0 + 4.0, "HTTP 500").state is BreakerState.OPEN


def test_a_success_anywhere_in_the_run_starts_the_count_again() -> None:
    """Failures must be in a row: a 2xx between them resets the count (slow but right is fine)."""
    breaker = failed_times(2).succeeded()
    assert failed_times(2, breaker).closed


@pytest.mark.parametrize(
    ("now", "may"), [(104.9, False), (105.0, True), (500.0, True)]
)
def test_an_open_breaker_allows_a_probe_from_retry_at(now: float, may: bool) -> None:
    """No probe before retry_at; one may go from then on."""
    assert failed_times(3).may_probe(now) is may


def test_one_probe_at_a_time_and_a_lost_probe_is_given_up_after_its_lease() -> None:
    """Half-open refuses a second probe until the first one's lease runs out."""
    probing = failed_times(3).probing(now=105.0, lease=30.0)
    assert probing.state is BreakerState.HALF_OPEN
    assert not probing.may_probe(134.9)
    assert probing.may_probe(135.0)


def test_a_failed_probe_opens_it_again_for_twice_as_long_up_to_the_cap() -> None:
    """Cooldowns 5, 10, 20, then 30 (the cap) as probes keep failing."""
    breaker = failed_times(3)
    waits = [breaker.retry_at - 100.0]  # type: ignore[operator]
    for _ in range(3):
        now = breaker.retry_at or 0.0
        breaker = breaker.probing(now, 30.0).failed(POLICY, now, "HTTP 503")
        assert breaker.state is BreakerState.OPEN
        waits.append((breaker.retry_at or 0.0) - now)
    assert waits == [5.0, 10.0, 20.0, 30.0]


def test_a_successful_probe_closes_it_clean() -> None:
    """The probe's 2xx: closed, no failures, the next opening starts at the base cooldown."""
    breaker = failed_times(3).probing(105.0, 30.0).succeeded()
    assert breaker == Breaker()
    assert failed_times(3, breaker, now=196.0).retry_at == 205.0


def test_a_straggler_failing_while_open_keeps_it_open_until_the_same_time() -> None:
    """An attempt begun before it opened and failing after adds a failure, not a delay."""
    opened = failed_times(3)
    later = opened.failed(POLICY, 103.0, "TimeoutError")
    assert later.state is BreakerState.OPEN and later.retry_at == opened.retry_at
    assert later.failures == 4


def test_an_unused_probe_hands_the_turn_to_the_next_due_delivery() -> None:
    """A probe granted with nothing to send returns to open, probe allowed at once."""
    back = failed_times(3).probing(105.0, 30.0).probe_unused(106.0)
    assert back.state is BreakerState.OPEN and back.may_probe(106.0)


def test_zero_failures_means_it_never_opens() -> None:
    """failures=0 disables the breaker."""
    breaker = Breaker()
    for n in range(100):
        breaker = breaker.failed(BreakerPolicy(failures=0), float(n), "x")
    assert breaker.closed and breaker.failures == 100


def test_stored_and_shown() -> None:
    """JSON round trip; the API's view names the state, the run of failures and the probe time."""
    opened = failed_times(3)
    assert Breaker.from_json(opened.to_json()) == opened
    assert Breaker.from_json(None) == Breaker()
    shown = opened.shown()
    assert shown["state"] == "open" and shown["consecutive_failures"] == 3
    assert shown["next_probe_at"] == "1970-01-01T00:01:45.000000Z"
    assert shown["opened_at"] == "1970-01-01T00:01:40.000000Z"
    assert Breaker().shown() == {
        "state": "closed",
        "consecutive_failures": 0,
        "opened_at": None,
        "next_probe_at": None,
        "last_error": None,
    }
