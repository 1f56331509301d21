"""The housekeeper's cross-process locks (Store.try_lock / release_lock)."""

from __future__ import annotations

import time

from core.store import REAPER_LOCK_KEY, Store


def test_one_holder_at_a_time_and_release_frees_it(store: Store) -> None:
    """A second taker is refused while the first holds the lock, and gets it after."""
    first = store.try_lock(REAPER_LOCK_KEY, 5.0)
    assert first is not None
    assert store.try_lock(REAPER_LOCK_KEY, 5.0) is None
    store.release_lock(first)
    second = store.try_lock(REAPER_LOCK_KEY, 5.0)
    assert second is not None
    store.release_lock(second)


def test_a_late_release_leaves_the_next_holders_lock_alone(store: Store) -> None:
    """A holder whose lock expired and was taken by another does not delete it on release."""
    slow = store.try_lock(REAPER_LOCK_KEY, 0.05)
    assert slow is not None
    time.sleep(0.1)  # its pass overran the lock's time: another process takes it
    other = store.try_lock(REAPER_LOCK_KEY, 5.0)
    assert other is not None
    store.release_lock(slow)  # no error, and no effect
    assert store.redis.exists(REAPER_LOCK_KEY) == 1
    assert store.try_lock(REAPER_LOCK_KEY, 5.0) is None
    store.release_lock(other)
    assert store.redis.exists(REAPER_LOCK_KEY) == 0
