"""Server-Sent Events: how many streams a web process serves, and how they end.

Serving model: granian runs the app in WEB_THREADS threads per web process
(app/web/serve.py). A stream holds one thread of one web process
while it is open, so each process lets at most ``MAX_STREAMS_PER_PROCESS``
streams in at once (a semaphore) and keeps the rest of its threads for
webhook intake; a stream over the limit is refused with 503 and Retry-After,
which EventSource clients obey. Streams end after ``STREAM_MAX_SECONDS``, or
at once when the process is asked to stop (SIGTERM), so a restart is never
held up by open streams; the client reconnects with ``Last-Event-ID`` and
loses nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, TypeVar

import redis
from flask import Response, stream_with_context

from app.web.errors import error_response
from core.settings import Settings

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


# Read when the module loads (the semaphore below is sized by it), as part of the
# settings every process reads: a bad value is a ConfigError that stops the web
# process at start instead of falling back silently.
_LIMITS = Settings.from_env()
MAX_STREAMS_PER_PROCESS = _LIMITS.max_streams_per_process
STREAM_MAX_SECONDS = _LIMITS.stream_max_seconds
_slots = threading.BoundedSemaphore(MAX_STREAMS_PER_PROCESS)


class _Stop:
    """Whether this process was asked to stop. A server waits for open responses
    before it exits, and a platform kills what is left 30 s after SIGTERM: a
    stream that stayed open for its full STREAM_MAX_SECONDS would hold every
    restart until then.

    A plain attribute, set from a signal handler: a handler runs between two
    bytecodes of the main thread, possibly inside a lock the main thread holds
    (a threading.Event's, when a second SIGTERM interrupts the first handler),
    so it must take no lock.
    """

    asked = False


def open_until(deadline: float) -> bool:
    """Should a stream go on? Not past its deadline, not once the process is stopping."""
    return not _Stop.asked and time.monotonic() < deadline


SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_set_handler = signal.signal  # the real one: end_streams_on_signal wraps signal.signal


def end_streams_on_signal() -> None:
    """Make SIGTERM and SIGINT end this process's streams, then do what they did before.

    Chains the handlers in place now and, because a server may install its own
    after loading the app (granian's worker processes do), those installed
    later too: signal.signal is wrapped so that every handler set for these
    signals notes the stop first. Only from the main thread (the only one
    that may set handlers); a handler not installed from Python is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SHUTDOWN_SIGNALS:
        previous = signal.getsignal(signum)
        if previous is not None and previous != signal.SIG_IGN:
            _set_handler(signum, _chained(previous))
    signal.signal = _chaining_signal  # type: ignore[assignment]


def _chaining_signal(signum: int, handler: Any) -> Any:
    if signum in SHUTDOWN_SIGNALS and callable(handler):
        handler = _chained(handler)
    return _set_handler(signum, handler)


def _chained(previous: Callable[[int, FrameType | None], Any] | int) -> Any:
    if getattr(previous, "ends_streams", False):
        return previous

    def handler(signum: int, frame: FrameType | None) -> None:
        _Stop.asked = True
        if callable(previous):
            previous(signum, frame)
        else:  # SIG_DFL: terminate as if we had not been here
            _set_handler(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    handler.ends_streams = True  # type: ignore[attr-defined]
    return handler


def take_slot() -> bool:
    """Take one of this process's stream slots; False when all are taken. An
    event_stream response gives its slot back when it closes."""
    return _slots.acquire(blocking=False)


def too_many_streams() -> tuple[Response, int]:
    response, status = error_response(503, "too many open streams here, retry shortly")
    response.headers["Retry-After"] = "2"
    return response, status


def event_stream(events: Iterator[str]) -> Response:
    """A text/event-stream response over ``events``, for a slot already taken.

    The slot is released when the server closes the response, iterated or not
    (HEAD, client gone): a leaked slot would shrink this process's capacity.
    """
    response = Response(
        stream_with_context(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(_slots.release)
    return response


Item = TypeVar("Item")


def follow_feed(
    read: Callable[[str | None], tuple[Sequence[Item], str | None]],
    render: Callable[[Item], str | None],
    after: str | None,
    deadline: float,
    logger: Any,
    what: str,
) -> Iterator[str]:
    """A stream's text: what ``read`` finds after the cursor ``after``, then what comes
    next, until ``deadline`` or the process stops; ``render`` makes an item an
    event (None: not sent), with a keep-alive comment every KEEPALIVE_SECONDS.

    ``read(cursor)`` returns (items, the cursor to read after next, or None).
    """
    cursor = after
    last_sent = time.monotonic()
    yield "retry: 1000\n: connected\n\n"
    # The first read happens whatever the clock says: a stream that started
    # late (a busy process) still sends what was waiting before it ends.
    first = True
    while first or open_until(deadline):
        first = False
        try:
            items, next_cursor = read(cursor)
        except redis.RedisError:
            logger.warning(f"{what}: redis unavailable")
            yield ": redis unavailable, waiting\n\n"
            time.sleep(1.0)
            continue
        for item in items:
            text = render(item)
            if text is not None:
                yield text
        if next_cursor is not None:
            cursor = next_cursor
        if items:
            last_sent = time.monotonic()
            continue
        if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        time.sleep(POLL_SECONDS)
