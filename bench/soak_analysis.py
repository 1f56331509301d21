"""Is a soak's curve flat? Pure functions over the samples ``bench.soak`` takes.

Two questions, asked of the samples after warm-up only:

* **Growth per hour** — a least-squares line through the samples, its slope
  per hour as a share of the curve's mean. This is the long run's goal (issue:
  under 2 % an hour beyond what retention explains; retention is short in a
  soak, so what it explains is over before warm-up ends).
* **A clear leak** — the median of the last third of the window against the
  median of the first third. Medians of thirds, not the slope, so a two-minute
  run is judged on a trend, not on one noisy sample; the thresholds are wide
  on purpose: the short form only has to catch what is unmistakable.

Counts that should stay near zero (pending events, RQ's queue) have no
meaningful "share of the mean": they are judged by whether the backlog grows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# Curves judged by relative growth (bytes), by absolute growth (handles), or as a backlog.
MEMORY_CURVES = ("web_rss_mb", "worker_rss_mb", "redis_used_mb")
HANDLE_CURVES = ("open_fds", "redis_clients")
BACKLOG_CURVES = ("pending", "rq_queue")
# The short form fails on a memory curve growing this much across its window...
CLEAR_LEAK_PERCENT = 25.0
# ...or on this many more file descriptors or Redis connections.
CLEAR_LEAK_HANDLES = 6.0


@dataclass(frozen=True)
class Trend:
    """One curve after warm-up: where it started and ended, and how fast it grew."""

    name: str
    first: float  # median of the first third
    last: float  # median of the last third
    per_hour_percent: float  # least-squares slope per hour, as % of the mean

    @property
    def window_growth(self) -> float:
        return self.last - self.first

    @property
    def window_percent(self) -> float:
        return 100.0 * self.window_growth / self.first if self.first else 0.0


def _thirds(values: Sequence[float]) -> tuple[float, float]:
    third = max(1, len(values) // 3)
    return statistics.median(values[:third]), statistics.median(values[-third:])


def slope_per_hour_percent(times: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of ``values`` over ``times`` (seconds), per hour, as % of
    their mean; 0 for fewer than two samples or a zero mean."""
    if len(times) < 2:
        return 0.0
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    if not spread or not mean_v:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True)) / spread
    return 100.0 * slope * 3600.0 / mean_v


def trend(name: str, times: Sequence[float], values: Sequence[float], warmup: float) -> Trend:
    """The trend of one curve, from the samples taken at ``warmup`` seconds or later."""
    kept = [(t, v) for t, v in zip(times, values, strict=True) if t >= warmup]
    if not kept:
        raise ValueError(f"{name}: no sample after the {warmup:.0f} s warm-up")
    after_t, after_v = [t for t, _ in kept], [v for _, v in kept]
    first, last = _thirds(after_v)
    return Trend(name, first, last, slope_per_hour_percent(after_t, after_v))


def flat_for_an_hour(item: Trend, max_percent_per_hour: float) -> bool:
    """The long run's test of one curve."""
    if item.name in MEMORY_CURVES:
        return item.per_hour_percent <= max_percent_per_hour
    if item.name in HANDLE_CURVES:
        return item.window_growth <= 2
    return not _backlog_grows(item)


def clear_leak(item: Trend) -> str | None:
    """Why ``item`` is a clear leak, or None."""
    if item.name in MEMORY_CURVES and item.window_percent > CLEAR_LEAK_PERCENT:
        return f"{item.name} grew {item.window_percent:.0f}% ({item.first:.1f} -> {item.last:.1f})"
    if item.name in HANDLE_CURVES and item.window_growth > CLEAR_LEAK_HANDLES:
        return f"{item.name} grew by {item.window_growth:.0f} ({item.first:.0f} -> {item.last:.0f})"
    if item.name in BACKLOG_CURVES and _backlog_grows(item):
        return f"{item.name} backlog grows ({item.first:.0f} -> {item.last:.0f})"
    return None


def _backlog_grows(item: Trend) -> bool:
    # A few events in flight are normal; a backlog that doubles and is large is not.
    return item.last > max(50.0, 2.0 * item.first)
