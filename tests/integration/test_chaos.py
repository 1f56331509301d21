"""The chaos script's core, short: traffic while workers are killed and Redis restarts."""

from __future__ import annotations

import shutil

import pytest

from bench.chaos import run

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server (real-Redis test skipped)"
)


def test_kills_and_redis_restarts_lose_duplicate_and_corrupt_nothing() -> None:
    """Under kill -9 of workers and Redis restarts, every call gets its one right outcome."""
    report = run(
        duration=10.0,
        rate=5.0,
        speed=30.0,
        kill_every=2.5,
        redis_every=6.0,
        workers=2,
        seed=7,
        settle_timeout=60.0,
        progress=False,
    )
    assert report.worker_kills >= 2 and report.redis_restarts >= 1, report.summary()
    assert report.clean, report.summary() + "\n" + "\n".join(report.problems[:20])
