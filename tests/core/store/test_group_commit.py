"""core.store.group_commit: many threads' items flushed together, each thread its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from core.store import GroupCommit


def test_every_thread_gets_its_own_result_and_calls_are_shared() -> None:
    """32 threads x 50 items: each gets its item's result; far fewer flushes than items."""
    batches: list[int] = []

    def flush(items: Sequence[int]) -> list[int]:
        batches.append(len(items))
        time.sleep(0.001)  # a round trip: others queue up meanwhile
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(flush)
    wrong: list[tuple[int, int]] = []

    def submit_many(base: int) -> None:
        for offset in range(50):
            item = base * 1000 + offset
            answer = group.submit(item)
            if answer != item * 10:
                wrong.append((item, answer))

    threads = [threading.Thread(target=submit_many, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert wrong == []
    assert sum(batches) == 32 * 50
    assert len(batches) < 32 * 50 / 2, "items were not flushed together"


def test_a_lone_item_is_flushed_by_its_own_thread() -> None:
    """With nobody else waiting, submit flushes in the calling thread: no hand-off."""
    seen: list[str] = []

    def flush(items: Sequence[str]) -> list[str]:
        seen.append(threading.current_thread().name)
        return [i.upper() for i in items]

    group: GroupCommit[str, str] = GroupCommit(flush)
    assert group.submit("a") == "A"
    assert seen == [threading.current_thread().name]


def test_errors_reach_their_items_only() -> None:
    """A per-item error is raised in that item's thread; the others get their results."""

    def flush(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    group: GroupCommit[int, int] = GroupCommit(flush)
    assert group.submit(2) == 2
    with pytest.raises(ValueError, match="bad 3"):
        group.submit(3)


def test_a_failed_flush_fails_its_batch_and_the_next_one_works() -> None:
    """If flush itself raises, every item of that batch gets the error; later ones go through."""
    calls = 0

    def flush(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("redis went away")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(flush)
    with pytest.raises(ConnectionError):
        group.submit(1)
    assert group.submit(2) == 2


def test_an_item_queued_behind_a_stalled_flush_gives_up_and_is_never_sent() -> None:
    """A flush that hangs: items queued behind it get gave_up() after queue_wait and are
    withdrawn; the stalled batch's own thread still gets its answer."""
    release = threading.Event()
    sent: list[int] = []

    def flush(items: Sequence[int]) -> list[int]:
        sent.extend(items)
        if 0 in items:
            release.wait(10)
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(
        flush, queue_wait=0.2, gave_up=lambda: TimeoutError("busy")
    )
    answers: dict[int, object] = {}

    def submit(item: int) -> None:
        try:
            answers[item] = group.submit(item)
        except TimeoutError as exc:
            answers[item] = exc

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    time.sleep(0.05)  # item 0 is being flushed (stalled)
    queued = [threading.Thread(target=submit, args=(n,)) for n in (1, 2)]
    for thread in queued:
        thread.start()
    for thread in queued:
        thread.join(5)
    assert all(isinstance(answers[n], TimeoutError) for n in (1, 2)), answers
    release.set()
    first.join(5)
    assert answers[0] == 0
    assert sent == [0], "withdrawn items must never be sent"
    # The queue is usable again afterwards.
    assert group.submit(7) == 7
