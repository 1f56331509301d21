"""The soak's two-minute form: steady traffic, nothing may clearly leak.

The long run (``python -m bench.soak``, 20 minutes, recorded in
docs/performance.md) judges growth per hour; two minutes cannot, so this fails only
on what is unmistakable (bench/soak_analysis.py: a memory curve up by a
quarter, handles up by several, a backlog that keeps growing), on any 5xx, and
on any outcome wrong or missing.
"""

from __future__ import annotations

from bench.soak import run


def test_two_minutes_of_steady_traffic_leak_nothing_and_decide_every_outcome() -> None:
    """Two minutes at 30 webhooks/s with 20 s retention: flat curves, no 5xx, outcomes right."""
    result = run(minutes=2.0, rate=30.0, interval=5.0, retention=20.0, warmup=50.0,
                 report=lambda _line: None)  # fmt: skip
    assert len([s for s in result.samples if s.at >= result.warmup]) >= 10
    assert result.leaks() == []
    assert result.server_errors == 0 and result.send_errors == 0, result.statuses
    assert result.checked >= 300 and result.wrong == [] and result.missing == []
    assert result.delivered >= result.checked  # the subscription saw every decided call
