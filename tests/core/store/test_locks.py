"""The housekeeper's cross-process locks (store.locks: try_take / release)."""

from __future__ import annotations

import time

from core.store import REAPER_LOCK_KEY, Store


def test_one_holder_at_a_time_and_release_frees_it(store: Store) -> None:
    """A second taker is refused while the first holds the lock, and gets it after."""
    first = store.locks.try_take(REAPER_LOCK_KEY, 5.0)
    assert first is not None
    assert store.locks.try_take(REAPER_LOCK_KEY, 5.0) is None
    store.locks.release(first)
    second = store.locks.try_take(REAPER_LOCK_KEY, 5.0)
    assert second is not None
    store.locks.release(second)


def test_a_late_release_leaves_the_next_holders_lock_alone(store: Store) -> None:
    """A holder whose lock expired and was taken by another does not delete it on release."""
    slow = store.locks.try_take(REAPER_LOCK_KEY, 0.05)
    assert slow is not None
    time.sleep(0.1)  # its pass overran the lock's time: another process takes it
    other = store.locks.try_take(REAPER_LOCK_KEY, 5.0)
    assert other is not None
    store.locks.release(slow)  # no error, and no effect
    assert store.backend.redis.exists(REAPER_LOCK_KEY) == 1
    assert store.locks.try_take(REAPER_LOCK_KEY, 5.0) is None
    store.locks.release(other)
    assert store.backend.redis.exists(REAPER_LOCK_KEY) == 0
