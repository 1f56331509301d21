"""Group commit: many threads' writes sent to Redis in one round trip.

A web process answers many requests at once, each of which must see its event
in Redis before it answers. Sent one by one, every request pays a round trip
and the thread hand-offs around it; here each request thread hands its item
to one flusher thread and sleeps, the flusher sends everything waiting as one
pipeline, and wakes each thread with its own answer once Redis has answered.
Under load a round trip carries dozens of writes; alone, a request waits for
its own round trip as before, plus one thread hand-off.

Nothing is answered before the pipeline's reply: a thread woken with a result
knows its write is in Redis, exactly as if it had sent it itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# A pipeline this long is ~1 ms of Redis work: longer ones would only make the
# first thread in it wait for the last.
MAX_BATCH = 128


class _Waiter(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        # A lock taken now and released by the flusher: the cheapest one-shot
        # signal between two threads in CPython.
        self.done = threading.Lock()
        self.done.acquire()


class GroupCommit(Generic[Item, Result]):
    """Run ``flush`` over the items submitted meanwhile, from one flusher thread.

    ``flush(items)`` returns one result or exception per item, in order; an
    exception it raises fails every item of that batch.
    """

    def __init__(self, flush: Callable[[Sequence[Item]], Sequence[Result | BaseException]]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._waiting: list[_Waiter[Item, Result]] = []
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, item: Item) -> Result:
        """Send ``item`` with the next batch; return its result or raise its error."""
        waiter: _Waiter[Item, Result] = _Waiter(item)
        with self._lock:
            self._ensure_flusher()
            self._waiting.append(waiter)
            if len(self._waiting) == 1:
                self._ready.notify()
        waiter.done.acquire()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    def _ensure_flusher(self) -> None:
        # A forked process (a web server's worker) does not inherit threads.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._waiting = []
            self._thread = threading.Thread(
                target=self._run, name="callstate-group-commit", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._ready.wait()
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
            self._send(batch)

    def _send(self, batch: list[_Waiter[Item, Result]]) -> None:
        try:
            results = self._flush([w.item for w in batch])
        except BaseException as exc:  # every waiter of the batch gets it
            for waiter in batch:
                waiter.error = exc
                waiter.done.release()
            return
        for index, waiter in enumerate(batch):
            result = results[index] if index < len(results) else RuntimeError("no result")
            if isinstance(result, BaseException):
                waiter.error = result
            else:
                waiter.result = result
            waiter.done.release()
