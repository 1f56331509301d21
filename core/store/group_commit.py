"""Group commit: many threads' writes sent to Redis in one round trip.

A web process answers many requests at once, each of which must see its event
in Redis before it answers. Sent one by one, every request pays a round trip
and the thread hand-offs around it; here one request thread sends everything
waiting as one pipeline and wakes each other thread with its own answer once
Redis has answered. Under load a round trip carries many writes; alone, a
request sends its own, as before.

Nothing is answered before the pipeline's reply: a thread woken with a result
knows its write is in Redis, exactly as if it had sent it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A pipeline this long is ~1 ms of Redis work: longer ones would only make the
# first thread in it wait for the last.
MAX_BATCH = 128


class _Waiter(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "leading", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.leading = True
        # A lock taken now and released by the flusher: the cheapest one-shot
        # signal between two threads in CPython.
        self.done = threading.Lock()
        self.done.acquire()


class GroupCommit(Generic[Item, Result]):
    """Run ``flush`` over the items submitted meanwhile, in one call.

    Leader and followers: a thread that finds nobody flushing becomes the
    leader and flushes everything waiting, its own item included, while
    threads arriving meanwhile queue up and sleep; when its flush returns it
    wakes them, and hands leadership to the first of any that queued during
    it. A lone request thus flushes its own item with no hand-off at all.

    ``flush(items)`` returns one result or exception per item, in order; an
    exception it raises fails every item of that batch.

    With ``queue_wait``, an item still queued behind a flush after that many
    seconds is withdrawn (never sent) and its thread gets ``gave_up()``
    raised: a stalled Redis must not hold every request thread for the whole
    socket timeout. An item already in a batch being sent always waits for
    its batch's answer, so a thread never reports a write that happened as
    one that did not.
    """

    def __init__(
        self,
        flush: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
        *,
        queue_wait: float | None = None,
        gave_up: Callable[[], BaseException] = lambda: TimeoutError("gave up waiting"),
    ) -> None:
        self._flush = flush
        self._queue_wait = queue_wait
        self._gave_up = gave_up
        self._lock = threading.Lock()
        self._waiting: list[_Waiter[Item, Result]] = []
        self._flushing = False

    def submit(self, item: Item) -> Result:
        """Send ``item`` with the next batch; return its result or raise its error."""
        waiter: _Waiter[Item, Result] = _Waiter(item)
        with self._lock:
            self._waiting.append(waiter)
            leader = not self._flushing
            self._flushing = True
        if not leader:
            self._wait(waiter)  # woken with a result, or to lead the next batch
        if waiter.leading:
            self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _wait(self, waiter: _Waiter[Item, Result]) -> None:
        """Sleep until woken; give up if still queued after ``queue_wait``."""
        if self._queue_wait is None:
            waiter.done.acquire()
            return
        if waiter.done.acquire(timeout=self._queue_wait):
            return
        with self._lock:
            # Leadership is handed over under this lock (its done lock released
            # with it), and a batch leaves the queue under it too.
            queued = waiter in self._waiting
            handed = queued and waiter.done.acquire(blocking=False)
            if queued and not handed:
                self._waiting.remove(waiter)
                raise self._gave_up()
        if not handed:
            # In a batch being sent: its answer is coming, and the batch's
            # writes may already be in Redis.
            waiter.done.acquire()

    def _lead(self) -> None:
        with self._lock:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
        self._send(batch)
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.leading = True
                successor.done.release()
            else:
                self._flushing = False

    def _send(self, batch: list[_Waiter[Item, Result]]) -> None:
        try:
            results = self._flush([w.item for w in batch])
        except BaseException as exc:  # every waiter of the batch gets it
            results = [exc] * len(batch)
        for index, waiter in enumerate(batch):
            result = results[index] if index < len(results) else RuntimeError("no result")
            if isinstance(result, BaseException):
                waiter.error = result
            else:
                waiter.result = result
            waiter.leading = False
            if index:
                waiter.done.release()
