"""The soak's judgement of a curve (bench/soak_analysis.py), on made-up samples."""

from __future__ import annotations

import pytest

from bench.soak_analysis import clear_leak, flat_for_an_hour, slope_per_hour_percent, trend

TIMES = [float(t) for t in range(0, 600, 10)]


def test_a_flat_noisy_curve_is_flat_and_no_leak() -> None:
    """Memory wobbling around 100 MB with no trend passes both tests."""
    values = [100.0 + (1.5 if i % 2 else -1.5) for i in range(len(TIMES))]
    item = trend("worker_rss_mb", TIMES, values, warmup=60)
    assert abs(item.per_hour_percent) < 2
    assert flat_for_an_hour(item, 2.0) and clear_leak(item) is None


def test_steady_growth_is_measured_per_hour_and_fails_the_long_test() -> None:
    """10 % growth over 10 minutes is ~60 %/h: not flat for an hour."""
    values = [100.0 + 10.0 * t / 600 for t in TIMES]
    item = trend("web_rss_mb", TIMES, values, warmup=0)
    assert item.per_hour_percent == pytest.approx(100 * 60 / 105, rel=0.05)
    assert not flat_for_an_hour(item, 2.0)
    assert clear_leak(item) is None  # not a clear leak in so short a window


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [("redis_used_mb", 10.0, 20.0), ("open_fds", 80.0, 120.0), ("pending", 0.0, 500.0)],
)
def test_clear_leaks_are_named(name: str, start: float, end: float) -> None:
    """Memory doubling, 40 more file descriptors, a backlog climbing to 500: each named."""
    values = [start + (end - start) * t / TIMES[-1] for t in TIMES]
    why = clear_leak(trend(name, TIMES, values, warmup=0))
    assert why is not None and why.startswith(name)


def test_samples_before_warm_up_are_not_judged() -> None:
    """A climb that ends within warm-up (retention filling up) is not growth."""
    values = [min(t, 120.0) for t in TIMES]
    item = trend("redis_used_mb", TIMES, values, warmup=150)
    assert item.first == item.last == 120.0 and item.per_hour_percent == 0
    with pytest.raises(ValueError):
        trend("redis_used_mb", TIMES, values, warmup=10_000)


def test_slope_of_too_few_samples_is_zero() -> None:
    assert slope_per_hour_percent([1.0], [5.0]) == 0.0
