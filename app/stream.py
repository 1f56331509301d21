"""Outcome records as Server-Sent Events: ``GET /v1/outcomes/stream``.

Serving model: granian runs the app in WEB_THREADS threads per web process
(app/serve.py). A stream holds one thread of one web process
while it is open, so each process lets at most ``MAX_STREAMS_PER_PROCESS``
streams in at once (a semaphore) and keeps the rest of its threads for
webhook intake; a stream over the limit is refused with 503 and Retry-After,
which EventSource clients obey. Streams end after ``STREAM_MAX_SECONDS``, or
at once when the process is asked to stop (SIGTERM), so a restart is never
held up by open streams; the client reconnects with ``Last-Event-ID`` and
loses nothing.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import redis
from flask import Response, current_app, request, stream_with_context

from app.api import outcome_query
from app.auth import require_api_key
from app.call_schemas import (
    LastEventIdHeader,
    OutcomePageArgs,
    OutcomeRecordSchema,
    is_outcome_id,
)
from app.errors import BadQuery, error_response
from app.fast_dump import compile_dump
from app.resources import get_store
from app.rest import TOO_MANY_STREAMS, ApiBlueprint, error_doc, sse_event
from app.schema_fields import EXAMPLE_OUTCOME_ID
from statemachine.outcome import OutcomeRecord
from workers.settings import Settings

bp = ApiBlueprint("stream", __name__, url_prefix="/v1")

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


# Longer than any outcome id ("<20 digits>-<20 digits>"): a client that sends
# more is not resuming anything of ours.
MAX_LAST_EVENT_ID = 41


@bp.before_app_request
def refuse_huge_last_event_id() -> None:
    """Refuse, on every path (the live stream's too), a Last-Event-ID no stream of
    ours could have sent. Raises BadQuery (400)."""
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is not None and len(last_event_id) > MAX_LAST_EVENT_ID:
        raise BadQuery(
            f"Last-Event-ID is {len(last_event_id)} characters long; an outcome id has at "
            f"most {MAX_LAST_EVENT_ID}"
        )


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


# Planned from the schema (app/fast_dump.py): a stream catching up sends
# thousands of records a second.
dump_outcome_record = compile_dump(OutcomeRecordSchema())


def sse(record: OutcomeRecord) -> str:
    """One outcome record as a Server-Sent Event, as its schema dumps it."""
    data = json.dumps(dump_outcome_record(record), sort_keys=True)
    return f"id: {record['id']}\nevent: outcome\ndata: {data}\n\n"


@bp.get("/outcomes/stream", tags=["outcomes"])
@require_api_key
# limit is read (and checked) as on /v1/outcomes, though a stream pages by itself.
@bp.documents_arguments(LastEventIdHeader(), location="headers")
@bp.arguments(OutcomePageArgs(), location="query")
@bp.response(
    200,
    sse_event("outcome", "OutcomeRecord", id_pattern=True),
    content_type="text/event-stream",
    description="the event stream",
    example=f"id: {EXAMPLE_OUTCOME_ID}\nevent: outcome\n"
    f'data: {{"id": "{EXAMPLE_OUTCOME_ID}", "outcome": "missed", "revision": 1, ...}}\n\n',
)
@bp.alt_response(400, **error_doc("a bad after, Last-Event-ID or outcome"))
@bp.errors(401, 403)
@bp.alt_response(503, **TOO_MANY_STREAMS)
@bp.doc(operationId="streamOutcomes")
def outcome_stream(
    args: dict[str, Any],
) -> Response | tuple[Response, int]:
    """Outcome records as Server-Sent Events

    Every record after Last-Event-ID (or after=), then new ones as they are decided:
    `id: <record id>`, `event: outcome`, `data: <the record as JSON, an OutcomeRecord>`,
    and a keep-alive comment every 15 s. The stream closes after STREAM_MAX_SECONDS;
    reconnect with Last-Event-ID and nothing is skipped.
    """
    query = outcome_query(args)
    # An EventSource reconnects to the URL it was made with (any ?after= too)
    # and sends the id of the last record it got: resume from there.
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id:
        if not is_outcome_id(last_event_id):
            raise BadQuery("Last-Event-ID must be an outcome id such as 1764063000123456-0")
        query["after"] = last_event_id
    if not _slots.acquire(blocking=False):
        return too_many_streams()
    store = get_store()
    deadline = time.monotonic() + STREAM_MAX_SECONDS
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def events() -> Iterator[str]:
        cursor = query["after"]
        last_sent = time.monotonic()
        yield "retry: 1000\n: connected\n\n"
        while open_until(deadline):
            try:
                records, next_cursor = store.read_outcomes(
                    store.tenants() if query["all_tenants"] else query["tenants"],
                    after=cursor,
                    limit=500,
                    outcome=query["outcome"],
                )
            except redis.RedisError:
                app.logger.warning("outcome stream: redis unavailable")
                yield ": redis unavailable, waiting\n\n"
                time.sleep(1.0)
                continue
            for record in records:
                yield sse(record)
            if next_cursor is not None:
                cursor = next_cursor
            if records:
                last_sent = time.monotonic()
                continue
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            time.sleep(POLL_SECONDS)

    return event_stream(events())
